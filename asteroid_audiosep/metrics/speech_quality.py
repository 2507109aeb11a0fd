"""Segmental SNR, LLR, WSS and the composite measures CSIG, CBAK, COVL of Hu & Loizou (2008).

These are the speech-quality measures of the speech-enhancement literature (the "Noisy",
"SEGAN", "Wave-U-Net" ... rows of the paper's Table IV), written from their published
definitions: Hu & Loizou, "Evaluation of objective quality measures for speech enhancement",
IEEE TASLP 16(1), 2008, and the reference MATLAB implementation distributed with Loizou's
book *Speech Enhancement: Theory and Practice* (``composite.m``, with the WSS, LLR and SNRseg
routines of Pellom & Hansen). Conventions kept from the reference so that numbers are
comparable with published ones:

* both signals get ``eps`` (float64 machine epsilon) added, are cut into 30 ms frames with
  75 % overlap (hop = floor(frame / 4)) and weighted by the MATLAB ``hanning`` window
  ``0.5 (1 - cos(2 pi n / (N + 1)))``, ``n = 1..N``; the frame count is
  ``floor(len / hop - frame / hop)``;
* segmental SNR: per frame ``10 log10(E_s / (E_e + eps) + eps)`` clipped to [-10, 35] dB, mean
  over all frames;
* LLR: LPC of order 10 (rate < 10 kHz) or 16 by autocorrelation and Levinson-Durbin,
  ``log(a_e R_s a_e' / a_s R_s a_s')``, clipped to [0, 2] (Hu & Loizou, Sec. III); the
  composite uses the mean of the lowest 95 % of frames;
* WSS (Klatt 1982): 25 Gaussian-shaped critical-band filters up to 3.6 kHz on the power
  spectrum (FFT size ``2^nextpow2(2 * frame)``), slopes of the dB band energies weighted with
  ``Kmax = 20``, ``Klocmax = 1``, normalised by the sum of the weights; the composite uses the
  mean of the lowest 95 % of frames. The nearest-peak search reproduces the reference's
  indexing exactly (searching up a rising slope it takes the band *before* the peak);
* ``CSIG = 3.093 - 1.029 LLR + 0.603 PESQ - 0.009 WSS``,
  ``CBAK = 1.634 + 0.478 PESQ - 0.007 WSS + 0.063 segSNR``,
  ``COVL = 1.594 + 0.805 PESQ - 0.512 LLR - 0.007 WSS``, each clipped to [1, 5].

PESQ is the wide-band MOS-LQO at 16 kHz (narrow-band at 8 kHz), as the Voicebank-DEMAND
literature computes it with the ``pesq`` package.
"""
import math
from typing import Dict, Optional, Tuple

import numpy as np

from ..errors import AudioSepError
from .perceptual import PESQ_MODES, Signal, pesq, utterance_pair

#: MATLAB's ``eps``: added to both signals and inside the segmental SNR.
EPS = float(np.finfo(np.float64).eps)
#: Analysis frame length in milliseconds (hop: a quarter of it).
FRAME_MS = 30.0
#: Fraction of the frames (the best ones) that the composite's LLR and WSS averages keep.
TRIM_ALPHA = 0.95
#: Range of the per-frame segmental SNR, in dB.
SEGSNR_RANGE = (-10.0, 35.0)
#: Range of the per-frame log-likelihood ratio.
LLR_RANGE = (0.0, 2.0)
#: Range of the composite ratings (a 1-5 MOS scale).
MOS_RANGE = (1.0, 5.0)

#: Centre frequencies (Hz) of the 25 critical-band filters of the WSS measure.
CRITICAL_BAND_CENTRES = (
    50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372, 703.378, 798.717, 904.128,
    1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08, 2446.71, 2701.97,
    2978.04, 3276.17, 3597.63,
)
#: Bandwidths (Hz) of the 25 critical-band filters of the WSS measure.
CRITICAL_BAND_WIDTHS = (
    70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398, 105.411, 116.256,
    127.914, 140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631, 255.255, 276.072,
    298.126, 321.465, 346.136,
)
_K_MAX = 20.0  # Klatt's global-peak weighting constant
_K_LOCMAX = 1.0  # Klatt's local-peak weighting constant

