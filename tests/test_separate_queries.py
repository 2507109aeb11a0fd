"""Separation with every kind of query, through the API and the command line."""
import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import BandEncoder, nontrivial, small_model_args

from asteroid_audiosep import AudioSep, Query, separate, separate_waveform
from asteroid_audiosep.cli import main


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**small_model_args(condition_dim=16))).eval()
    model.set_query_encoder(BandEncoder(), update_spec=False)
    return model


def tone_mix(seconds, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(t.size)).astype(np.float32)


def test_span_query_equals_the_audio_query_of_that_span(model, tmp_path):
    mix = tone_mix(3.0)
    sf.write(tmp_path / "mix.wav", mix, 16000, subtype="FLOAT")
    wav = torch.from_numpy(mix)[None]
    by_span = separate_waveform(model, wav, 16000, [Query.span(1.0, 2.0)])
    by_example = separate_waveform(model, wav, 16000, [Query.audio((wav[0, 16000:32000], 16000))])
    assert torch.allclose(by_span, by_example, atol=1e-6)
    # Text and audio queries in one pass: one output per query, in order.
    both = separate_waveform(model, wav, 16000, ["dog", Query.audio(str(tmp_path / "mix.wav"), end=1.0)])
    assert both.shape == (2, 1, 48000)
    assert torch.allclose(both[0], separate_waveform(model, wav, 16000, "dog")[0], atol=1e-6)


def test_files_with_span_queries_and_named_outputs(model, tmp_path):
    sf.write(tmp_path / "long.wav", tone_mix(3.0), 16000)
    sf.write(tmp_path / "short.wav", tone_mix(1.0, seed=1), 16000)
    before = (tmp_path / "short.wav").read_bytes()
    report = separate([tmp_path / "long.wav", tmp_path / "short.wav"],
                      [Query.span(1.5, 2.5), Query.mix(["dog", "cat"], name="pet")],
                      model=model, outdir=tmp_path / "out", progress=False)
    # The span lies outside the 1 s file: that file fails alone, the other is written.
    assert [r.status for r in report.files] == ["written", "failed"]
    assert "outside" in str(report.files[1].error)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["long__pet.wav", "long__span_1_5_2_5.wav"]
    assert (tmp_path / "short.wav").read_bytes() == before


def test_command_line_audio_queries(model, tmp_path, capsys):
    torch.save(model.serialize(), tmp_path / "m.pth")
    sf.write(tmp_path / "mix.wav", tone_mix(2.0), 16000)
    sf.write(tmp_path / "bark.wav", tone_mix(1.0, seed=2), 16000)
    # The package's encoder spec is empty: a text-only table stands in, which cannot embed audio.
    from asteroid_audiosep.encoders import PrecomputedQueryEncoder

    PrecomputedQueryEncoder(table={"dog": torch.ones(16)}).save(tmp_path / "t.pt")
    rc = main(["separate", "-m", str(tmp_path / "m.pth"), "--query-embeddings", str(tmp_path / "t.pt"),
               "--query-audio", str(tmp_path / "bark.wav"), str(tmp_path / "mix.wav"), "-o", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "precomputed query encoder cannot embed audio queries" in err and "clap" in err
    assert not (tmp_path / "o").exists()
    rc = main(["separate", "-m", str(tmp_path / "m.pth"), "--query-span", "3-2", str(tmp_path / "mix.wav")])
    assert rc == 2 and "START must be < END" in capsys.readouterr().err


def test_repeated_text_queries_beside_a_span_query(model, tmp_path):
    """Identical text queries are embedded once and the span query keeps its own row."""
    wav = torch.from_numpy(tone_mix(3.0))[None]
    both = separate_waveform(model, wav, 16000, ["dog", "dog", Query.span(1.0, 2.0)])
    assert both.shape == (2, 1, 48000)
    alone = separate_waveform(model, wav, 16000, [Query.span(1.0, 2.0)])
    assert torch.allclose(both[1], alone[0], atol=1e-6)
