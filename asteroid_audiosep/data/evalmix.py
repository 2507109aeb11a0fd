"""Build evaluation sets of fixed mixtures from source clips, one shared mixing rule for
every protocol, written in the common evaluation-list format."""
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ..audio import audio_info, load_audio, save_audio
from ..errors import AudioSepError
from ..progress import progress
from .evallist import write_eval_list
from .mixing import mix_for_evaluation

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

#: Name of the CSV that :func:`build_eval_mixtures` writes next to the audio.
EVAL_CSV = "eval.csv"


@dataclass(frozen=True)
class Excerpt:
    """A part of an audio file.

    Attributes:
        path: the file.
        start: start in seconds.
        duration: length in seconds (None: to the end of the file).
        name: how the provenance columns of the CSV name it (default: the file name).
        ytid: the clip's YouTube id when its corpus lists one, recorded in the ``*_ytid``
            columns (so the overlap check finds the clip whatever its file is called).
    """

    path: Path
    start: float = 0.0
    duration: Optional[float] = None
    name: Optional[str] = None
    ytid: Optional[str] = None

    @property
    def label(self) -> str:
        """Name used in the provenance columns."""
        return self.name or Path(self.path).name


@dataclass
class MixtureSpec:
    """What one evaluation mixture is made of.

    Attributes:
        target: the target source.
        backgrounds: the interfering clips; they are concatenated, then cut (or zero-padded)
            to the target's length.
        columns: CSV columns of this example: ``caption`` (required), other queries,
            ``class``, anything else to record.
        snr_db: this example's target-to-background ratio (default: the builder's).
    """

    target: Excerpt
    backgrounds: Sequence[Excerpt]
    columns: Dict[str, object] = field(default_factory=dict)
    snr_db: Optional[float] = None


def read_excerpt(excerpt: Excerpt, sample_rate: int) -> np.ndarray:
    """An excerpt as a (time,) mono float32 array at ``sample_rate``."""
    native_rate = audio_info(excerpt.path).samplerate
    start = int(round(excerpt.start * native_rate))
    frames = -1 if excerpt.duration is None else int(round(excerpt.duration * native_rate))
    wav, _ = load_audio(excerpt.path, sample_rate=sample_rate, mono=True, start=start, frames=frames)
    return wav[0].numpy()


def _background(excerpts: Sequence[Excerpt], length: int, sample_rate: int) -> np.ndarray:
    """The excerpts end to end, cut or zero-padded to ``length``."""
    background = np.zeros(length, dtype=np.float32)
    filled = 0
    for excerpt in excerpts:
        if filled >= length:
            break
        part = read_excerpt(excerpt, sample_rate)[: length - filled]
        background[filled : filled + len(part)] = part
        filled += len(part)
    return background


def build_eval_mixtures(
    specs: Sequence[MixtureSpec],
    out_dir: PathLike,
    sample_rate: int = 32000,
    level: str = "snr",
    snr_db: float = 0.0,
    lufs_range: Sequence[float] = (-35.0, -25.0),
    peak_limit: float = 0.9,
    seed: int = 0,
    csv_name: str = EVAL_CSV,
    subtype: Optional[str] = None,
) -> Path:
    """Mix each spec and write the set in the common evaluation-list format.

    Mixing is :func:`~.mixing.mix_for_evaluation` for every protocol (``level="snr"`` at
    ``snr_db``, or ``level="loudness"`` in ``lufs_range``), with a per-example random
    generator seeded by ``(seed, index)``, so the set is reproducible. Examples whose audio
    cannot be read are logged and left out (indices stay contiguous). The CSV is written
    last, atomically, so its presence means the set is complete.

    Args:
        specs: the mixtures to build (see the corpus modules for each protocol's specs).
        out_dir: folder receiving ``mixture-{idx}.wav``, ``segment-{idx}.wav`` and the CSV.
        sample_rate: rate of the written audio.
        level: ``"snr"`` or ``"loudness"``.
        snr_db: target-to-background ratio (``level="snr"``).
        lufs_range: loudness range (``level="loudness"``).
        peak_limit: mixture peak bound (target and mixture scaled together above it).
        seed: seed of the loudness draws.
        csv_name: name of the CSV in ``out_dir``.
        subtype: soundfile subtype of the wavs (default 32-bit float, exact sums).

    Returns:
        Path of the written CSV.

    Raises:
        AudioSepError: no spec, a spec without caption, or no example could be built.
    """
    if not specs:
        raise AudioSepError("no evaluation mixture to build (empty list of specs)")
    out_dir = Path(out_dir)
    rows: List[Dict[str, object]] = []
    failed = 0
    for spec in progress(specs, desc=f"mixing {out_dir.name}", unit="mix", leave=False):
        if "caption" not in spec.columns:
            raise AudioSepError(f"mixture spec for {spec.target.path} has no 'caption' column")
        rng = np.random.default_rng([seed, len(rows) + failed])
        try:
            target = read_excerpt(spec.target, sample_rate)
            background = _background(spec.backgrounds, len(target), sample_rate)
        except AudioSepError as err:
            logger.warning("leaving out the mixture of %s: %s", spec.target.path, err)
            failed += 1
            continue
        mixture, target, info = mix_for_evaluation(
            target, background, rng, level=level,
            snr_db=snr_db if spec.snr_db is None else spec.snr_db,
            lufs_range=lufs_range, sample_rate=sample_rate, peak_limit=peak_limit,
        )
        idx = len(rows)
        save_audio(out_dir / f"mixture-{idx}.wav", mixture, sample_rate, subtype=subtype)
        save_audio(out_dir / f"segment-{idx}.wav", target, sample_rate, subtype=subtype)
        row: Dict[str, object] = {"idx": idx, **spec.columns, "src_wav": spec.target.label}
        if spec.target.ytid:
            row["src_ytid"] = spec.target.ytid
        if len(spec.backgrounds) == 1:
            row["noise_wav"] = spec.backgrounds[0].label
            if spec.backgrounds[0].ytid:
                row["noise_ytid"] = spec.backgrounds[0].ytid
        for k, excerpt in enumerate(spec.backgrounds if len(spec.backgrounds) > 1 else [], start=1):
            row[f"noise_wav{k}"] = excerpt.label
            if excerpt.ytid:
                row[f"noise_ytid{k}"] = excerpt.ytid
        row.update({k: round(v, 4) for k, v in info.items()})
        rows.append(row)
    if failed:
        logger.warning("%d of %d mixtures of %s could not be built", failed, len(specs), out_dir)
    if not rows:
        raise AudioSepError(f"no mixture of {out_dir} could be built; check the source audio files")
    return write_eval_list(out_dir / csv_name, rows)
