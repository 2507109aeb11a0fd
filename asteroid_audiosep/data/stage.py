"""Recipe stage 0 as a function: the ``data`` section of a config -> prepared corpora, with the
training/evaluation overlap check.

Reads ``paths.data_dir`` and:

- ``data.mini``: ``{seed, sample_rate, clips_per_class, clip_seconds, speech_pairs, classes,
  examples_per_class}`` (absent or null: no mini corpus) -> ``<data_dir>/<folder>``
  (``folder``, default ``mini``); ``pictures: true`` (or ``{fps, size, pictures_per_class}``)
  adds the picture stream (:func:`~.mini_pictures.add_picture_stream`);
- ``data.corpora.<name>``: ``{root: ..., <other arguments of prepare_<name>>}`` ->
  ``<data_dir>/<name>`` (unknown options are an error; every corpus's options are checked
  before any is prepared);

then drops from the training datafiles (``data.train_datafiles`` and those just written) every
clip of the configured evaluation sets (``evaluation.sets``, ``data.valid_list``,
``enhancement.list``, the test splits of ``data.eval_mixtures``); ``strict`` or
``data.eval_overlap: fail`` fails instead.

All or nothing: every corpus's options and inputs are checked first; everything is prepared
into staging folders beside its destination (``<data_dir>/.<name>.staging``, same folder so
that relative paths stay right), checked for overlap there, and moved into place (one rename
per file, datafiles last) only when all of it succeeded. A failure (a missing input, an
overlap with ``strict``) leaves nothing new behind, except audio tracks extracted from videos
(``extract_audio``), which go straight to ``<data_dir>/<name>/audio`` so that the extraction
resumes.
"""
import inspect
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..config import REQUIRED, expand_path, get_value
from ..errors import AudioSepError
from .corpora import EVAL_CLIPS, check_corpus_inputs, prepare_corpus
from .mini import generate_mini_corpus
from .overlap import eval_list_clips, remove_eval_overlap

logger = logging.getLogger(__name__)


def configured_eval_lists(cfg: Dict[str, Any]) -> List[Path]:
    """The evaluation lists a config names (``data.valid_list``, ``enhancement.list``,
    ``evaluation.sets``' ``list``/``csv``), paths expanded, existing or not."""
    lists = [get_value(cfg, "data.valid_list"), get_value(cfg, "enhancement.list")]
    for entry in get_value(cfg, "evaluation.sets") or []:
        lists += [entry.get("list"), entry.get("csv")]
    return [Path(expand_path(cfg, str(value))) for value in lists if value and value != REQUIRED]


def eval_mixture_sets(cfg: Dict[str, Any]) -> Dict[str, List[str]]:
    """Corpus list -> clip names, for the test splits of ``data.eval_mixtures`` (read from the
    corpus lists, before the mixtures exist)."""
    sets = {}
    for name, options in (get_value(cfg, "data.eval_mixtures") or {}).items():
        root = (options or {}).get("root")
        if name in EVAL_CLIPS and root and root != REQUIRED:
            path, names = EVAL_CLIPS[name](root)
            sets[str(path)] = names
    return sets


def configured_eval_sets(cfg: Dict[str, Any]) -> Dict[str, List[str]]:
    """Evaluation set (its file) -> clip names, for every configured set whose list exists."""
    sets = {str(p): eval_list_clips(p) for p in configured_eval_lists(cfg) if p.is_file()}
    sets.update(eval_mixture_sets(cfg))
    return sets


def mini_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """YAML lists -> the tuples :func:`generate_mini_corpus` takes (``classes`` stays a list)."""
    return {k: tuple(v) if isinstance(v, list) and k != "classes" else v for k, v in dict(options).items()}


def _check_options(function, options: Dict[str, Any], where: str) -> Dict[str, Any]:
    given = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(function).parameters
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        choices = sorted(k for k in accepted if k != "out_dir")
        raise AudioSepError(f"{where}: unknown options {unknown}; accepted: {choices}")
    return given


