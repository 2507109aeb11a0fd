"""The inputs of a separation request, collected and checked before a model is loaded (fail
fast): files and folders (searched recursively, this tool's own outputs excepted), queries and
output settings. :class:`~asteroid_audiosep.separator.Separator` and the command line use it."""
import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from .audio import AUDIO_EXTENSIONS, count_by_extension, scan_audio_folder
from .errors import AudioSepError
from .outputs import MANIFEST, MODES, OutputPlanner, read_manifest
from .queries import Query, QueryLike, as_queries

__all__ = ["collect_inputs", "check_request"]

log = logging.getLogger("asteroid_audiosep")

PathLike = Union[str, os.PathLike]
Queries = Union[QueryLike, Sequence[QueryLike]]


def collect_inputs(inputs: Union[PathLike, Sequence[PathLike]], is_output=lambda path: False,
                   not_audio: Optional[List[Path]] = None) -> List[Tuple[Path, Path, Optional[str]]]:
    """``(file, relative output folder, error)`` per input; folders are searched recursively.

    Files this tool wrote (listed in their folder's output manifest, or named like an output of
    this run's queries: ``is_output``) are never inputs, so ``-o`` may be an input folder. Files
    of input folders that are not audio (:func:`~asteroid_audiosep.audio.scan_audio_folder`) are
    appended to ``not_audio`` (the output manifests excepted).

    Raises:
        AudioSepError: no input, or no audio file at all (naming the folders searched and the
            extensions).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not inputs:
        raise AudioSepError("no input given: name audio files or folders")
    found: List[Tuple[Path, Path, Optional[str]]] = []
    folders = []
    skipped: List[Path] = []  # files of input folders that are not audio
    for item in map(Path, inputs):
        if item.is_dir():
            folders.append(item)
            manifests: dict = {}
            audio, other = scan_audio_folder(item)
            skipped.extend(p for p in other if p.name != MANIFEST)
            for path in audio:
                if path.parent not in manifests:
                    manifests[path.parent] = read_manifest(path.parent)
                if path.name in manifests[path.parent] or is_output(path):
                    continue  # an output of this tool, not an input
                found.append((path, path.parent.relative_to(item), None))
        elif item.exists():
            found.append((item, Path("."), None))
        else:
            found.append((item, Path("."), f"no such file or folder: {item}"))
    if not found:
        counts = count_by_extension(skipped)
        raise AudioSepError(
            f"no audio file found in {', '.join(map(str, folders))} (searched recursively for "
            f"{' '.join(AUDIO_EXTENSIONS)}; earlier outputs of this tool are not inputs"
            f"{'; ' + counts + ' (not audio)' if counts else ''})"
        )
    if not_audio is not None:  # the run itself, not a fail-fast pre-check: listed once, with -v
        not_audio.extend(skipped)
        for path in skipped:
            log.debug("not audio, skipped: %s", path)
    return found


def check_request(inputs, queries: Optional[Queries], mode: str = "target", outdir: Optional[PathLike] = "separated",
                  auto: Optional[int] = None, format: str = "same", subtype: Optional[str] = None,
                  not_audio: Optional[List[Path]] = None):
    """The checks made before a model is loaded (fail fast): mode, ``auto``, queries, inputs
    (files of input folders that are not audio are appended to ``not_audio``).

    Returns:
        ``(queries, files)``: the queries as :class:`Query` objects and the inputs found.
    """
    if mode not in MODES:
        raise AudioSepError(f"mode must be one of {MODES}, got {mode!r}")
    if auto is not None and int(auto) < 1:
        raise AudioSepError(f"--auto must be >= 1, got {auto}")
    if auto is not None:
        items = _optional_queries(queries)
        naming = OutputPlanner([q.label for q in items] or ["query"], mode, _outdir(outdir), True, [])
    else:
        items = as_queries(queries)
        labels = list(dict.fromkeys(q.label for q in items))
        naming = OutputPlanner(labels, mode, _outdir(outdir), False, [], format, subtype)
    return items, collect_inputs(inputs, naming.is_output_name, not_audio)


def _optional_queries(queries: Optional[Queries]) -> List[Query]:
    if queries is None or (not isinstance(queries, (str, Query)) and not list(queries)):
        return []
    return as_queries(queries)


def _outdir(outdir: Optional[PathLike]) -> Optional[Path]:
    return Path(outdir) if outdir is not None else None
