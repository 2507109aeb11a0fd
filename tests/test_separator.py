"""`Separator`: the model loaded once, equal to the functional API, embeddings, settings checked."""
import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import DEEP_ARGS, nontrivial

from asteroid_audiosep import AudioSep, AudioSepError, Query, Separator, pretrained, separate, separate_waveform
from asteroid_audiosep.encoders import PrecomputedQueryEncoder


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    root = tmp_path_factory.mktemp("separator")
    torch.manual_seed(0)
    torch.save(nontrivial(AudioSep(**DEEP_ARGS)).serialize(), root / "model.pth")
    PrecomputedQueryEncoder(table={"dog": torch.randn(24), "rain": torch.randn(24)}).save(root / "table.pt")
    return root / "model.pth", root / "table.pt"


def test_one_load_for_two_files_and_a_waveform(package, tmp_path, monkeypatch):
    loads = []
    load = pretrained.load_model
    monkeypatch.setattr(pretrained, "load_model", lambda *a, **k: loads.append(a) or load(*a, **k))
    model, table = package
    rng = np.random.default_rng(0)
    for name, seconds in (("a.wav", 1.5), ("b.wav", 3.0)):
        sf.write(tmp_path / name, 0.1 * rng.standard_normal(int(seconds * 16000)).astype("float32"), 16000)
    sep = Separator(model, "cpu", query_embeddings=table, progress=False)
    first = sep.separate_files(tmp_path / "a.wav", ["dog"], tmp_path / "out")
    second = sep.separate_files([tmp_path / "b.wav"], ["dog", "rain"], tmp_path / "out")
    wav = sep.separate_waveform(torch.randn(2, 8000), 16000, ["rain"])
    assert first.ok and second.ok and wav.shape == (1, 2, 8000)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["a__dog.wav", "b__dog.wav", "b__rain.wav"]
    assert len(loads) == 1
    separate_waveform(model, torch.randn(8000), 16000, ["x"], condition=torch.randn(1, 24))
    assert len(loads) == 2  # the functional API loads per call; the Separator did not


def test_separator_equals_the_functional_api(package, tmp_path):
    model, table = package
    torch.manual_seed(1)
    wav, cond = torch.randn(2, 40000) * 0.1, torch.randn(2, 24)
    kwargs = dict(chunk_seconds=1.0, context_seconds=0.64)
    sep = Separator(model, "cpu", **kwargs)
    ours = sep.separate_waveform(wav, 22050, ["x", "y"], conditions=cond)
    theirs = separate_waveform(model, wav, 22050, ["x", "y"], condition=cond, **kwargs)
    assert ours.shape == (2, 2, 40000) and torch.allclose(ours, theirs, atol=1e-6)
    sf.write(tmp_path / "in.wav", wav.T.numpy(), 22050, subtype="FLOAT")
    Separator(model, "cpu", query_embeddings=table, progress=False).separate_files(
        tmp_path / "in.wav", ["dog"], tmp_path / "a")
    separate(tmp_path / "in.wav", ["dog"], model, tmp_path / "b", query_embeddings=table, progress=False)
    a, b = sf.read(tmp_path / "a" / "in__dog.wav")[0], sf.read(tmp_path / "b" / "in__dog.wav")[0]
    assert a.shape == (40000, 2) and np.abs(a - b).max() < 1e-6


def test_embed_and_settings(package):
    model, table = package
    sep = Separator(model, "cpu", query_embeddings=table)
    emb = sep.embed(["dog", "rain", "dog"])
    assert emb.shape == (3, 24) and torch.equal(emb[0], emb[2])
    assert torch.equal(emb[1], PrecomputedQueryEncoder(path=table).encode_text(["rain"])[0])
    with pytest.raises(AudioSepError, match="takes its example from the input"):
        sep.embed([Query.span(0, 1)])
    with pytest.raises(AudioSepError, match="chunk_seconds must be positive"):
        Separator(sep.model, chunk_seconds=0)
    with pytest.raises(AudioSepError, match="batch_size must be at least 1"):
        Separator(sep.model, batch_size=0)
    assert Separator(sep.model, precision="fp32").autocast_dtype is None
    assert Separator(sep.model, "cpu").autocast_dtype is None  # auto, on a CPU without native bf16 (conftest)
    with pytest.warns(UserWarning, match="emulated and slower than fp32"):  # the legacy name is an alias
        assert Separator(sep.model, "cpu", half="bf16").autocast_dtype is torch.bfloat16
