"""How sources are scaled and summed into mixtures: the on-the-fly training mixer and the
fixed-level mixing used to build evaluation sets."""
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import AudioSepError

#: Bounds of the amplitude ratio used by released energy matching.
MIN_ENERGY_RATIO = 0.02
MAX_ENERGY_RATIO = 50.0
ENERGY_FLOOR = 1e-10


def energy(x: torch.Tensor) -> torch.Tensor:
    """Mean power along the last axis (kept as a trailing axis of size 1)."""
    return x.pow(2).mean(dim=-1, keepdim=True)


def match_energy(
    audio: torch.Tensor,
    reference: torch.Tensor,
    min_ratio: float = MIN_ENERGY_RATIO,
    max_ratio: float = MAX_ENERGY_RATIO,
) -> torch.Tensor:
    """Scale ``audio`` to the energy of ``reference``, with the released clamping.

    The amplitude ratio ``sqrt(E(audio) / max(E(reference), 1e-10))`` is clamped to
    ``[min_ratio, max_ratio]`` and ``audio`` is divided by it, so a near-silent input is not
    blown up by more than ``1 / min_ratio``.

    Args:
        audio: (..., time).
        reference: (..., time), broadcastable to ``audio``.
        min_ratio: lower bound of the ratio.
        max_ratio: upper bound of the ratio.

    Returns:
        The rescaled audio, same shape as ``audio``.
    """
    ratio = torch.sqrt(energy(audio) / energy(reference).clamp_min(ENERGY_FLOOR))
    return audio / ratio.clamp(min_ratio, max_ratio)


def db_to_gain(db: torch.Tensor) -> torch.Tensor:
    """Amplitude gain of a level in decibels."""
    return torch.pow(10.0, db / 20.0)


