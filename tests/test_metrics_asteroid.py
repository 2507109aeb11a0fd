"""Asteroid's ``get_metrics`` as extra columns; how its BSS-eval SDR differs from the released."""
import numpy as np
import pytest
from scipy.signal import lfilter

from asteroid_audiosep.errors import AudioSepError
from asteroid_audiosep.metrics import asteroid_metrics, sdr, si_sdr


@pytest.fixture(scope="module")
def item():
    rng = np.random.default_rng(0)
    ref = lfilter([1.0], [1.0, -0.8], rng.standard_normal(16000))
    mix = ref + rng.standard_normal(16000)
    # the estimate is a low-passed copy of the target: a filter, no added noise
    est = lfilter([0.5, 0.5], [1.0], ref)
    return mix, ref, est


def test_columns_and_values(item):
    mix, ref, est = item
    scores = asteroid_metrics(mix, ref, est, 16000)
    names = ["si_sdr", "sdr", "sar", "stoi", "pesq"]
    assert set(scores) == {f"asteroid_{p}{n}" for n in names for p in ("", "input_")}
    # Asteroid's SI-SDR removes the means first; the released one does not
    zero_mean = float(si_sdr(ref - ref.mean(), est - est.mean()))
    assert scores["asteroid_si_sdr"] == pytest.approx(zero_mean, abs=1e-6)
    assert scores["asteroid_si_sdr"] != pytest.approx(float(si_sdr(ref, est)), abs=1e-4)
    # BSS-eval forgives the filter, the released plain SNR does not
    assert scores["asteroid_sdr"] > float(sdr(ref, est)) + 10.0
    assert scores["asteroid_sdr"] > scores["asteroid_input_sdr"]


def test_options_and_errors(item):
    mix, ref, est = item
    only = asteroid_metrics(mix, ref, est, 32000, metrics=["si_sdr"], prefix="a_", with_input=False)
    assert list(only) == ["a_si_sdr"]
    assert "asteroid_pesq" not in asteroid_metrics(mix, ref, est, 32000, metrics=None)
    with pytest.raises(AudioSepError, match="PESQ needs"):
        asteroid_metrics(mix, ref, est, 32000, metrics=["pesq"])
    with pytest.raises(AudioSepError, match="unknown"):
        asteroid_metrics(mix, ref, est, 16000, metrics=["bogus"])
    with pytest.raises(AudioSepError, match="same length"):
        asteroid_metrics(mix[:-1], ref, est, 16000, metrics=["si_sdr"])
