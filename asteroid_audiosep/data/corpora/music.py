"""MUSIC (solo videos): per-instrument audio -> datafile, and the paper's evaluation
protocol (10 s segments of each instrument, each mixed at 0 dB with a segment of every other
instrument).

Published layout (https://github.com/roudimit/MUSIC_dataset: ``MUSIC_solo_videos.json`` lists
YouTube ids per instrument; the audio is downloaded by the user), either::

    <root>/<instrument>/<YTID>.wav            # e.g. acoustic_guitar/Y1mCi6eWXVbg.wav
or::
    <root>/MUSIC_solo_videos.json             # {"videos": {"accordion": [YTID, ...], ...}}
    <root>/audio/<YTID>.wav                   # (any sub-folders, Y<YTID> or <YTID> names)
"""
import os
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from ...audio import audio_info
from ...errors import AudioSepError
from ..evalmix import Excerpt, MixtureSpec, build_eval_mixtures
from ..textfile import read_json
from .common import (
    attach_audio,
    caption_from_label,
    entry_youtube_id,
    index_audio,
    require_dir,
    write_corpus_datafile,
    youtube_id_keys,
)

PathLike = Union[str, os.PathLike]


def read_music(root: PathLike, videos_json: Optional[PathLike] = None, skip_missing: bool = True) -> List[Dict]:
    """Videos: ``ytid``, ``instrument`` (text, e.g. "acoustic guitar"), ``captions``, ``wav``."""
    root = require_dir(Path(root), "MUSIC folder")
    json_path = Path(videos_json) if videos_json else root / "MUSIC_solo_videos.json"
    if json_path.is_file():
        try:
            videos = read_json(json_path)["videos"]
        except (ValueError, KeyError, TypeError) as err:
            raise AudioSepError(f"cannot read {json_path}: {err}") from err
        clips = [{"ytid": ytid, "instrument": caption_from_label(name)} for name, ids in sorted(videos.items())
                 for ytid in ids]
        audio = root / "audio" if (root / "audio").is_dir() else root
        clips = attach_audio(clips, index_audio(audio, youtube_id_keys), "ytid", "MUSIC", skip_missing)
    else:
        clips = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            for path in sorted(index_audio(folder).values()):
                clips.append({"ytid": path.stem, "instrument": caption_from_label(folder.name), "wav": str(path)})
        if not clips:
            raise AudioSepError(f"no MUSIC audio under {root}: expected <instrument>/<video>.wav or "
                                "MUSIC_solo_videos.json (see docs/data.md)")
    for clip in clips:
        clip["captions"] = clip["labels"] = [clip["instrument"]]
    return clips


def prepare_music(root: PathLike, out_dir: PathLike, videos_json: Optional[PathLike] = None,
                  skip_missing: bool = True) -> Dict[str, Path]:
    """Write ``music.json`` (one entry per video, caption = instrument)."""
    return {"all": write_corpus_datafile(Path(out_dir) / "music.json",
                                         read_music(root, videos_json, skip_missing), "music")}


def music_segments(clips: List[Dict], segment_seconds: float = 10.0,
                   segments_per_video: Optional[int] = None) -> List[Dict]:
    """Cut each video into whole ``segment_seconds`` segments (``name``: ``<stem>_<k>.wav``)."""
    segments = []
    for clip in clips:
        info = audio_info(clip["wav"])
        count = int(info.frames / info.samplerate // segment_seconds)
        for k in range(count if segments_per_video is None else min(count, segments_per_video)):
            segments.append(dict(clip, start=k * segment_seconds, name=f"{Path(clip['wav']).stem}_{k}.wav"))
    return segments


def music_eval_specs(segments: List[Dict], segment_seconds: float = 10.0, seed: int = 0) -> List[MixtureSpec]:
    """Each segment (target) with one random segment of every other instrument."""
    instruments = sorted({s["instrument"] for s in segments})
    if len(instruments) < 2:
        raise AudioSepError("MUSIC evaluation needs segments of at least 2 instruments")
    by_instrument = {i: [s for s in segments if s["instrument"] == i] for i in instruments}
    rng = np.random.default_rng(seed)

    def excerpt(s):
        return Excerpt(Path(s["wav"]), s["start"], segment_seconds, s["name"], entry_youtube_id(s["ytid"]) or None)

    specs = []
    for instrument in instruments:
        for target in by_instrument[instrument]:
            for other in instruments:
                if other != instrument:
                    pool = by_instrument[other]
                    background = pool[int(rng.integers(len(pool)))]
                    specs.append(MixtureSpec(excerpt(target), [excerpt(background)],
                                             {"caption": instrument, "class": instrument}))
    return specs


def build_music_eval(root: PathLike, out_dir: PathLike, sample_rate: int = 32000, segment_seconds: float = 10.0,
                     segments_per_video: Optional[int] = None, seed: int = 0,
                     videos_json: Optional[PathLike] = None) -> Path:
    """Build the MUSIC evaluation mixtures (0 dB). Returns the CSV path."""
    segments = music_segments(read_music(root, videos_json), segment_seconds, segments_per_video)
    specs = music_eval_specs(segments, segment_seconds, seed)
    return build_eval_mixtures(specs, out_dir, sample_rate=sample_rate, level="snr", snr_db=0.0, seed=seed)
