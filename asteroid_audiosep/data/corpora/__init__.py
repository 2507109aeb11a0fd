"""Preparation of the paper's corpora from their published layouts: training datafiles and
evaluation mixtures in the common evaluation-list format (see docs/data.md)."""
import inspect
import os
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Union

from ...errors import AudioSepError
from .audiocaps import audiocaps_eval_clips, build_audiocaps_eval, prepare_audiocaps
from .audioset import prepare_audioset
from .clotho import build_clotho_eval, clotho_eval_clips, prepare_clotho
from .esc50 import build_esc50_eval, esc50_eval_clips, prepare_esc50
from .fsd50k import prepare_fsd50k
from .inputs import check_corpus_inputs as _check_inputs
from .music import build_music_eval, prepare_music
from .vggsound import build_vggsound_eval, prepare_vggsound, vggsound_eval_clips
from .voicebank import build_voicebank_eval
from .wavcaps import prepare_wavcaps

#: Corpus name -> function writing its training datafiles.
PREPARERS = {
    "audioset": prepare_audioset,
    "vggsound": prepare_vggsound,
    "audiocaps": prepare_audiocaps,
    "clotho": prepare_clotho,
    "wavcaps": prepare_wavcaps,
    "esc50": prepare_esc50,
    "music": prepare_music,
    "fsd50k": prepare_fsd50k,
}

#: Corpus name -> function building its evaluation mixtures (the paper's protocol).
EVAL_BUILDERS = {
    "audiocaps": build_audiocaps_eval,
    "clotho": build_clotho_eval,
    "esc50": build_esc50_eval,
    "music": build_music_eval,
    "vggsound": build_vggsound_eval,
    "voicebank_demand": build_voicebank_eval,
}

#: Protocol name -> function giving (its corpus list, the names of the clips it evaluates on),
#: read from the metadata alone, so the overlap check can run before the mixtures exist.
EVAL_CLIPS = {
    "audiocaps": audiocaps_eval_clips,
    "clotho": clotho_eval_clips,
    "esc50": esc50_eval_clips,
    "vggsound": vggsound_eval_clips,
}


def call_with_options(
    function: Callable, args: tuple, options: Mapping[str, Any], where: str
) -> Any:
    """Call ``function(*args, **options)`` after checking every option is one of its arguments.

    Options whose value is None are left out (not given).

    Raises:
        AudioSepError: an option the function does not take (named with ``where``).
    """
    accepted = inspect.signature(function).parameters
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        choices = sorted(k for k in accepted if k not in ("root", "out_dir"))
        raise AudioSepError(f"{where}: unknown options {unknown}; accepted: {choices}")
    return function(*args, **given)


def prepare_corpus(name: str, options: Optional[Mapping[str, Any]],
                   out_dir: Union[str, os.PathLike]) -> Dict[str, Path]:
    """Prepare one corpus from its options (``root`` and the arguments of ``prepare_<name>``).

    Raises:
        AudioSepError: unknown corpus or option, or ``root`` not set.
    """
    options = check_corpus_options(name, options)
    root = options.pop("root")
    return call_with_options(PREPARERS[name], (root, out_dir), options, f"corpus {name}")


def check_corpus_options(name: str, options: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The options of one corpus, checked without preparing anything (so that a recipe can
    check every corpus before writing any).

    Raises:
        AudioSepError: unknown corpus or option, or ``root`` not set.
    """
    if name not in PREPARERS:
        raise AudioSepError(f"unknown corpus {name!r}; choose among {sorted(PREPARERS)}")
    options = dict(options or {})
    if not options.get("root") or options["root"] == "???":
        raise AudioSepError(
            f"set the root of corpus {name} to the downloaded corpus (see docs/data.md)"
        )
    accepted = inspect.signature(PREPARERS[name]).parameters
    unknown = sorted(k for k, v in options.items() if v is not None and k not in accepted)
    if unknown:
        choices = sorted(k for k in accepted if k != "out_dir")
        raise AudioSepError(f"corpus {name}: unknown options {unknown}; accepted: {choices}")
    return options


def check_corpus_inputs(name: str, options: Optional[Mapping[str, Any]]) -> None:
    """Check one corpus's options and that the lists and folders it reads exist, reading and
    writing nothing (stage 0 checks every corpus this way before preparing any).

    Raises:
        AudioSepError: unknown corpus or option, ``root`` not set, or a missing input.
    """
    options = check_corpus_options(name, options)
    _check_inputs(PREPARERS[name], name, options)