class SegmentMixer:
    """Mix every segment of a batch with other segments of the same batch.

    ``released`` mode follows the released AudioSep training code: for item ``n`` the
    target is ``segments[n]``; each of the next ``k`` items of the batch (cyclically,
    ``segments[(n + i) % B]`` for ``i = 1..k``) is energy-matched to the target (amplitude
    ratio clamped to [0.02, 50]) and given a random integer gain in
    ``[lower_db, higher_db]`` dB; their sum (the background) is energy-matched and given a
    random gain again; the mixture is target + background; when its peak exceeds 1, target
    and mixture are both scaled by ``0.9 / peak``. The number of sources ``k + 1`` is drawn
    per item in ``[min_mix_num, max_mix_num]`` (the released code draws it in
    ``[2, max_mix_num]``; with the default ``max_mix_num=2`` every mixture has 2 sources).

    ``equal_energy`` mode is the paper's plain mixing (Eq. 3): the sum of the other items is
    scaled to the target's energy (0 dB, no random gain, no clamping), then de-clipped the
    same way.

    Args:
        max_mix_num: largest number of sources in a mixture (target included), >= 2.
        lower_db: lowest gain in dB (``released`` mode).
        higher_db: highest gain in dB (``released`` mode).
        mode: ``"released"`` or ``"equal_energy"``.
        seed: seed of the mixer's own ``torch.Generator`` (reproducible runs); ``None`` draws
            from torch's global generator (then ``seed_everything`` controls it).
        min_mix_num: smallest number of sources (default 2, as released; set it equal to
            ``max_mix_num`` for a fixed number).

    References:
        X. Liu et al., "Separate Anything You Describe", 2023, Sec. IV-B and Eq. 3.
    """

    MODES = ("released", "equal_energy")

    def __init__(
        self,
        max_mix_num: int = 2,
        lower_db: float = -10,
        higher_db: float = 10,
        mode: str = "released",
        seed: Optional[int] = None,
        min_mix_num: int = 2,
    ):
        if mode not in self.MODES:
            raise AudioSepError(f"unknown mixing mode {mode!r}; choose one of {self.MODES}")
        if not 2 <= int(min_mix_num) <= int(max_mix_num):
            raise AudioSepError(
                f"need 2 <= min_mix_num <= max_mix_num, got min_mix_num={min_mix_num}, "
                f"max_mix_num={max_mix_num}"
            )
        low, high = math.ceil(lower_db), math.floor(higher_db)
        if low > high:
            raise AudioSepError(f"no integer gain in [lower_db, higher_db] = [{lower_db}, {higher_db}]")
        self.max_mix_num = int(max_mix_num)
        self.min_mix_num = int(min_mix_num)
        self.lower_db = lower_db
        self.higher_db = higher_db
        self.mode = mode
        self.seed = seed
        self._gain_range = (low, high)
        self.generator: Optional[torch.Generator] = None
        if seed is not None:
            self.generator = torch.Generator().manual_seed(int(seed))

    def get_config(self) -> Dict:
        """Constructor arguments (to rebuild the mixer or log it)."""
        return dict(
            max_mix_num=self.max_mix_num,
            lower_db=self.lower_db,
            higher_db=self.higher_db,
            mode=self.mode,
            seed=self.seed,
            min_mix_num=self.min_mix_num,
        )

    def _randint(self, low: int, high: int, size: int) -> torch.Tensor:
        """Integers uniform in [low, high] (inclusive), on the CPU."""
        return torch.randint(low, high + 1, (size,), generator=self.generator)

    def _gains(self, batch: int, device, dtype) -> torch.Tensor:
        db = self._randint(*self._gain_range, batch).to(device=device, dtype=dtype)
        return db_to_gain(db)[:, None]

    def __call__(self, segments: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Make one mixture per batch item.

        Args:
            segments: (batch, time) or (batch, 1, time) source segments; batch >= 2 for
                meaningful mixtures (with one item it is mixed with itself, as released).

        Returns:
            ``(mixtures, targets)``, both the shape of ``segments``; ``targets`` are the
            segments after the same de-clipping scale as their mixture.
        """
        if segments.dim() == 3 and segments.shape[1] == 1:
            mixtures, targets = self(segments[:, 0])
            return mixtures[:, None], targets[:, None]
        if segments.dim() != 2:
            raise AudioSepError(f"SegmentMixer expects (batch, time) or (batch, 1, time), got {tuple(segments.shape)}")
        x = segments
        batch = x.shape[0]
        background = torch.zeros_like(x)
        if self.mode == "released":
            num_sources = self._randint(self.min_mix_num, self.max_mix_num, batch).to(x.device)
            for i in range(1, self.max_mix_num):
                other = torch.roll(x, shifts=-i, dims=0)  # other[n] = x[(n + i) % batch]
                scaled = match_energy(other, x) * self._gains(batch, x.device, x.dtype)
                background = background + scaled * (i < num_sources)[:, None].to(x.dtype)
            background = match_energy(background, x) * self._gains(batch, x.device, x.dtype)
        else:
            num_sources = self._randint(self.min_mix_num, self.max_mix_num, batch).to(x.device)
            for i in range(1, self.max_mix_num):
                other = torch.roll(x, shifts=-i, dims=0)
                background = background + other * (i < num_sources)[:, None].to(x.dtype)
            background = background * torch.sqrt(energy(x) / energy(background).clamp_min(ENERGY_FLOOR))
        mixtures = x + background
        peak = mixtures.abs().amax(dim=-1, keepdim=True)
        scale = torch.where(peak > 1.0, 0.9 / peak.clamp_min(1.0), torch.ones_like(peak))
        return mixtures * scale, x * scale

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _loudness(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS, ITU-R BS.1770 via pyloudnorm) of a mono signal."""
    import pyloudnorm  # optional dependency (``data`` extra)

    block = min(0.4, len(x) / sample_rate)
    return float(pyloudnorm.Meter(sample_rate, block_size=block).integrated_loudness(x.astype(np.float64)))


def _scale_to_loudness(x: np.ndarray, sample_rate: int, lufs: float) -> np.ndarray:
    current = _loudness(x, sample_rate)
    if not np.isfinite(current):  # silence: nothing to normalise
        return x
    return x * 10.0 ** ((lufs - current) / 20.0)


def mix_for_evaluation(
    target: np.ndarray,
    background: np.ndarray,
    rng: np.random.Generator,
    level: str = "snr",
    snr_db: float = 0.0,
    lufs_range: Sequence[float] = (-35.0, -25.0),
    sample_rate: Optional[int] = None,
    peak_limit: float = 0.9,
) -> Tuple[np.ndarray, np.ndarray, Dict[str, float]]:
    """Mix one target with one background at a fixed level, as the benchmark protocols do.

    Two level rules, one function:

    - ``level="snr"``: the background is scaled so that the target-to-background energy
      ratio is ``snr_db`` (0 dB in the paper's AudioCaps, Clotho, ESC-50 and MUSIC sets).
    - ``level="loudness"``: target and background are each normalised to a loudness drawn
      uniformly in ``lufs_range`` (VGGSound protocol; needs ``pyloudnorm``).

    Then, when the mixture's peak exceeds ``peak_limit``, target, background and mixture are
    scaled so that the mixture peaks at ``peak_limit`` (no clipping, levels ratio unchanged).

    Args:
        target: (time,) target source.
        background: (time,) background, same length as ``target``.
        rng: random generator (used by ``level="loudness"``).
        level: ``"snr"`` or ``"loudness"``.
        snr_db: target-to-background ratio in dB (``level="snr"``).
        lufs_range: range of the loudness draws in LUFS (``level="loudness"``).
        sample_rate: sample rate, needed by ``level="loudness"``.
        peak_limit: largest allowed absolute sample value of the mixture.

    Returns:
        ``(mixture, target, info)``: float32 arrays of the input length, and a dict of the
        levels used (``snr_db`` or ``target_lufs`` / ``background_lufs``, and ``scale``).
    """
    target = np.asarray(target, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    if target.shape != background.shape or target.ndim != 1:
        raise AudioSepError(
            f"target and background must be 1-D of equal length, got {target.shape} and {background.shape}")
    info: Dict[str, float] = {}
    if level == "snr":
        e_t = max(float(np.mean(target**2)), ENERGY_FLOOR)
        e_b = max(float(np.mean(background**2)), ENERGY_FLOOR)
        background = background * math.sqrt(e_t / e_b / 10.0 ** (snr_db / 10.0))
        info["snr_db"] = float(snr_db)
    elif level == "loudness":
        if sample_rate is None:
            raise AudioSepError("mixing at a loudness needs the sample_rate")
        low, high = float(lufs_range[0]), float(lufs_range[1])
        info["target_lufs"], info["background_lufs"] = (float(v) for v in rng.uniform(low, high, size=2))
        target = _scale_to_loudness(target, sample_rate, info["target_lufs"])
        background = _scale_to_loudness(background, sample_rate, info["background_lufs"])
    else:
        raise AudioSepError(f"unknown mixing level rule {level!r}; choose 'snr' or 'loudness'")
    mixture = target + background
    peak = float(np.max(np.abs(mixture))) if mixture.size else 0.0
    scale = peak_limit / peak if peak > peak_limit else 1.0
    info["scale"] = scale
    return (mixture * scale).astype(np.float32), (target * scale).astype(np.float32), info
