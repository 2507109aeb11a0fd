"""Read and write training datafiles in the released AudioSep JSON format.

The released format is ``{"data": [{"wav": path, "caption": text}, ...]}``. This module
also accepts several captions per clip (``"caption"`` as a list of strings) and optional
``"labels"`` (a list of strings). Relative ``wav`` paths resolve against the datafile's
folder, so a corpus folder can be moved as a whole. An entry may also carry the clip's
picture stream: ``"video"`` (a video file) and/or ``"image"`` (a picture), relative paths
resolved like ``wav`` (AudioSep-CLIP's vision-queried training). An optional top-level ``"infos"``
object (dataset name, licences) is carried along; the released code ignores it.
"""
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from ..errors import AudioSepError
from ..fileio import atomic_write
from .textfile import read_json, warn_blank_captions

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

#: Optional entry keys holding a path of the clip's picture stream.
PICTURE_KEYS = ("video", "image")


def _as_string_list(value: Any, what: str, where: str) -> List[str]:
    """A str or a list of str as a list of non-empty, stripped strings."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise AudioSepError(f"{where}: '{what}' must be a string or a list of strings, got {value!r}")
    value = [v.strip() for v in value if v.strip()]
    return value


def normalize_entry(entry: Dict[str, Any], root: Optional[Path] = None, where: str = "entry") -> Dict[str, Any]:
    """One datafile entry in the form the datasets use.

    Args:
        entry: a dict with ``wav`` and ``caption`` (str or list of str) or ``captions``, and
            optionally ``labels`` (str or list of str); other keys are kept as they are.
        root: folder that a relative ``wav`` path is relative to (none: kept as given).
        where: text naming the entry in error messages.

    Returns:
        A new dict with ``wav`` (str, resolved against ``root``), ``captions`` (non-empty
        list of str), ``labels`` (list of str) and the entry's other keys.

    Raises:
        AudioSepError: ``wav`` or every caption is missing or of the wrong type.
    """
    if not isinstance(entry, dict):
        raise AudioSepError(f"{where}: expected an object with 'wav' and 'caption', got {entry!r}")
    wav = entry.get("wav")
    if not isinstance(wav, str) or not wav:
        raise AudioSepError(f"{where}: missing or empty 'wav' path")
    if "captions" in entry:
        captions = _as_string_list(entry["captions"], "captions", where)
    elif "caption" in entry:
        captions = _as_string_list(entry["caption"], "caption", where)
    else:
        raise AudioSepError(f"{where}: missing 'caption'")
    if not captions:
        raise AudioSepError(f"{where}: every caption is empty for {wav}")
    labels = _as_string_list(entry.get("labels", []), "labels", where)
    path = Path(wav).expanduser()
    if root is not None and not path.is_absolute():
        path = Path(os.path.normpath(root / path))
    out = {k: v for k, v in entry.items() if k not in ("wav", "caption", "captions", "labels")}
    for key in PICTURE_KEYS:  # optional picture stream, resolved like ``wav``
        if out.get(key):
            if not isinstance(out[key], str):
                raise AudioSepError(f"{where}: '{key}' must be a path, got {out[key]!r}")
            picture = Path(out[key]).expanduser()
            if root is not None and not picture.is_absolute():
                picture = Path(os.path.normpath(root / picture))
            out[key] = str(picture)
    out.update(wav=str(path), captions=captions, labels=labels)
    return out


def _load_json(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise AudioSepError(f"datafile not found: {path}")
    try:
        content = read_json(path)
    except AudioSepError as err:
        raise AudioSepError(f"cannot read datafile {err}") from None
    if not isinstance(content, dict) or not isinstance(content.get("data"), list):
        raise AudioSepError(
            f"datafile {path} is not in the released format: expected a JSON object "
            '{"data": [{"wav": ..., "caption": ...}, ...]}'
        )
    return content


def read_datafile(path: PathLike) -> List[Dict[str, Any]]:
    """Entries of a datafile, normalised by :func:`normalize_entry`.

    Args:
        path: a JSON datafile in the released format.

    Returns:
        A list of dicts with ``wav`` (absolute when the file gave a relative path),
        ``captions`` (list of str), ``labels`` (list of str) and any other keys the entry had.
        Whether the audio files exist is not checked here (see :func:`drop_missing`).
        Blank captions are left out, with one warning per file that counts them.

    Raises:
        AudioSepError: the file is missing, not JSON, or an entry is malformed.
    """
    path = Path(path)
    content = _load_json(path)
    root = path.resolve().parent
    entries = [normalize_entry(e, root, where=f"{path} entry {i}") for i, e in enumerate(content["data"])]
    blank, total = [], 0
    for i, entry in enumerate(content["data"]):
        given = entry.get("captions", entry.get("caption"))
        given = [given] if isinstance(given, str) else given
        total += len(given)
        blank += [f"entry {i}" for c in given if not c.strip()]
    warn_blank_captions(path, blank, total)
    return entries


def datafile_infos(path: PathLike) -> Dict[str, Any]:
    """The optional top-level ``"infos"`` object of a datafile (empty dict when absent)."""
    infos = _load_json(Path(path)).get("infos", {})
    return infos if isinstance(infos, dict) else {}


def _entry_for_file(entry: Dict[str, Any], folder: Path, relative: bool) -> Dict[str, Any]:
    norm = normalize_entry(entry, where=f"entry {entry.get('wav', '?')}")
    wav = Path(os.path.abspath(norm["wav"]))  # a relative path is relative to the working directory
    if relative:
        try:
            wav = Path(os.path.relpath(wav, folder))
        except ValueError:  # another drive on Windows
            pass
    out = {"wav": wav.as_posix()}
    captions = norm["captions"]
    out["caption"] = captions[0] if len(captions) == 1 else captions
    if norm["labels"]:
        out["labels"] = norm["labels"]
    for key, value in norm.items():
        if key in PICTURE_KEYS and value:
            value = Path(os.path.abspath(value))
            if relative:
                try:
                    value = Path(os.path.relpath(value, folder))
                except ValueError:
                    pass
            value = value.as_posix()
        if key not in ("wav", "captions", "labels"):
            out[key] = value
    return out


def write_json_atomic(path: PathLike, content: Any) -> Path:
    """Write JSON (indented, UTF-8, stable key order) through a temporary file and a rename."""
    path = Path(path)
    try:
        with atomic_write(path, "w", encoding="utf-8") as f:
            json.dump(content, f, indent=1, ensure_ascii=False)
            f.write("\n")
    except OSError as err:
        raise AudioSepError(f"cannot write {path}: {err}") from err
    return path


def write_datafile(
    path: PathLike,
    entries: Iterable[Dict[str, Any]],
    relative: bool = True,
    infos: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write entries as a datafile in the released format, atomically.

    A single caption is written as a string (exactly the released format), several as a
    list. Labels are written when present.

    Args:
        path: destination JSON file; its folder is created.
        entries: dicts with ``wav`` and ``caption`` or ``captions`` (as read by
            :func:`read_datafile` or built by a corpus preparation).
        relative: write ``wav`` paths relative to the datafile's folder, so that the folder
            can be moved (else absolute). Relative input paths are taken as relative to the
            working directory, as everywhere in Python, and rewritten for the datafile.
        infos: optional provenance (dataset name, licences) stored under ``"infos"``.

    Returns:
        The written path.

    Raises:
        AudioSepError: an entry is malformed or the file cannot be written.
    """
    path = Path(path)
    folder = path.parent.resolve()
    content: Dict[str, Any] = {"data": [_entry_for_file(e, folder, relative) for e in entries]}
    if infos:
        content["infos"] = infos
    return write_json_atomic(path, content)