# The regressions of Hu & Loizou (2008): intercept, weights of PESQ, LLR, WSS and segSNR.
_REGRESSIONS = {
    "csig": (3.093, 0.603, -1.029, -0.009, 0.0),
    "cbak": (1.634, 0.478, 0.0, -0.007, 0.063),
    "covl": (1.594, 0.805, -0.512, -0.007, 0.0),
}


def _matlab_round(x: float) -> int:
    """Round half away from zero (MATLAB ``round``) for non-negative ``x``."""
    return math.floor(x + 0.5)


def frame_parameters(sample_rate: int) -> Tuple[int, int]:
    """Frame length and hop in samples: 30 ms and a quarter of it (75 % overlap)."""
    frame = _matlab_round(FRAME_MS * sample_rate / 1000.0)
    return frame, frame // 4


def _prepared(ref: Signal, est: Signal, sample_rate: int) -> Tuple[np.ndarray, np.ndarray]:
    """Check the pair and the rate; return both signals with ``EPS`` added, as the reference."""
    if int(sample_rate) < 8000:
        raise AudioSepError(
            f"segmental SNR, LLR and WSS need a rate of at least 8000 Hz (the WSS filters reach "
            f"3.6 kHz), got {sample_rate} Hz"
        )
    ref, est = utterance_pair(ref, est)
    frame, hop = frame_parameters(int(sample_rate))
    if _num_frames(ref.size, frame, hop) < 1:
        raise AudioSepError(
            f"utterance too short for 30 ms frame measures: {ref.size} samples at "
            f"{sample_rate} Hz, need at least {frame + hop}"
        )
    return ref + EPS, est + EPS


def _num_frames(length: int, frame: int, hop: int) -> int:
    # The reference loops ``for k = 1:(len/hop - frame/hop)``: a floor of that float expression.
    return max(math.floor(length / hop - frame / hop), 0)


