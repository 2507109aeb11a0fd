"""AudioCaps: caption lists -> training datafiles, and the paper's evaluation protocol
(each test clip mixed at 0 dB with 5 backgrounds whose AudioSet tags do not overlap its own).

Published layout (https://github.com/cdjkim/audiocaps, folder ``dataset/``)::

    <root>/train.csv  val.csv  test.csv   # audiocap_id, youtube_id, start_time, caption
    <root>/audio/...                      # downloaded clips: Y<YTID>.wav, <YTID>.wav,
                                          # <YTID>_<start>.wav ... in any sub-folders

The tags come from AudioSet's segment lists (see :mod:`.audioset`); without them the
backgrounds are only required to be other clips.
"""
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ...errors import AudioSepError
from ..evalmix import Excerpt, MixtureSpec, build_eval_mixtures
from .audioset import read_audioset_labels
from .common import (
    attach_audio,
    index_audio,
    read_table,
    require_file,
    write_corpus_datafile,
    youtube_id_keys,
)

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def read_audiocaps(root: PathLike, split: str, index: Optional[Dict[str, Path]] = None,
                   skip_missing: bool = True) -> List[Dict]:
    """Clips of one split with their captions (grouped by YouTube id, file order kept):
    ``ytid``, ``captions``, ``wav``."""
    if split not in SPLITS:
        raise AudioSepError(f"unknown AudioCaps split {split!r}; choose among {SPLITS}")
    root = Path(root)
    rows = read_table(require_file(root / f"{split}.csv", f"AudioCaps {split} list"), header=False)
    if rows and rows[0][:2] == ["audiocap_id", "youtube_id"]:
        rows = rows[1:]
    grouped: OrderedDict[str, List[str]] = OrderedDict()
    for row in rows:
        if len(row) < 4:
            raise AudioSepError(f"{split}.csv: expected 'audiocap_id, youtube_id, start_time, caption', got {row}")
        grouped.setdefault(row[1], []).append(",".join(row[3:]))
    clips = [{"ytid": ytid, "captions": caps} for ytid, caps in grouped.items()]
    if index is None:
        index = index_audio(root / "audio", youtube_id_keys)
    return attach_audio(clips, index, "ytid", f"AudioCaps {split}", skip_missing)


def prepare_audiocaps(root: PathLike, out_dir: PathLike, splits: Sequence[str] = ("train", "val"),
                      audio_dir: Optional[PathLike] = None, skip_missing: bool = True) -> Dict[str, Path]:
    """Write ``audiocaps_<split>.json`` per split (one entry per clip, all its captions)."""
    root = Path(root)
    index = index_audio(Path(audio_dir) if audio_dir else root / "audio", youtube_id_keys)
    return {split: write_corpus_datafile(Path(out_dir) / f"audiocaps_{split}.json",
                                         read_audiocaps(root, split, index, skip_missing), "audiocaps")
            for split in splits}


def audiocaps_eval_specs(clips: List[Dict], tags: Dict[str, List[str]], backgrounds_per_clip: int = 5,
                         seed: int = 0) -> List[MixtureSpec]:
    """For each clip, ``backgrounds_per_clip`` distinct other clips with no tag in common
    (any other clip when tags are unknown), paired with its captions in turn (0 dB)."""
    rng = np.random.default_rng(seed)
    if not tags:
        logger.warning("AudioCaps evaluation without AudioSet tags: backgrounds are only required to differ")
    specs = []
    for clip in clips:
        own = set(tags.get(clip["ytid"], []))
        candidates = [c for c in clips if c["ytid"] != clip["ytid"] and not own & set(tags.get(c["ytid"], []))]
        if len(candidates) < backgrounds_per_clip:
            logger.warning("AudioCaps %s: only %d backgrounds without shared tags", clip["ytid"], len(candidates))
        chosen = rng.permutation(len(candidates))[:backgrounds_per_clip]
        for k, b in enumerate(chosen):
            background = candidates[b]
            columns = {"caption": clip["captions"][k % len(clip["captions"])],
                       "labels": "; ".join(tags.get(clip["ytid"], []))}
            specs.append(MixtureSpec(Excerpt(Path(clip["wav"])), [Excerpt(Path(background["wav"]))], columns))
    if not specs:
        raise AudioSepError("AudioCaps evaluation: no clip has a background without shared tags")
    return specs


def build_audiocaps_eval(
    root: PathLike, out_dir: PathLike, audioset_root: Optional[PathLike] = None, sample_rate: int = 32000,
    backgrounds_per_clip: int = 5, seed: int = 0, audio_dir: Optional[PathLike] = None,
) -> Path:
    """Build the AudioCaps evaluation mixtures (test split, 0 dB). ``audioset_root`` holds
    AudioSet's segment lists and class names, for the tags. Returns the CSV path."""
    root = Path(root)
    index = index_audio(Path(audio_dir) if audio_dir else root / "audio", youtube_id_keys)
    clips = read_audiocaps(root, "test", index)
    tags = read_audioset_labels(audioset_root) if audioset_root is not None else {}
    specs = audiocaps_eval_specs(clips, tags, backgrounds_per_clip, seed)
    return build_eval_mixtures(specs, out_dir, sample_rate=sample_rate, level="snr", snr_db=0.0, seed=seed)
