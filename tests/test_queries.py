"""Query objects: every kind resolves to one embedding; bad queries fail with one clear error."""
import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from helpers import BandEncoder, TextOnly

from asteroid_audiosep import AudioSepError, Query
from asteroid_audiosep.audio import resample
from asteroid_audiosep.queries import embed_queries
from asteroid_audiosep.query_files import load_queries_file, parse_audio_argument, parse_span


def chirp(seconds, rate, f0=300.0, f1=3000.0, seed=0):
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    x = np.sin(2 * np.pi * (f0 + (f1 - f0) * t / seconds / 2) * t) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def test_the_same_example_as_file_tensor_at_another_rate_and_span(tmp_path):
    enc = BandEncoder()
    example = chirp(2.0, 32000)
    sf.write(tmp_path / "ex.wav", example, 32000, subtype="FLOAT")
    longer = np.concatenate([np.zeros(32000, np.float32) + 0.01 * chirp(1.0, 32000, 50, 60, seed=1), example,
                             0.01 * chirp(1.0, 32000, 50, 60, seed=2)])
    sf.write(tmp_path / "long.wav", longer, 32000, subtype="FLOAT")
    at_44k = resample(torch.from_numpy(example)[None], 32000, 44100)[0]
    embs = embed_queries(enc, [
        Query.audio(str(tmp_path / "ex.wav")),
        Query.audio((at_44k, 44100)),
        Query.audio(str(tmp_path / "long.wav"), start=1.0, end=3.0),
        parse_audio_argument(f"{tmp_path / 'long.wav'}@1-3"),
    ])
    cos = embs @ embs[0]
    print("cosine to the file's embedding:", cos.tolist())
    assert torch.allclose(embs[2], embs[0], atol=1e-6) and torch.allclose(embs[3], embs[0], atol=1e-6)
    assert float(cos[1]) > 0.9999  # resampled to 44.1 kHz and back: within resampling error
    # A span of the input itself: the reader returns that part of the input.
    span = embed_queries(enc, [Query.span(1.0, 3.0)], span_reader=lambda s, e: (
        torch.from_numpy(longer[int(s * 32000):int(e * 32000)]), 32000))
    assert torch.allclose(span[0], embs[0], atol=1e-6)


def test_few_shot_long_examples_and_combinations(tmp_path):
    enc = BandEncoder()
    a, b = chirp(1.0, 16000, seed=3), chirp(1.0, 16000, 800, 900, seed=4)
    single = embed_queries(enc, [Query.audio((torch.from_numpy(a), 16000))])[0]
    one_shot = embed_queries(enc, [Query.audio((torch.from_numpy(a), 16000))])[0]
    assert torch.equal(single, one_shot)
    two = embed_queries(enc, [Query.audio((torch.from_numpy(a), 16000), (torch.from_numpy(b), 16000))])[0]
    eb = embed_queries(enc, [Query.audio((torch.from_numpy(b), 16000))])[0]
    assert torch.allclose(two, F.normalize(single + eb, dim=0), atol=1e-6)
    # Weights (1, 0): the first part; a mix is normalised.
    mix = embed_queries(enc, [Query.mix(["dog", Query.audio((torch.from_numpy(a), 16000))], [1, 0]),
                              Query.mix(["dog", "cat"], [0.5, 0.5])])
    assert torch.allclose(mix[0], enc.texts["dog"], atol=1e-6)
    assert torch.allclose(mix[1], F.normalize(enc.texts["dog"] + enc.texts["cat"], dim=0), atol=1e-6)
    # Longer than one 10 s window: averaged over equal windows (3 for 25 s).
    enc.audio_calls.clear()
    embed_queries(enc, [Query.audio((torch.from_numpy(chirp(25.0, 16000)), 16000))])
    assert enc.audio_calls == [(3, 160000)]
    # Text queries keep the encoder's embedding exactly.
    assert torch.equal(embed_queries(enc, ["dog"])[0], enc.texts["dog"])


def test_bad_queries_fail_with_one_clear_error(tmp_path):
    enc = BandEncoder()
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioSepError, match="silent"):
        embed_queries(enc, [Query.audio(str(silent))])
    with pytest.raises(AudioSepError, match="empty"):
        embed_queries(enc, [Query.audio((torch.zeros(0), 16000))])
    with pytest.raises(AudioSepError, match="outside"):
        embed_queries(enc, [Query.audio(str(silent), start=0.5, end=2.0)])
    with pytest.raises(AudioSepError, match="START must be >= 0 and < END"):
        Query.span(2.0, 1.0)
    with pytest.raises(AudioSepError, match="START must be < END"):
        parse_span("4-3")
    with pytest.raises(AudioSepError, match=r"the sentence query encoder cannot embed audio queries.*clap"):
        embed_queries(TextOnly(), ["dog", Query.audio(str(silent))])
    with pytest.raises(AudioSepError, match=r"cannot embed span queries"):
        embed_queries(TextOnly(), [Query.span(0, 1)])
    with pytest.raises(AudioSepError, match=r"cannot embed image queries.*clip"):
        embed_queries(enc, [Query.image("dog.jpg")])
    with pytest.raises(AudioSepError, match="empty string"):
        Query.text("  ")


def test_queries_file(tmp_path):
    sf.write(tmp_path / "bark.wav", chirp(1.0, 16000), 16000)
    (tmp_path / "q.yaml").write_text(
        'dog: {text: "dog", audio: [bark.wav], weights: [0.5, 0.5]}\nsiren: cat\nbark: {audio: bark.wav@0-0.5}\n')
    queries = load_queries_file(tmp_path / "q.yaml")
    assert [q.label for q in queries] == ["dog", "siren", "bark"]
    assert queries[0].kind == "mix" and queries[1].kind == "text" and queries[2].kind == "audio"
    assert queries[2].examples[0].end == 0.5
    embs = embed_queries(BandEncoder(), queries)
    assert embs.shape == (3, 16) and torch.isfinite(embs).all()
    (tmp_path / "bad.yaml").write_text("dog: {text: dog\ncat: x\n")
    with pytest.raises(AudioSepError, match=r"bad.yaml line \d+"):
        load_queries_file(tmp_path / "bad.yaml")
    (tmp_path / "empty.yaml").write_text("dog: {weights: [1]}\n")
    with pytest.raises(AudioSepError, match="has no text, audio"):
        load_queries_file(tmp_path / "empty.yaml")
