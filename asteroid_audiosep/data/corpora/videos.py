"""The picture stream of the video corpora (AudioSet, VGGSound): videos found beside the audio,
recorded in the datafiles as ``video``, and audio tracks extracted from them.

Layout: ``<root>/video/**/<id>.mp4`` (or .mkv, .webm, .avi, .mov), named like the audio files
(``Y<YTID>``, ``<YTID>``, ``<YTID>_<start>``...). With ``extract_audio`` every video's audio
track is written to ``<out_dir>/audio/<stem>.wav`` (atomically; a file already there is kept,
so an interrupted extraction resumes; unreadable videos are skipped and counted).
"""
import logging
import os
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Union

from ...errors import AudioSepError
from ...progress import progress

PathLike = Union[str, os.PathLike]
logger = logging.getLogger(__name__)


def index_videos(root: PathLike, keys: Callable[[str], Iterable[str]]) -> Dict[str, Path]:
    """Key -> video file under ``root`` (searched recursively; empty when ``root`` is absent)."""
    from ...video import VIDEO_SUFFIXES

    root = Path(root)
    if not root.is_dir():
        return {}
    index: Dict[str, Path] = {}
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()):
        for key in keys(path.stem):
            index.setdefault(key, path)
    return index


def extract_audio_tracks(videos: Iterable[Path], out_dir: PathLike, sample_rate: Optional[int] = None) -> Path:
    """Write each video's audio track to ``out_dir/<stem>.wav`` (kept when already there).

    Returns:
        ``out_dir``.

    Raises:
        AudioSepError: no audio could be extracted from any video.
    """
    from ...video import extract_audio

    out_dir = Path(out_dir)
    videos = sorted(set(videos))
    failed: List[str] = []
    for video in progress(videos, desc="extracting audio", unit="video"):
        out = out_dir / f"{video.stem}.wav"
        if out.is_file():
            continue
        try:
            extract_audio(video, out, sample_rate)
        except AudioSepError as err:
            failed.append(f"{video.name} ({err})")
    if failed:
        logger.warning("%d of %d videos have no readable audio track and were skipped (e.g. %s)",
                       len(failed), len(videos), failed[0])
        if len(failed) == len(videos):
            raise AudioSepError(f"no audio track could be extracted from the {len(videos)} videos (e.g. {failed[0]})")
    return out_dir


def video_inputs(root: PathLike, out_dir: PathLike, keys: Callable[[str], Iterable[str]],
                 audio_dir: Optional[PathLike] = None, video_dir: Optional[PathLike] = None,
                 extract_audio: bool = False):
    """``(video index, audio folders)`` of a video corpus: the videos (``video_dir``, default
    ``<root>/video``) and where to look for audio (``audio_dir``, default ``<root>/audio``,
    plus ``<out_dir>/audio`` holding the tracks extracted with ``extract_audio``).

    Raises:
        AudioSepError: ``extract_audio`` without any video, or no audio folder at all.
    """
    root, out_dir = Path(root), Path(out_dir)
    videos = index_videos(video_dir or root / "video", keys)
    if video_dir and not Path(video_dir).is_dir():
        raise AudioSepError(f"video folder not found: {video_dir}")
    audio_roots = [Path(audio_dir) if audio_dir else root / "audio"]
    if extract_audio:
        if not videos:
            raise AudioSepError(f"--extract-audio: no video under {video_dir or root / 'video'} "
                                "(expected <id>.mp4, .mkv, .webm, .avi in any sub-folder)")
        audio_roots.append(extract_audio_tracks(set(videos.values()), out_dir / "audio"))
        audio_roots = [r for r in audio_roots if r.is_dir()]
    return videos, audio_roots


def attach_videos(clips: List[Dict], videos: Dict[str, Path], key: str) -> List[Dict]:
    """Set ``video`` on the clips whose video is in the index (the others keep text only)."""
    if not videos:
        return clips
    count = 0
    for clip in clips:
        keys = clip[key] if isinstance(clip[key], list) else [clip[key]]
        path = next((videos[k] for k in keys if k in videos), None)
        if path is not None:
            clip["video"] = str(path)
            count += 1
    logger.info("%d of %d clips have a video", count, len(clips))
    return clips
