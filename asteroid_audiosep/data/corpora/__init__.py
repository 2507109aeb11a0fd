"""Preparation of the paper's corpora from their published layouts: training datafiles and
evaluation mixtures in the common evaluation-list format (see docs/data.md)."""
from .audiocaps import build_audiocaps_eval, prepare_audiocaps
from .audioset import prepare_audioset
from .clotho import build_clotho_eval, prepare_clotho
from .esc50 import build_esc50_eval, prepare_esc50
from .music import build_music_eval, prepare_music
from .vggsound import build_vggsound_eval, prepare_vggsound
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
