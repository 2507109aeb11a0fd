"""CLAPScore, CLAPScore-i and RefCLAPScore (asteroid_audiosep.metrics.clap_score)."""
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import BandEncoder, TextOnly

from asteroid_audiosep.audio import resample
from asteroid_audiosep.encoders import QueryEncoder
from asteroid_audiosep.errors import AudioSepError
from asteroid_audiosep.metrics import ClapScorer, clap_score, clap_score_i, ref_clap_score


class LengthCoded(QueryEncoder):
    """Fixed embeddings: a signal's audio embedding is chosen by its length (in samples at
    16 kHz), a text's by the text. Not normalised, so the metric must normalise."""

    embed_dim = 4

    def __init__(self):
        super().__init__()
        self.audio = {1600: torch.tensor([1.0, 2.0, 0.5, -1.0]), 3200: torch.tensor([-0.5, 1.0, 2.0, 0.0]),
                      4800: torch.tensor([-2.0, -1.0, 0.1, 3.0])}
        self.texts = {"dog": torch.tensor([0.3, 1.5, -0.2, 0.4]), "cat": torch.tensor([-1.0, 0.2, 0.1, 0.7])}

    def _embed_text(self, texts):
        return torch.stack([self.texts[t] for t in texts])

    @property
    def has_audio_tower(self):
        return True

    def encode_audio(self, wav, sample_rate):
        assert sample_rate == 16000
        return torch.stack([self.audio[int(w.shape[-1])] for w in wav])

    def spec(self):
        return {"type": "length-coded"}


def _cos(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _noise(n, seed):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("query", ["dog", "cat"])
def test_scores_equal_the_formulas_on_fixed_embeddings(query):
    enc = LengthCoded()
    est, mix, ref = _noise(1600, 0), _noise(3200, 1), _noise(4800, 2)
    e, x, r, t = enc.audio[1600], enc.audio[3200], enc.audio[4800], enc.texts[query]
    scorer = ClapScorer(enc)
    assert clap_score(est, 16000, query, scorer) == pytest.approx(_cos(e, t), abs=1e-6)
    assert clap_score_i(est, mix, 16000, query, scorer) == pytest.approx(_cos(e, t) - _cos(x, t), abs=1e-6)
    for w in (1.0, 2.5):
        a, b = max(w * _cos(e, t), 0.0), max(_cos(e, r), 0.0)
        expected = 2 * a * b / (a + b) if a + b > 0 else 0.0
        assert ref_clap_score(est, ref, 16000, query, scorer, weight=w) == pytest.approx(expected, abs=1e-6)


def test_ref_clap_score_clips_negative_terms_to_zero():
    enc = LengthCoded()
    # cos(audio[1600], audio[4800]) < 0: the reference term is clipped, the harmonic mean is 0
    assert _cos(enc.audio[1600], enc.audio[4800]) < 0
    assert ref_clap_score(_noise(1600, 0), _noise(4800, 1), 16000, "dog", enc) == 0.0
    # identical estimate and reference: H(a, 1) with a = CLAPScore clipped at 0
    a = max(_cos(enc.audio[3200], enc.texts["dog"]), 0.0)
    assert a > 0
    got = ref_clap_score(_noise(3200, 0), _noise(3200, 5), 16000, "dog", enc)
    assert got == pytest.approx(2 * a / (a + 1), abs=1e-6)


def test_scores_ignore_the_outputs_gain():
    enc = BandEncoder()
    t = torch.arange(16000 * 2) / 16000
    wav = 0.3 * torch.sin(2 * math.pi * 700 * t) + 0.05 * _noise(t.numel(), 3)
    mix = wav + 0.2 * _noise(t.numel(), 4)
    # the encoder alone is not gain invariant (log band energies), so the metric must make it so
    raw = enc.encode_audio(torch.stack([wav, 0.01 * wav]), 16000)
    assert float((raw[0] - raw[1]).abs().max()) > 1e-2
    scorer = ClapScorer(enc)
    for gain in (0.01, 7.0):
        assert clap_score(gain * wav, 16000, "dog", scorer) == pytest.approx(clap_score(wav, 16000, "dog", scorer),
                                                                             abs=1e-5)
        assert clap_score_i(gain * wav, mix, 16000, "cat", scorer) == pytest.approx(
            clap_score_i(wav, mix, 16000, "cat", scorer), abs=1e-5)
        assert ref_clap_score(gain * wav, mix, 16000, "dog", scorer) == pytest.approx(
            ref_clap_score(wav, mix, 16000, "dog", scorer), abs=1e-5)


def test_a_file_and_its_tensor_at_another_rate_score_the_same(tmp_path):
    enc = BandEncoder()
    t = np.arange(16000 * 3) / 16000
    rng = np.random.default_rng(0)
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1500 * t)], 1)
    stereo += 0.02 * rng.standard_normal(stereo.shape)
    path = tmp_path / "out.wav"
    sf.write(path, stereo.astype("float32"), 16000, subtype="FLOAT")
    other = resample(torch.from_numpy(stereo.T.astype("float32")), 16000, 22050)  # (channels, time)
    scorer = ClapScorer(enc)
    for query in ("dog", "cat"):
        from_file = clap_score(path, None, query, scorer)
        from_tensor = clap_score(other, 22050, query, scorer)
        assert from_file == pytest.approx(from_tensor, abs=1e-2)  # resampling (band edges)
    assert abs(clap_score(path, None, "dog", scorer) - clap_score(path, None, "cat", scorer)) > 0.1


