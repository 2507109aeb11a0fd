"""SegmentMixer (released and equal-energy semantics) and evaluation mixing."""
import math

import numpy as np
import pytest
import torch

from asteroid_audiosep.data.mixing import (
    SegmentMixer,
    energy,
    match_energy,
    mix_for_evaluation,
)
from asteroid_audiosep.errors import AudioSepError


def _batch(batch=6, time=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-2, 0, batch)[:, None]
    return torch.randn(batch, time, generator=g) * scales * 0.3


def test_match_energy_equalises_and_clamps():
    ref = torch.randn(3, 1000)
    audio = torch.randn(3, 1000) * torch.tensor([[0.1], [3.0], [1e-4]])
    out = match_energy(audio, ref)
    ratio = energy(out) / energy(ref)
    assert torch.allclose(ratio[:2], torch.ones(2, 1), rtol=1e-4)
    # the third one needed a ratio below 0.02: clamped, so scaled by exactly 1 / 0.02
    assert torch.allclose(out[2], audio[2] / 0.02)
    silent_ref = torch.zeros(1, 1000)
    assert torch.allclose(match_energy(audio[:1], silent_ref), audio[:1] / 50.0)


def test_released_mixture_is_target_plus_energy_matched_background_in_gain_range():
    x = _batch()
    mixer = SegmentMixer(max_mix_num=2, lower_db=-10, higher_db=10, seed=1)
    mixtures, targets = mixer(x.clone())
    assert mixtures.shape == targets.shape == x.shape
    for n in range(x.shape[0]):
        scale = (targets[n] / x[n]).mean()  # de-clipping factor (1 when no clipping)
        assert torch.allclose(targets[n], x[n] * scale, atol=1e-6)
        background = mixtures[n] / scale - x[n]
        # the background is the next item of the batch, scaled
        other = x[(n + 1) % x.shape[0]]
        gain = (background @ other) / (other @ other)
        assert torch.allclose(background, gain * other, atol=1e-5)
        level_db = 10 * math.log10(energy(background).item() / energy(x[n]).item())
        assert -10 - 1e-3 <= level_db <= 10 + 1e-3
        assert abs(level_db - round(level_db)) < 1e-3  # integer dB gains
    assert mixtures.abs().max() <= 1.0


def test_gains_cover_range_and_are_integers():
    x = _batch(batch=8, time=2000)
    mixer = SegmentMixer(lower_db=-3, higher_db=3, seed=0)
    seen = set()
    for _ in range(30):
        mixtures, targets = mixer(x)
        background = mixtures - targets
        db = 10 * torch.log10(energy(background) / energy(targets)).squeeze(1)
        seen.update(int(round(v)) for v in db.tolist())
        assert torch.all((db >= -3.001) & (db <= 3.001))
    assert seen == set(range(-3, 4))


def test_declipping_bounds_peak_and_keeps_ratio():
    x = torch.randn(4, 3000) * 2.0  # peaks well above 1
    mixtures, targets = SegmentMixer(seed=0)(x)
    peaks = mixtures.abs().amax(dim=-1)
    assert torch.all(peaks <= 0.9 + 1e-6)
    assert torch.allclose(peaks, torch.full_like(peaks, 0.9), atol=1e-5)
    scale = targets / x
    assert torch.allclose(scale, scale[:, :1].expand_as(scale), atol=1e-5)


def test_seed_reproducible_and_different_seeds_differ():
    x = _batch()
    a = SegmentMixer(seed=3)(x)
    b = SegmentMixer(seed=3)(x)
    c = SegmentMixer(seed=4)(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_three_dimensional_input_and_more_sources():
    x = _batch(batch=5)[:, None]
    mixer = SegmentMixer(max_mix_num=3, min_mix_num=3, seed=0)
    mixtures, targets = mixer(x)
    assert mixtures.shape == x.shape
    # background must involve items n+1 and n+2: not collinear with one of them alone
    background = (mixtures - targets)[0, 0]
    other = x[1, 0]
    residual = background - (background @ other) / (other @ other) * other
    assert residual.norm() > 1e-3 * background.norm()


def test_equal_energy_mode_is_zero_db():
    x = _batch()
    mixtures, targets = SegmentMixer(mode="equal_energy", seed=0)(x)
    ratio = energy(mixtures - targets) / energy(targets)
    assert torch.allclose(ratio, torch.ones_like(ratio), rtol=1e-4)


@pytest.mark.parametrize("kwargs", [dict(mode="loud"), dict(max_mix_num=1), dict(lower_db=0.5, higher_db=0.6)])
def test_bad_configuration_raises(kwargs):
    with pytest.raises(AudioSepError):
        SegmentMixer(**kwargs)


def test_mix_for_evaluation_snr_and_loudness():
    rng = np.random.default_rng(0)
    t = rng.standard_normal(16000).astype(np.float32) * 0.1
    b = rng.standard_normal(16000).astype(np.float32) * 0.5
    mixture, target, info = mix_for_evaluation(t, b, rng, level="snr", snr_db=0.0)
    background = mixture - target
    assert abs(10 * np.log10(np.mean(target**2) / np.mean(background**2))) < 1e-3
    assert np.abs(mixture).max() <= 0.9 + 1e-6
    import pyloudnorm

    loud_t = rng.standard_normal(32000) * 0.05
    loud_b = np.sin(np.arange(32000) / 5.0) * 0.8
    mixture, target, info = mix_for_evaluation(loud_t, loud_b, rng, level="loudness", sample_rate=16000)
    assert -35 <= info["target_lufs"] <= -25 and -35 <= info["background_lufs"] <= -25
    meter = pyloudnorm.Meter(16000)
    measured = meter.integrated_loudness(target.astype(np.float64) / info["scale"])
    assert abs(measured - info["target_lufs"]) < 0.1
    assert np.abs(mixture).max() <= 0.9 + 1e-6
