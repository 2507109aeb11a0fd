"""Audio file I/O (soundfile) and resampling, with clear errors and atomic writes."""
import os
from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf
import torch

from .errors import AudioSepError
from .fileio import atomic_write

PathLike = Union[str, os.PathLike]


#: The file extensions of each libsndfile major format (``soundfile.available_formats()``),
#: with the usual aliases. RAW (header-less) is left out: reading it needs a rate and a format.
FORMAT_EXTENSIONS = {
    "WAV": (".wav",), "WAVEX": (".wav",), "RF64": (".rf64",), "W64": (".w64",),
    "AIFF": (".aiff", ".aif", ".aifc"), "AU": (".au", ".snd"), "CAF": (".caf",),
    "FLAC": (".flac",), "OGG": (".ogg", ".oga"), "MP3": (".mp3",), "NIST": (".nist", ".sph"),
    "IRCAM": (".sf", ".ircam"), "SVX": (".svx", ".8svx", ".16sv"), "MAT4": (".mat",),
    "MAT5": (".mat",), "AVR": (".avr",), "HTK": (".htk",), "MPC2K": (".mpc",), "PAF": (".paf",),
    "PVF": (".pvf",), "SD2": (".sd2",), "SDS": (".sds",), "VOC": (".voc",), "WVE": (".wve",),
    "XI": (".xi",), "RAW": (),
}

#: Extensions that other, non-audio or unreadable, files share (MATLAB data, Musepack, ...):
#: a folder scan keeps such a file only when libsndfile reads its header.
AMBIGUOUS_EXTENSIONS = frozenset({".mat", ".mpc", ".snd", ".sf"})


def readable_extensions() -> Tuple[str, ...]:
    """The file extensions of every format the installed libsndfile reads, sorted.

    Built from ``soundfile.available_formats()`` with :data:`FORMAT_EXTENSIONS` (a format it
    does not know is taken as ``.<name>``); ``.opus`` is added when Ogg holds Opus.
    """
    found = set()
    for name in sf.available_formats():
        found.update(FORMAT_EXTENSIONS.get(name, ("." + name.lower(),)))
    if "OGG" in sf.available_formats() and "OPUS" in sf.available_subtypes("OGG"):
        found.add(".opus")
    return tuple(sorted(found))


#: File extensions that :func:`scan_audio_folder` collects (every format libsndfile reads).
AUDIO_EXTENSIONS = readable_extensions()


def load_audio(
    path: PathLike,
    sample_rate: Optional[int] = None,
    mono: bool = False,
    start: int = 0,
    frames: int = -1,
) -> Tuple[torch.Tensor, int]:
    """Read an audio file as a float32 tensor of shape (channels, time).

    Args:
        path: file to read (any format libsndfile reads).
        sample_rate: resample to this rate when given; the returned rate is then this one.
        mono: average the channels into one.
        start: first frame to read (at the file's own rate).
        frames: number of frames to read (-1: to the end).

    Returns:
        ``(wav, sr)``.

    Raises:
        AudioSepError: the file is missing, unreadable or empty.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioSepError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several types for corrupt files
        raise AudioSepError(f"cannot read audio file {path}: {err}") from err
    if data.shape[0] == 0:
        raise AudioSepError(f"audio file {path} is empty (0 samples)")
    wav = torch.from_numpy(np.ascontiguousarray(data.T))
    if mono and wav.shape[0] > 1:
        wav = wav.mean(dim=0, keepdim=True)
    if sample_rate is not None and sample_rate != sr:
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    return wav, sr


def audio_info(path: PathLike) -> sf._SoundFileInfo:
    """Header information (rate, channels, frames) of an audio file, with a clear error."""
    try:
        return sf.info(str(path))
    except Exception as err:
        raise AudioSepError(f"cannot read audio file {path}: {err}") from err


def resample(wav: torch.Tensor, orig_sr: int, target_sr: int) -> torch.Tensor:
    """Band-limited (sinc) resampling along the last axis; a no-op when the rates are equal."""
    if int(orig_sr) == int(target_sr):
        return wav
    import torchaudio.functional as AF  # noqa: N812  (imported lazily: costs ~0.3 s)

    return AF.resample(wav, int(orig_sr), int(target_sr))


def save_audio(
    path: PathLike,
    wav: Union[torch.Tensor, np.ndarray],
    sample_rate: int,
    subtype: Optional[str] = None,
) -> Path:
    """Write (channels, time) or (time,) audio atomically (temporary file, then rename).

    Args:
        path: destination; its folder is created.
        wav: audio, float in [-1, 1] for integer subtypes.
        sample_rate: rate in Hz.
        subtype: libsndfile subtype (default: 32-bit float for .wav, the format's default
            otherwise).

    Returns:
        The written path.
    """
    path = Path(path)
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().float().numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2:
        raise AudioSepError(f"audio to save must be (channels, time) or (time,), got {wav.shape}")
    if subtype is None and path.suffix.lower() == ".wav":
        subtype = "FLOAT"
    try:
        with atomic_write(path, mode=None) as tmp:
            sf.write(tmp, wav.T, int(sample_rate), subtype=subtype)
    except (OSError, RuntimeError, ValueError, TypeError, sf.LibsndfileError) as err:
        raise AudioSepError(f"cannot write audio file {path}: {err}") from err
    return path


def is_audio_file(path: PathLike) -> bool:
    """Whether a folder scan takes ``path`` as audio: its extension is one libsndfile reads
    (:data:`AUDIO_EXTENSIONS`) and, for an extension other files share
    (:data:`AMBIGUOUS_EXTENSIONS`), libsndfile reads its header."""
    suffix = Path(path).suffix.lower()
    if suffix not in AUDIO_EXTENSIONS:
        return False
    if suffix in AMBIGUOUS_EXTENSIONS:
        try:
            sf.info(str(path))
        except Exception:  # libsndfile raises several types for what it cannot read
            return False
    return True


def scan_audio_folder(root: PathLike) -> Tuple[List[Path], List[Path]]:
    """The files under a folder (recursively, sorted), split into audio and other files.

    Args:
        root: the folder.

    Returns:
        ``(audio, other)``: the files :func:`is_audio_file` takes, and the rest.
    """
    audio: List[Path] = []
    other: List[Path] = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        (audio if is_audio_file(path) else other).append(path)
    return audio, other


def count_by_extension(paths: Sequence[PathLike]) -> str:
    """``"skipped 3 files: 2 .txt, 1 .jpg"`` (most frequent extension first; ``""`` for none)."""
    if not paths:
        return ""
    counts = Counter(Path(p).suffix.lower() or "(no extension)" for p in paths)
    parts = ", ".join(f"{n} {ext}" for ext, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"skipped {len(paths)} file{'s' if len(paths) != 1 else ''}: {parts}"


def as_mono_array(x, what: str = "signal") -> np.ndarray:
    """One mono signal, given as a ``(time,)`` or ``(1, time)`` array or tensor, as a 1-D float64
    numpy array.

    Raises:
        AudioSepError: more than one channel, or empty (the message names ``what``).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1 or x.size == 0:
        raise AudioSepError(f"the {what} must be one mono signal, (time,) or (1, time); got shape {x.shape}")
    return x