class Staging:
    """Staging folders beside their destinations, moved into place all together or removed."""

    def __init__(self) -> None:
        self.folders: Dict[Path, Path] = {}  # destination -> staging folder

    def folder(self, final: Path) -> Path:
        """A fresh staging folder for ``final`` (one left by an interrupted run is removed)."""
        final = Path(os.path.realpath(final))  # beside a symlinked folder's target: same filesystem
        staging = final.parent / f".{final.name}.staging"
        if staging.exists():
            logger.info("removing %s, left by an interrupted stage 0", staging)
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        self.folders[final] = staging
        return staging

    def keep_audio(self, final: Path) -> None:
        """Let ``<staging>/audio`` be ``<final>/audio`` (extracted tracks are kept, resumable)."""
        final = Path(os.path.realpath(final))
        (final / "audio").mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.join("..", final.name, "audio"), self.folders[final] / "audio")

    def staged(self, path: Path) -> Path:
        """Where a destination path is while staged (the path itself when nothing stages it)."""
        path = Path(os.path.realpath(path))
        for final, staging in self.folders.items():
            if path == final or final in path.parents:
                candidate = staging / path.relative_to(final)
                return candidate if candidate.exists() else path
        return path

    def final(self, path: Path) -> Path:
        """The destination of a staged path."""
        path = Path(os.path.realpath(path))
        for final, staging in self.folders.items():
            if path == staging or staging in path.parents:
                return final / path.relative_to(staging)
        return path

    def commit(self) -> None:
        """Move every staged file into place (datafiles last), then remove the staging folders."""
        moves: List[Tuple[Path, Path]] = []
        for final, staging in self.folders.items():
            for folder, dirs, files in os.walk(staging):
                dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
                for name in files:
                    source = Path(folder) / name
                    if not source.is_symlink():
                        moves.append((source, final / source.relative_to(staging)))
        moves.sort(key=lambda m: (m[0].suffix == ".json", str(m[0])))
        for source, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, target)  # atomic per file
            except OSError:  # another filesystem after all (a symlink below the destination)
                shutil.move(str(source), str(target))
        self.discard()

    def discard(self) -> None:
        """Remove the staging folders (and whatever is left in them)."""
        for staging in self.folders.values():
            if staging.exists():
                shutil.rmtree(staging)
        self.folders.clear()


def prepare_from_config(cfg: Dict[str, Any], strict: bool = False) -> List[Path]:
    """Stage 0: the mini corpus, the configured corpora, then the overlap check, all or nothing.

    Returns:
        The training datafiles checked for overlap (at their final place).

    Raises:
        AudioSepError: an unknown corpus or option, or a missing input (before anything is
            prepared); a failed preparation, or (``strict``) an overlap: nothing new is
            left behind then.
    """
    data_dir = Path(get_value(cfg, "paths.data_dir", "data"))
    corpora = {n: o for n, o in (get_value(cfg, "data.corpora") or {}).items() if o is not None}
    for name, options in corpora.items():  # null: switched off (e.g. by a config extending another)
        try:
            check_corpus_inputs(name, options)
        except AudioSepError as err:
            raise AudioSepError(f"data.corpora.{name}: {err}") from None
    mini: Optional[Dict[str, Any]] = None
    if get_value(cfg, "data.mini") is not None:
        mini = dict(get_value(cfg, "data.mini"))
        pictures, folder = mini.pop("pictures", None), str(mini.pop("folder", None) or "mini")
        mini = _check_options(generate_mini_corpus, mini_options(mini), "data.mini")
    corpus_sets = eval_mixture_sets(cfg)  # read now: a missing corpus list fails before any work
    strict = strict or get_value(cfg, "data.eval_overlap", "drop") == "fail"
    staging = Staging()
    try:
        if mini is not None:
            out = staging.folder(data_dir / folder)
            written = generate_mini_corpus(out, **mini)
            if pictures:
                from .mini_pictures import add_picture_stream

                options = dict(seed=mini.get("seed", 0), **(pictures if isinstance(pictures, dict) else {}))
                written.update(add_picture_stream(out, **_check_options(add_picture_stream, options,
                                                                        "data.mini.pictures")))
            for name, path in written.items():
                logger.info("mini %s: %s", name, staging.final(path))
        written = []
        for name, options in corpora.items():
            out = staging.folder(data_dir / name)
            if options.get("extract_audio"):
                staging.keep_audio(data_dir / name)
            written += prepare_corpus(name, options, out).values()
        configured = [Path(p) for p in expand_path(cfg, get_value(cfg, "data.train_datafiles") or [])]
        configured = [staging.staged(p) for p in configured]
        train = list(dict.fromkeys([Path(p) for p in written] + [p for p in configured if p.is_file()]))
        sets, pending = dict(corpus_sets), []
        for path in configured_eval_lists(cfg):
            if staging.staged(path).is_file():
                sets[str(path)] = eval_list_clips(staging.staged(path))
            else:
                logger.info("overlap check: evaluation list %s not there yet, not checked", path)
                pending.append(str(path))
        remove_eval_overlap(train, sets, strict=strict, not_checked=pending,
                            names=lambda p: str(staging.final(p)))
        final = [staging.final(p) for p in train]
        staging.commit()
    except BaseException:
        staging.discard()
        raise
    return final
