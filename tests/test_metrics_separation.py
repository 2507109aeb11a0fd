"""Released SDR / SI-SDR / SDRi: hand-computed values, torchmetrics, array kinds and errors."""
import math

import numpy as np
import pytest
import torch
from torchmetrics.functional import (
    scale_invariant_signal_distortion_ratio,
    signal_noise_ratio,
)

from asteroid_audiosep.errors import AudioSepError
from asteroid_audiosep.metrics import SI_SDR_EPS, sdr, sdri, si_sdr, si_sdri


def test_sdr_hand_computed():
    ref = np.array([1.0, -1.0, 1.0, -1.0])
    est = np.array([1.5, -1.0, 1.0, -1.0])
    # mean(s^2) = 1, mean(e^2) = 0.25 / 4 -> 10 log10(16)
    assert sdr(ref, est) == pytest.approx(10 * math.log10(16.0), abs=1e-12)
    # a gain error counts in full (BSS-eval or SI-SDR would forgive it): error = s / 2
    assert sdr(ref, 0.5 * ref) == pytest.approx(10 * math.log10(4.0), abs=1e-12)


def test_sdr_clamps_both_energies_at_1e_minus_10():
    zeros, ones = np.zeros(8), np.ones(8)
    assert sdr(zeros, zeros) == pytest.approx(0.0)  # 1e-10 / 1e-10
    assert sdr(zeros, ones) == pytest.approx(-100.0)  # 1e-10 / 1
    assert sdr(ones, ones) == pytest.approx(100.0)  # 1 / 1e-10


def test_si_sdr_hand_computed_with_float32_eps():
    eps = float(np.finfo(np.float32).eps)
    assert SI_SDR_EPS == eps
    ref, est = np.array([1.0, 0.0]), np.array([2.0, 1.0])
    a = (eps + 2.0) / (eps + 1.0)  # (eps + <s, s_hat>) / (eps + ||s||^2)
    expected = 10 * math.log10((eps + a**2) / (eps + (2.0 - a) ** 2 + 1.0))
    assert si_sdr(ref, est) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(10 * math.log10(4.0), abs=1e-5)
    # orthogonal residual of the same energy as the target: 0 dB
    assert si_sdr(ref, np.array([1.0, 1.0])) == pytest.approx(0.0, abs=1e-6)


def test_si_sdr_forgives_gain_but_sdr_does_not():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(4000)
    est = ref + 0.1 * rng.standard_normal(4000)
    assert si_sdr(ref, 3.0 * est) == pytest.approx(si_sdr(ref, est), abs=1e-6)
    assert sdr(ref, 3.0 * est) < sdr(ref, est) - 5.0


def test_improvements_are_differences_to_the_mixture():
    rng = np.random.default_rng(1)
    ref, noise = rng.standard_normal((2, 3, 2000))
    mix = ref + noise
    est = ref + 0.2 * noise
    # both plain SNRs written out: the error of est is 0.2 noise, that of mix is noise
    expected = 10 * np.log10(np.mean(ref**2, -1) / np.mean((0.2 * noise) ** 2, -1)) - 10 * np.log10(
        np.mean(ref**2, -1) / np.mean(noise**2, -1)
    )
    np.testing.assert_allclose(sdri(ref, est, mix), expected, atol=1e-10)
    np.testing.assert_allclose(sdri(ref, est, mix), 10 * np.log10(25.0), atol=1e-10)
    np.testing.assert_allclose(si_sdri(ref, est, mix), si_sdr(ref, est) - si_sdr(ref, mix))
    assert np.all(si_sdri(ref, est, mix) > 10.0)


@pytest.mark.parametrize("shape", [(8000,), (3, 8000), (2, 2, 4000)])
def test_match_torchmetrics_where_definitions_coincide(shape):
    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(shape, generator=gen)
    est = ref + 0.3 * torch.randn(shape, generator=gen)
    ours_sdr, ours_si = sdr(ref, est), si_sdr(ref, est)
    assert ours_sdr.shape == ref.shape[:-1] and ours_sdr.dtype == torch.float32
    torch.testing.assert_close(ours_sdr, signal_noise_ratio(est, ref), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        ours_si, scale_invariant_signal_distortion_ratio(est, ref), atol=1e-4, rtol=0
    )


def test_numpy_in_numpy_out_torch_in_torch_out_and_gradients():
    rng = np.random.default_rng(2)
    ref, est = rng.standard_normal((2, 4, 100))
    out = sdr(ref, est)
    assert isinstance(out, np.ndarray) and out.shape == (4,)
    assert isinstance(si_sdr(ref[0], est[0]), np.floating)
    for i in range(4):  # batched == one at a time
        assert out[i] == pytest.approx(sdr(ref[i], est[i]))
    est_t = torch.tensor(est, requires_grad=True)
    value = si_sdr(torch.tensor(ref), est_t)
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
    value.sum().backward()
    assert est_t.grad is not None and torch.isfinite(est_t.grad).all()


def test_mixed_numpy_and_torch_inputs_give_a_tensor():
    rng = np.random.default_rng(3)
    ref, est, mix = rng.standard_normal((3, 2, 50))
    out = sdri(torch.tensor(ref, dtype=torch.float32), est, mix)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), sdri(ref, est, mix), atol=1e-4)


def test_user_errors_raise_audiosep_error():
    with pytest.raises(AudioSepError, match="same shape"):
        sdr(np.zeros(10), np.zeros(11))
    with pytest.raises(AudioSepError, match="same shape"):
        sdri(np.zeros(10), np.zeros(10), np.zeros((2, 10)))
    with pytest.raises(AudioSepError, match="at least one sample"):
        si_sdr(np.zeros(0), np.zeros(0))
    with pytest.raises(AudioSepError, match="numeric"):
        sdr(np.array(["a", "b"]), np.zeros(2))