def _windowed_frames(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Hann-windowed analysis frames, shape (frames, frame length)."""
    frame, hop = frame_parameters(sample_rate)
    count = _num_frames(x.size, frame, hop)
    starts = np.arange(count)[:, None] * hop
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * np.arange(1, frame + 1) / (frame + 1)))
    return x[starts + np.arange(frame)[None, :]] * window


def _segsnr_frames(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> np.ndarray:
    clean = _windowed_frames(ref, sample_rate)
    processed = _windowed_frames(est, sample_rate)
    signal = np.sum(clean**2, axis=1)
    noise = np.sum((clean - processed) ** 2, axis=1)
    snr = 10.0 * np.log10(signal / (noise + EPS) + EPS)
    return np.clip(snr, *SEGSNR_RANGE)


def _lpc(frames: np.ndarray, order: int) -> Tuple[np.ndarray, np.ndarray]:
    """Autocorrelation lags 0..order and LPC polynomials ``[1, -a_1, ..., -a_p]`` per frame.

    Levinson-Durbin recursion, vectorised over frames.
    """
    length = frames.shape[1]
    lags = np.stack(
        [np.sum(frames[:, : length - k] * frames[:, k:], axis=1) for k in range(order + 1)], axis=1
    )
    a = np.zeros((frames.shape[0], order + 1))  # a[:, 1..i]: predictor coefficients so far
    error = lags[:, 0].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(1, order + 1):
            past = a.copy()
            acc = np.sum(past[:, 1:i] * lags[:, i - 1 : 0 : -1], axis=1) if i > 1 else 0.0
            k = (lags[:, i] - acc) / error
            a[:, i] = k
            if i > 1:
                a[:, 1:i] = past[:, 1:i] - k[:, None] * past[:, i - 1 : 0 : -1]
            error = (1.0 - k * k) * error
    poly = -a
    poly[:, 0] = 1.0
    return lags, poly


def _llr_frames(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-frame LLR clipped to ``LLR_RANGE``; NaN where the clean frame has no LPC model."""
    order = 10 if sample_rate < 10000 else 16
    lags_clean, poly_clean = _lpc(_windowed_frames(ref, sample_rate), order)
    _, poly_processed = _lpc(_windowed_frames(est, sample_rate), order)
    idx = np.arange(order + 1)
    toeplitz = lags_clean[:, np.abs(idx[:, None] - idx[None, :])]  # (frames, p+1, p+1)
    numerator = np.einsum("fi,fij,fj->f", poly_processed, toeplitz, poly_processed)
    denominator = np.einsum("fi,fij,fj->f", poly_clean, toeplitz, poly_clean)
    with np.errstate(divide="ignore", invalid="ignore"):
        llr = np.log(numerator / denominator)
    return np.clip(llr, *LLR_RANGE)


def _critical_band_filters(sample_rate: int, half_fft: int) -> np.ndarray:
    """The 25 Gaussian critical-band filters on FFT bins 0..half_fft-1, shape (25, half_fft)."""
    max_freq = sample_rate / 2.0
    bins = np.arange(half_fft)
    min_factor = math.exp(-30.0 / (2.0 * 2.303))  # the filters' -30 dB point
    filters = np.empty((len(CRITICAL_BAND_CENTRES), half_fft))
    for i, (centre, width) in enumerate(zip(CRITICAL_BAND_CENTRES, CRITICAL_BAND_WIDTHS)):
        f0 = math.floor(centre / max_freq * half_fft)
        bw = width / max_freq * half_fft
        norm = math.log(CRITICAL_BAND_WIDTHS[0]) - math.log(width)
        row = np.exp(-11.0 * ((bins - f0) / bw) ** 2 + norm)
        filters[i] = row * (row > min_factor)
    return filters


def _nearest_peaks(energy: np.ndarray) -> np.ndarray:
    """For bands 0..23, the dB energy of the nearest spectral peak, as the reference finds it.

    On a rising slope the reference searches upwards to the end of the rise and takes the band
    just before the top; on a falling (or flat) slope it searches downwards to the top.
    """
    slope = np.diff(energy, axis=1)  # (frames, 24)
    n = slope.shape[1]
    rising = slope > 0
    # end[:, i]: first band m >= i whose slope does not rise (n if none)
    end = np.empty(slope.shape, dtype=int)
    end[:, n - 1] = np.where(rising[:, n - 1], n, n - 1)
    for i in range(n - 2, -1, -1):
        end[:, i] = np.where(rising[:, i], end[:, i + 1], i)
    # start[:, i]: last band m <= i whose slope rises (-1 if none)
    start = np.empty(slope.shape, dtype=int)
    start[:, 0] = np.where(rising[:, 0], 0, -1)
    for i in range(1, n):
        start[:, i] = np.where(rising[:, i], i, start[:, i - 1])
    peak_band = np.where(rising, end - 1, start + 1)
    return np.take_along_axis(energy, peak_band, axis=1)


def _wss_frames(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> np.ndarray:
    frame, _ = frame_parameters(sample_rate)
    n_fft = 1 << (2 * frame - 1).bit_length()  # 2^nextpow2(2 * frame)
    half = n_fft // 2
    filters = _critical_band_filters(sample_rate, half)
    weighted = []
    for x in (ref, est):
        power = np.abs(np.fft.rfft(_windowed_frames(x, sample_rate), n=n_fft, axis=1)) ** 2
        energy = 10.0 * np.log10(np.maximum(power[:, :half] @ filters.T, 1e-10))
        peaks = _nearest_peaks(energy)
        lower = energy[:, :-1]
        w_max = _K_MAX / (_K_MAX + energy.max(axis=1, keepdims=True) - lower)
        w_locmax = _K_LOCMAX / (_K_LOCMAX + peaks - lower)
        weighted.append((np.diff(energy, axis=1), w_max * w_locmax))
    (slope_clean, w_clean), (slope_processed, w_processed) = weighted
    weights = (w_clean + w_processed) / 2.0
    return np.sum(weights * (slope_clean - slope_processed) ** 2, axis=1) / np.sum(weights, axis=1)


def _trimmed_mean(values: np.ndarray, alpha: float = TRIM_ALPHA) -> float:
    """Mean of the lowest ``round(alpha * n)`` finite values (the reference's outlier trimming)."""
    values = np.sort(values[np.isfinite(values)])
    keep = _matlab_round(values.size * alpha)
    if keep == 0:
        return math.nan
    return float(np.mean(values[:keep]))


def segmental_snr(ref: Signal, est: Signal, sample_rate: int) -> float:
    """Segmental SNR ("SSNR", "SNRseg"): mean over 30 ms frames of the clipped frame SNR, in dB.

    Args:
        ref: clean reference utterance, ``(time,)`` or ``(1, time)``.
        est: processed utterance, same length.
        sample_rate: rate in Hz (>= 8000).

    Returns:
        SSNR in dB, within [-10, 35]; 35 for identical signals.

    Raises:
        AudioSepError: bad shapes, too short, or too low a rate.
    """
    r, e = _prepared(ref, est, sample_rate)
    return float(np.mean(_segsnr_frames(r, e, int(sample_rate))))


def log_likelihood_ratio(ref: Signal, est: Signal, sample_rate: int) -> float:
    """Log-likelihood ratio (Itakura): LPC spectral distance, as the composite measure uses it.

    Args:
        ref: clean reference utterance, ``(time,)`` or ``(1, time)``.
        est: processed utterance, same length.
        sample_rate: rate in Hz (>= 8000).

    Returns:
        Mean over the lowest 95 % of frames of the per-frame LLR clipped to [0, 2]; 0 for
        identical signals, larger is worse. Frames whose clean LPC model is undefined
        (digital silence) are left out.

    Raises:
        AudioSepError: bad shapes, too short, or too low a rate.
    """
    r, e = _prepared(ref, est, sample_rate)
    return _trimmed_mean(_llr_frames(r, e, int(sample_rate)))


def weighted_spectral_slope(ref: Signal, est: Signal, sample_rate: int) -> float:
    """Weighted spectral slope distance (Klatt, 1982), as the composite measure uses it.

    Args:
        ref: clean reference utterance, ``(time,)`` or ``(1, time)``.
        est: processed utterance, same length.
        sample_rate: rate in Hz (>= 8000).

    Returns:
        Mean over the lowest 95 % of frames of the per-frame WSS; 0 for identical signals,
        larger is worse.

    Raises:
        AudioSepError: bad shapes, too short, or too low a rate.
    """
    r, e = _prepared(ref, est, sample_rate)
    return _trimmed_mean(_wss_frames(r, e, int(sample_rate)))


def composite(
    ref: Signal, est: Signal, sample_rate: int, pesq_score: Optional[float] = None
) -> Dict[str, float]:
    """CSIG, CBAK and COVL of Hu & Loizou (2008), with the measures they are built from.

    Args:
        ref: clean reference utterance, ``(time,)`` or ``(1, time)``.
        est: processed utterance, same length.
        sample_rate: 16000 (wide-band PESQ) or 8000 (narrow-band PESQ).
        pesq_score: a PESQ score already computed for this pair (saves computing it again).

    Returns:
        ``{"csig", "cbak", "covl", "pesq", "llr", "wss", "ssnr"}``: the three ratings on the 1-5
        scale (5 for identical signals) and their inputs (trimmed LLR and WSS, segmental SNR).

    Raises:
        AudioSepError: bad shapes, too short, unsupported rate, or PESQ fails.
    """
    if int(sample_rate) not in PESQ_MODES:
        raise AudioSepError(
            f"the composite measures need PESQ, defined at 16000 or 8000 Hz; got {sample_rate} "
            "Hz, resample the signals first"
        )
    sample_rate = int(sample_rate)
    r, e = _prepared(ref, est, sample_rate)
    scores = {
        "pesq": float(pesq_score) if pesq_score is not None else pesq(ref, est, sample_rate),
        "llr": _trimmed_mean(_llr_frames(r, e, sample_rate)),
        "wss": _trimmed_mean(_wss_frames(r, e, sample_rate)),
        "ssnr": float(np.mean(_segsnr_frames(r, e, sample_rate))),
    }
    return {**composite_ratings(**scores), **scores}


def composite_ratings(pesq: float, llr: float, wss: float, ssnr: float) -> Dict[str, float]:
    """The three regressions of Hu & Loizou (2008) from their inputs, clipped to [1, 5].

    Args:
        pesq: PESQ score.
        llr: trimmed-mean log-likelihood ratio.
        wss: trimmed-mean weighted spectral slope distance.
        ssnr: segmental SNR in dB.

    Returns:
        ``{"csig", "cbak", "covl"}``.
    """
    ratings = {}
    for name, (intercept, w_pesq, w_llr, w_wss, w_ssnr) in _REGRESSIONS.items():
        value = intercept + w_pesq * pesq + w_llr * llr + w_wss * wss + w_ssnr * ssnr
        ratings[name] = float(np.clip(value, *MOS_RANGE))
    return ratings