def test_files_and_texts_are_cached_and_windows_batched(tmp_path):
    enc = BandEncoder()
    path = tmp_path / "long.wav"
    sf.write(path, (0.1 * _noise(16000 * 25, 0)).numpy(), 16000, subtype="FLOAT")
    scorer = ClapScorer(enc, batch_size=8)
    first = scorer.audio_embeddings([path, (0.1 * _noise(8000, 1), 16000)])
    assert enc.audio_calls == [(3, 160000), (1, 8000)]  # the 25 s file's 3 windows in one call
    again = scorer.audio_embeddings([path])
    assert len(enc.audio_calls) == 2 and torch.equal(again[0], first[0])
    assert torch.allclose(first.norm(dim=-1), torch.ones(2))
    calls = []
    enc._embed_text = lambda texts, f=enc._embed_text: calls.append(list(texts)) or f(texts)
    scorer.text_embeddings(["dog", "cat", "dog"])
    scorer.text_embeddings(["cat"])
    assert calls == [["dog", "cat"]]


def test_silent_signals_score_nan():
    scorer = ClapScorer(BandEncoder())
    assert math.isnan(clap_score(torch.zeros(16000), 16000, "dog", scorer))
    assert math.isnan(clap_score_i(torch.zeros(16000), 0.1 * _noise(16000, 0), 16000, "dog", scorer))
    with pytest.raises(AudioSepError, match="NaN or inf"):
        clap_score(torch.full((100,), float("nan")), 16000, "dog", scorer)


def test_an_encoder_without_audio_tower_is_refused_with_what_to_do():
    with pytest.raises(AudioSepError, match="--score-encoder"):
        ClapScorer(TextOnly())
    with pytest.raises(AudioSepError, match="unknown query encoder"):
        ClapScorer('{"type": "no-such-encoder"}')
    with pytest.raises(AudioSepError, match="not found"):
        ClapScorer("/no/such/clap.pt")


def test_the_package_exports_the_functions_lazily():
    import subprocess
    import sys

    code = ("import sys, asteroid_audiosep.metrics as m; assert 'asteroid_audiosep.metrics.clap_score' not in "
            "sys.modules; import asteroid_audiosep.metrics.clap_score as mod; assert callable(m.clap_score); "
            "assert m.ClapScorer is mod.ClapScorer; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.slow  # builds a random HTSAT-tiny CLAP: 10 s to 1.5 min of CPU
def test_a_random_clap_scores_gain_and_rate_invariantly():
    """The real CLAP path (resampling to 48 kHz, HTSAT's log-mel front end, standardisation)."""
    from asteroid_audiosep.encoders import build_query_encoder

    spec = {"type": "clap", "checkpoint": None, "amodel": "HTSAT-tiny", "tokenizer": "byte-level",
            "text_config": dict(num_hidden_layers=1, intermediate_size=128, vocab_size=300), "max_length": 32,
            "seed": 0}
    enc = build_query_encoder(spec)
    t = torch.arange(16000 * 3) / 16000
    wav = 0.3 * torch.sin(2 * math.pi * 440 * t) * (torch.sin(2 * math.pi * 2 * t) > 0) + 0.02 * _noise(t.numel(), 0)
    raw = enc.encode_audio(torch.stack([wav, 0.01 * wav]), 16000)
    assert float((raw[0] - raw[1]).abs().max()) > 1e-3  # CLAP itself is not gain invariant
    scorer = ClapScorer(enc)
    score = clap_score(wav, 16000, "a beeping tone", scorer)
    assert clap_score(0.01 * wav, 16000, "a beeping tone", scorer) == pytest.approx(score, abs=1e-5)
    assert clap_score(resample(wav, 16000, 44100), 44100, "a beeping tone", scorer) == pytest.approx(score, abs=1e-2)
