"""PESQ, STOI, segmental SNR, LLR, WSS and the composite measures (Hu & Loizou, 2008)."""
import math
import warnings
from itertools import pairwise

import numpy as np
import pytest
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter

from asteroid_audiosep.errors import AudioSepError
from asteroid_audiosep.metrics import (
    ENHANCEMENT_METRICS,
    composite,
    composite_ratings,
    enhancement_metrics,
    log_likelihood_ratio,
    pesq,
    segmental_snr,
    speech_quality,
    stoi,
    weighted_spectral_slope,
)


def speech_like(sample_rate: int, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """A voiced, vowel-like utterance: glottal pulses through four formants, 3 syllables/s.

    The envelope never reaches digital silence, so every 30 ms frame has speech energy.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 130.0 + 25.0 * np.sin(2 * np.pi * 0.5 * t)
    pulses = np.diff(np.floor(np.cumsum(f0) / sample_rate), prepend=0.0)
    excitation = lfilter([1.0], [1.0, -0.9], pulses) + 0.05 * rng.standard_normal(t.size)
    x = np.zeros_like(t)
    formants = ((600, 90, 1.0), (1100, 110, 0.6), (2500, 170, 0.3), (3500, 250, 0.15))
    for centre, bandwidth, gain in formants:
        r = np.exp(-np.pi * bandwidth / sample_rate)
        theta = 2 * np.pi * centre / sample_rate
        x += gain * lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], excitation)
    x *= 0.05 + 0.95 * np.sin(np.pi * 3.0 * t) ** 2
    return 0.5 * x / np.abs(x).max()


def with_white_noise(clean: np.ndarray, snr_db: float, seed: int = 123) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(clean.shape)
    gain = np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return clean + gain * noise


@pytest.fixture(scope="module")
def clean16():
    return speech_like(16000)


# Computed once with this implementation (numpy 1.26, pesq 0.0.4, pystoi 0.4.1) on
# speech_like(16000) + white noise at 20 dB SNR, then checked: every value lies inside its
# published range (PESQ-WB [-0.5, 4.64], ratings [1, 5], LLR [0, 2], SSNR [-10, 35], WSS >= 0,
# STOI [0, 1]), the ratings follow from the components by the published regressions (tested
# below), and they fall between the clean and noisier cases of the monotonicity test.
# Pinned to catch regressions in framing, windowing, LPC, filter bank or peak search.
PINNED_16K_20DB = {
    "pesq": 1.805289626121521,
    "csig": 2.4478085980766084,
    "cbak": 3.3899430621299027,
    "covl": 2.1499428123334905,
    "ssnr": 15.700914706142933,
    "stoi": 0.881831354184439,
    "llr": 1.5647897090842677,
    "wss": 13.73471509188415,
}
PINNED_8K_20DB = {  # the same at 8 kHz (narrow-band PESQ, LPC order 10)
    "pesq": 2.349846363067627,
    "csig": 3.812285431316229,
    "cbak": 3.6480141003940707,
    "covl": 3.1025061068203312,
    "ssnr": 15.724698864060112,
    "stoi": 0.9055148596378304,
    "llr": 0.5532260270723963,
    "wss": 14.266927084005998,
}


def test_identical_signals_give_the_maxima(clean16):
    scores = enhancement_metrics(clean16, clean16, 16000)
    assert list(scores) == list(ENHANCEMENT_METRICS)
    assert scores["pesq"] > 4.6  # wide-band MOS-LQO tops out at 4.64
    assert scores["csig"] == scores["cbak"] == scores["covl"] == 5.0
    assert scores["ssnr"] == 35.0
    assert scores["llr"] == pytest.approx(0.0, abs=1e-9)
    assert scores["wss"] == pytest.approx(0.0, abs=1e-9)
    assert scores["stoi"] == pytest.approx(1.0, abs=1e-6)


def test_scores_fall_monotonically_as_noise_is_added(clean16):
    rows = [
        enhancement_metrics(clean16, with_white_noise(clean16, snr), 16000) for snr in (30, 20, 10, 0)
    ]
    for name in ("pesq", "csig", "cbak", "covl", "ssnr", "stoi"):
        values = [row[name] for row in rows]
        assert all(a > b for a, b in pairwise(values)), (name, values)
    wss = [row["wss"] for row in rows]
    assert all(a < b for a, b in pairwise(wss)), wss
    llr = [row["llr"] for row in rows]  # distortion: rises, saturating at its clip value 2
    assert all(a <= b for a, b in pairwise(llr)) and llr[0] < llr[-1] <= 2.0, llr


@pytest.mark.parametrize("sample_rate, pinned", [(16000, PINNED_16K_20DB), (8000, PINNED_8K_20DB)])
def test_pinned_values_on_a_fixed_synthetic_case(sample_rate, pinned):
    clean = speech_like(sample_rate)
    scores = enhancement_metrics(clean, with_white_noise(clean, 20.0), sample_rate)
    for name, value in pinned.items():
        assert scores[name] == pytest.approx(value, abs=1e-4), name


def test_composite_regressions_match_the_published_example():
    # Loizou's composite.m example (sp09.wav vs enhanced_logmmse.wav): LLR=0.681368
    # SNRseg=3.991727 WSS=49.671978 PESQ=2.255732 -> Csig 3.3050, Cbak 2.6160, Covl 2.7133
    ratings = composite_ratings(pesq=2.255732, llr=0.681368, wss=49.671978, ssnr=3.991727)
    assert ratings["csig"] == pytest.approx(3.3050, abs=6e-5)
    assert ratings["cbak"] == pytest.approx(2.6160, abs=6e-5)
    assert ratings["covl"] == pytest.approx(2.7133, abs=6e-5)
    # clipped to the 1-5 scale at both ends
    assert set(composite_ratings(4.64, 0.0, 0.0, 35.0).values()) == {5.0}
    assert set(composite_ratings(-0.5, 2.0, 150.0, -10.0).values()) == {1.0}


def test_composite_is_its_regressions_of_its_components(clean16):
    scores = composite(clean16, with_white_noise(clean16, 10.0), 16000)
    expected = composite_ratings(scores["pesq"], scores["llr"], scores["wss"], scores["ssnr"])
    for name, value in expected.items():
        assert scores[name] == value
    given = composite(clean16, with_white_noise(clean16, 10.0), 16000, pesq_score=3.0)
    assert given["pesq"] == 3.0 and given["csig"] > scores["csig"]


def test_segmental_snr_hand_computed(clean16):
    # a gain error gives the same SNR in every frame: 10 log10(1 / 0.5^2)
    six_db = 10 * math.log10(4)
    assert segmental_snr(clean16, 0.5 * clean16, 16000) == pytest.approx(six_db, abs=1e-9)
    assert segmental_snr(clean16, -clean16, 16000) == pytest.approx(-six_db, abs=1e-9)
    assert segmental_snr(clean16, clean16 * (1 + 1e-3), 16000) == 35.0  # 60 dB, clipped
    assert segmental_snr(clean16, clean16 * 1e3, 16000) == -10.0  # about -60 dB, clipped
    # a digitally silent reference frame scores the floor even when the estimate matches it
    half_silent = clean16.copy()
    half_silent[: clean16.size // 2] = 0.0
    assert segmental_snr(half_silent, half_silent, 16000) == pytest.approx((35 - 10) / 2, abs=0.3)


def test_llr_and_wss_ignore_gain_and_wss_is_symmetric(clean16):
    assert log_likelihood_ratio(clean16, 2.0 * clean16, 16000) == pytest.approx(0.0, abs=1e-9)
    assert weighted_spectral_slope(clean16, 2.0 * clean16, 16000) == pytest.approx(0.0, abs=1e-9)
    noisy = with_white_noise(clean16, 5.0)
    assert weighted_spectral_slope(clean16, noisy, 16000) == pytest.approx(
        weighted_spectral_slope(noisy, clean16, 16000), rel=1e-12
    )


def test_lpc_matches_the_normal_equations():
    rng = np.random.default_rng(1)
    frames = lfilter([1.0], [1.0, -1.2, 0.6], rng.standard_normal((3, 480)), axis=1)
    lags, poly = speech_quality._lpc(frames, 16)
    for f in range(3):
        expected = np.array([np.dot(frames[f, : 480 - k], frames[f, k:]) for k in range(17)])
        np.testing.assert_allclose(lags[f], expected, rtol=1e-12)
        coefficients = solve_toeplitz(lags[f, :16], lags[f, 1:17])
        np.testing.assert_allclose(poly[f], np.concatenate([[1.0], -coefficients]), atol=1e-10)


def _reference_peak_search(energy: np.ndarray) -> np.ndarray:
    """The reference's loops, 1-based indices as in wss.m, for one frame of 25 band energies."""
    num_crit = energy.size
    E = np.concatenate([[np.nan], energy])  # E[1..25]
    slope = np.concatenate([[np.nan], E[2:] - E[1:-1]])  # slope[1..24]
    peaks = []
    for i in range(1, num_crit):
        n = i
        if slope[i] > 0:
            while n < num_crit and slope[n] > 0:
                n += 1
            peaks.append(E[n - 1])
        else:
            while n > 0 and slope[n] <= 0:
                n -= 1
            peaks.append(E[n + 1])
    return np.array(peaks)


def test_peak_search_matches_the_reference_loops():
    rng = np.random.default_rng(5)
    energy = np.round(rng.normal(0, 10, size=(200, 25)))  # rounding makes flat slopes too
    energy[0] = np.arange(25)  # rising everywhere
    energy[1] = -np.arange(25)  # falling everywhere
    got = speech_quality._nearest_peaks(energy)
    for frame in range(energy.shape[0]):
        np.testing.assert_array_equal(got[frame], _reference_peak_search(energy[frame]))


def test_pesq_and_stoi_use_the_packages_and_check_rates(clean16):
    noisy = with_white_noise(clean16, 10.0)
    from pesq import pesq as package_pesq
    from pystoi import stoi as package_stoi

    assert pesq(clean16, noisy, 16000) == pytest.approx(package_pesq(16000, clean16, noisy, "wb"))
    assert stoi(clean16, noisy, 16000) == pytest.approx(package_stoi(clean16, noisy, 16000))
    assert pesq(clean16[None], noisy[None], 16000) == pesq(clean16, noisy, 16000)  # (1, T) ok
    with pytest.raises(AudioSepError, match="16000 Hz"):
        pesq(clean16, noisy, 32000)
    with pytest.raises(AudioSepError, match="resample"):
        composite(clean16, noisy, 44100)
    with pytest.raises(AudioSepError, match="at least 8000"):
        segmental_snr(clean16, noisy, 4000)


def test_user_errors_and_nan_on_unscorable_pesq(clean16):
    with pytest.raises(AudioSepError, match="lengths differ"):
        enhancement_metrics(clean16, clean16[:-1], 16000)
    with pytest.raises(AudioSepError, match="mono"):
        segmental_snr(np.stack([clean16, clean16]), np.stack([clean16, clean16]), 16000)
    with pytest.raises(AudioSepError, match="too short"):
        log_likelihood_ratio(clean16[:500], clean16[:500], 16000)
    silent = np.zeros(16000)
    with pytest.raises(AudioSepError, match="PESQ cannot score"):
        pesq(silent, clean16[:16000], 16000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = enhancement_metrics(silent, clean16[:16000], 16000, on_error="nan")
    assert any("PESQ cannot score" in str(w.message) for w in caught)
    assert all(math.isnan(scores[k]) for k in ("pesq", "csig", "cbak", "covl", "llr", "wss"))
    assert scores["ssnr"] == -10.0 and not math.isnan(scores["stoi"])
