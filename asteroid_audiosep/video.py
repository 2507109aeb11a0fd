"""Pictures from video and image files: frames at given times (PyAV), durations, audio tracks.

Videos (mp4, mkv, webm, avi, mov) are decoded with PyAV (the ``video`` extra; its wheels bundle
FFmpeg and its codecs); pictures (png, jpg, ...) are read with Pillow and stand for a still
video. Every problem a user can cause (a missing, unreadable or corrupt file, a file without a
picture stream, a time past the end) raises :class:`~asteroid_audiosep.errors.AudioSepError`.
"""
import os
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from .errors import AudioSepError
from .fileio import atomic_write

PathLike = Union[str, os.PathLike]

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}


def is_image_file(path: PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _av():
    try:
        import av
    except ImportError as err:
        raise AudioSepError("reading video needs PyAV: pip install 'asteroid-audiosep[video]' (or av)") from err
    return av


def _open(path: PathLike):
    path = Path(path)
    if not path.is_file():
        raise AudioSepError(f"video {path} not found")
    av = _av()
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as err:
        raise AudioSepError(f"cannot read the video {path} ({err}): is it a complete video file?") from None
    if not container.streams.video:
        container.close()
        raise AudioSepError(f"{path} holds no picture stream")
    return container


def video_duration(path: PathLike) -> float:
    """Duration in seconds of a video (a picture file: 0, it has one still frame).

    Raises:
        AudioSepError: a missing or unreadable file.
    """
    if is_image_file(path):
        read_image(path)
        return 0.0
    with _open(path) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1_000_000
        last = 0.0
        try:
            for frame in container.decode(stream):
                last = float(frame.time or 0.0) + (1.0 / float(stream.average_rate or 25))
        except _av().FFmpegError as err:
            raise AudioSepError(f"cannot decode the video {path} ({err})") from None
        return last


def read_image(path: PathLike):
    """A picture file as an RGB PIL image (clear errors for missing or unreadable files)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise AudioSepError(f"image {path} not found")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise AudioSepError(f"cannot read the image {path} ({err}): give a png or jpg file") from None


def read_frames(path: PathLike, times: Sequence[float]) -> list:
    """The frames shown at ``times`` (seconds) of a video, as PIL RGB images.

    The frame shown at ``t`` is the last one whose presentation time is ``<= t``. A picture
    file gives itself for every time.

    Raises:
        AudioSepError: a missing, unreadable or corrupt file, a negative time, or a time past
            the video's end (naming the duration).
    """
    times = [float(t) for t in times]
    if not times:
        raise AudioSepError("no frame time given")
    if min(times) < 0:
        raise AudioSepError(f"frame time {min(times)} s: times must be >= 0")
    if is_image_file(path):
        image = read_image(path)
        return [image.copy() for _ in times]
    duration = video_duration(path)
    if max(times) > duration + 1e-6:
        raise AudioSepError(f"{path}: time {max(times):g} s is past the video's end ({duration:.2f} s)")
    av = _av()
    order = sorted(range(len(times)), key=times.__getitem__)
    found: List[Optional[object]] = [None] * len(times)
    with _open(path) as container:
        stream = container.streams.video[0]
        k, previous = 0, None
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else 0.0
                while k < len(order) and times[order[k]] < t - 1e-6:
                    found[order[k]] = previous if previous is not None else frame.to_image()
                    k += 1
                if k == len(order):
                    break
                previous = frame.to_image()
        except (av.FFmpegError, ValueError) as err:
            raise AudioSepError(f"cannot decode the video {path} ({err}): the file may be corrupt") from None
        for i in order[k:]:
            found[i] = previous
    if any(f is None for f in found):
        raise AudioSepError(f"the video {path} has no decodable frame")
    return found


def clip_frame_times(duration: float) -> List[float]:
    """One time per second of a clip (the middle of each second), as the paper samples videos;
    a clip shorter than a second gives its middle."""
    if duration >= 1.0:
        return [t + 0.5 for t in range(int(duration))]
    return [duration / 2]


def write_video(path: PathLike, frames: Sequence[np.ndarray], fps: int = 4, crf: int = 18,
                codec: str = "libx264") -> Path:
    """Write ``(H, W, 3)`` uint8 frames as a video, atomically (the format from the suffix).

    Args:
        path: destination (.mp4, .mkv, .webm, .avi).
        frames: pictures of even width and height.
        fps: frames per second.
        crf: quality of x264 (0 lossless, 18 visually lossless, 23 the default).
        codec: an FFmpeg encoder available in PyAV.
    """
    av = _av()
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioSepError(f"{path}: write a video as one of {sorted(_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    with atomic_write(path, mode=None) as tmp:
        with av.open(str(tmp), mode="w", format=fmt) as container:
            stream = container.add_stream(codec, rate=int(fps))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if codec == "libx264":
                stream.options = {"crf": str(crf), "preset": "medium"}
            for array in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array, dtype=np.uint8), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def extract_audio(video: PathLike, out: PathLike, sample_rate: Optional[int] = None) -> Path:
    """Write the audio track of a video as a wav file (16-bit, all channels), atomically.

    Raises:
        AudioSepError: a missing or unreadable file, or a video without an audio track.
    """
    av = _av()
    video, out = Path(video), Path(out)
    if not video.is_file():
        raise AudioSepError(f"video {video} not found")
    chunks, rate = [], None
    try:
        with av.open(str(video)) as container:
            if not container.streams.audio:
                raise AudioSepError(f"{video} has no audio track")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", rate=sample_rate or stream.rate)
            for frame in container.decode(stream):
                for res in resampler.resample(frame):
                    chunks.append(res.to_ndarray())
                    rate = res.sample_rate
            for res in resampler.resample(None):
                chunks.append(res.to_ndarray())
    except (av.FFmpegError, OSError, ValueError) as err:
        raise AudioSepError(f"cannot read the audio of {video} ({err})") from None
    if not chunks or rate is None:
        raise AudioSepError(f"{video}: the audio track is empty")
    from .audio import save_audio

    save_audio(out, np.concatenate(chunks, axis=1), int(rate), subtype="PCM_16")
    return out