def drop_missing(
    entries: Sequence[Dict[str, Any]],
    skip_missing: bool = False,
    source: str = "datafile",
    key: str = "wav",
) -> List[Dict[str, Any]]:
    """Check that every entry's audio file exists.

    Args:
        entries: dicts holding a path under ``key``.
        skip_missing: drop the entries whose file is missing, with one logged warning;
            otherwise raise.
        source: what the entries came from, for the message.
        key: the entry key holding the path.

    Returns:
        The entries whose file exists.

    Raises:
        AudioSepError: files are missing and ``skip_missing`` is false. The message says how
            many and names the first ones.
    """
    present = [e for e in entries if os.path.isfile(e[key])]
    if len(present) < len(entries):
        missing = [str(e[key]) for e in entries if not os.path.isfile(e[key])]
        report_missing(missing, len(entries), source, skip_missing)
    if not present:
        raise AudioSepError(f"no audio file listed in {source} exists")
    return present


def report_missing(missing: Sequence[str], total: int, source: str, skip_missing: bool) -> None:
    """Raise (or, with ``skip_missing``, log once) that files listed in ``source`` are missing.

    Raises:
        AudioSepError: when ``skip_missing`` is false. The message says how many files are
            missing and names the first ones.
    """
    names = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    message = f"{len(missing)} of {total} audio files listed in {source} are missing: {names}"
    if not skip_missing:
        raise AudioSepError(message + " (fix the paths, or pass skip_missing=True to drop them)")
    logger.warning("%s; skipping them", message)
