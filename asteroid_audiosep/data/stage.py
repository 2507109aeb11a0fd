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
"""
import logging
from pathlib import Path
from typing import Any, Dict, List

from ..config import REQUIRED, expand_path, get_value
from ..errors import AudioSepError
from .corpora import EVAL_CLIPS, call_with_options, check_corpus_options, prepare_corpus
from .mini import generate_mini_corpus
from .overlap import eval_list_clips, remove_eval_overlap

logger = logging.getLogger(__name__)


def configured_eval_sets(cfg: Dict[str, Any]) -> Dict[str, List[str]]:
    """Evaluation set (its file) -> clip names, for every configured set whose list exists."""
    lists = [get_value(cfg, "data.valid_list"), get_value(cfg, "enhancement.list")]
    for entry in get_value(cfg, "evaluation.sets") or []:
        lists += [entry.get("list"), entry.get("csv")]
    sets = {}
    for value in filter(None, lists):
        path = Path(expand_path(cfg, str(value)))
        if path.is_file():
            sets[str(path)] = eval_list_clips(path)
        else:
            logger.info("overlap check: evaluation list %s not there yet, not checked", path)
    for name, options in (get_value(cfg, "data.eval_mixtures") or {}).items():
        root = (options or {}).get("root")
        if name in EVAL_CLIPS and root and root != REQUIRED:
            path, names = EVAL_CLIPS[name](root)
            sets[str(path)] = names
    return sets


def mini_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """YAML lists -> the tuples :func:`generate_mini_corpus` takes (``classes`` stays a list)."""
    return {k: tuple(v) if isinstance(v, list) and k != "classes" else v for k, v in dict(options).items()}


def prepare_from_config(cfg: Dict[str, Any], strict: bool = False) -> List[Path]:
    """Stage 0: the mini corpus, the configured corpora, then the overlap check.

    Returns:
        The training datafiles checked for overlap.

    Raises:
        AudioSepError: an unknown corpus or option (before anything is prepared), a missing
            input, or (``strict``) an overlap.
    """
    data_dir = Path(get_value(cfg, "paths.data_dir", "data"))
    corpora = {n: o for n, o in (get_value(cfg, "data.corpora") or {}).items() if o is not None}
    for name, options in corpora.items():  # null: switched off (e.g. by a config extending another)
        try:
            check_corpus_options(name, options)
        except AudioSepError as err:
            raise AudioSepError(f"data.corpora.{name}: {err}") from None
    mini = get_value(cfg, "data.mini")
    if mini is not None:
        mini = dict(mini)
        pictures, folder = mini.pop("pictures", None), data_dir / str(mini.pop("folder", None) or "mini")
        written = call_with_options(generate_mini_corpus, (folder,), mini_options(mini), "data.mini")
        if pictures:
            from .mini_pictures import add_picture_stream

            options = dict(seed=mini.get("seed", 0), **(pictures if isinstance(pictures, dict) else {}))
            written.update(call_with_options(add_picture_stream, (folder,), options, "data.mini.pictures"))
        for name, path in written.items():
            logger.info("mini %s: %s", name, path)
    written = []
    for name, options in corpora.items():
        written += prepare_corpus(name, options, data_dir / name).values()
    configured = [Path(p) for p in expand_path(cfg, get_value(cfg, "data.train_datafiles") or [])]
    train = list(dict.fromkeys(written + [p for p in configured if p.is_file()]))
    strict = strict or get_value(cfg, "data.eval_overlap", "drop") == "fail"
    remove_eval_overlap(train, configured_eval_sets(cfg), strict=strict)
    return train
