"""Query encoders, offline: real classes of laion-clap / open_clip with weights made here,
the real bundled MiniLM sentence model, and precomputed tables."""
import pytest
import torch
import torch.nn.functional as F
from standins import clap_metadata

from asteroid_audiosep import AudioSepError
from asteroid_audiosep.encoders import (
    PrecomputedQueryEncoder,
    available_query_encoders,
    build_query_encoder,
)

SMALL_ROBERTA = dict(num_hidden_layers=1, intermediate_size=128, vocab_size=300)


@pytest.fixture(scope="module")
def sentence_encoder():
    return build_query_encoder("sentence")


def test_registry_names():
    assert {"clap", "clip", "sentence", "precomputed"} <= set(available_query_encoders())
    with pytest.raises(AudioSepError, match="unknown query encoder 'bert'"):
        build_query_encoder({"type": "bert"})


def test_sentence_encoder_bundled_minilm(sentence_encoder):
    emb = sentence_encoder.encode_text(["a dog barking", "a barking dog", "a violin playing"])
    assert emb.shape == (3, 384)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3
    spec = sentence_encoder.spec()
    assert spec["type"] == "sentence" and spec["embed_dim"] == 384


def test_identical_queries_are_embedded_once(sentence_encoder, monkeypatch):
    seen = []
    original = sentence_encoder._embed_text

    def spy(texts):
        seen.append(list(texts))
        return original(texts)

    monkeypatch.setattr(sentence_encoder, "_embed_text", spy)
    emb = sentence_encoder.encode_text(["rain", "siren", "rain", "rain"])
    assert seen == [["rain", "siren"]]
    assert torch.equal(emb[0], emb[2]) and torch.equal(emb[0], emb[3])
    assert not torch.equal(emb[0], emb[1])


@pytest.mark.parametrize("texts, message", [([], "no text query"), (["ok", ""], "empty string"),
                                            ("dog", "not a single string"), ([3], "expected a string")])
def test_bad_text_queries(sentence_encoder, texts, message):
    with pytest.raises(AudioSepError, match=message):
        sentence_encoder.encode_text(texts)


def test_precomputed_table_round_trip(sentence_encoder, tmp_path):
    texts = ["wind", "rain", "wind"]
    table = PrecomputedQueryEncoder.from_encoder(sentence_encoder, texts, batch_size=1)
    assert len(table) == 2 and "rain" in table
    path = table.save(tmp_path / "cache" / "emb.pt")
    loaded = build_query_encoder(table.spec())
    assert loaded.spec() == {"type": "precomputed", "path": str(path), "embed_dim": 384}
    assert loaded.source["type"] == "sentence"
    # Batched with padding vs one by one: equal up to float rounding.
    assert torch.allclose(loaded.encode_text(["rain", "wind"]), sentence_encoder.encode_text(["rain", "wind"]), atol=1e-5)
    with pytest.raises(AudioSepError, match="not in the embedding table"):
        loaded.encode_text(["thunder"])
    with pytest.raises(AudioSepError, match="not found"):
        PrecomputedQueryEncoder(path=tmp_path / "missing.pt")


@pytest.fixture(scope="module")
def clap_pair(roberta_tokenizer_dir, tmp_path_factory):
    """A randomly initialised CLAP (real laion-clap classes) and a checkpoint file it wrote,
    in the published layout ('module.' prefixes, position_ids buffer, training metadata)."""
    torch.manual_seed(0)
    kw = dict(amodel="HTSAT-tiny", tokenizer=str(roberta_tokenizer_dir), text_config=SMALL_ROBERTA)
    writer = build_query_encoder({"type": "clap", "checkpoint": None, **kw})
    state = {f"module.{k}": v for k, v in writer.model.state_dict().items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(514)[None]
    path = tmp_path_factory.mktemp("clap") / "clap.pt"
    torch.save({**clap_metadata(), "state_dict": state}, path)  # read by the weights-only loader
    return writer, path, kw


def test_clap_checkpoint_file_gives_same_embeddings(clap_pair):
    writer, path, kw = clap_pair
    reader = build_query_encoder({"type": "clap", "checkpoint": str(path), **kw})
    texts = ["a dog barking", "church bells ringing"]
    a, b = writer.encode_text(texts), reader.encode_text(texts)
    assert a.shape == (2, 512)
    assert torch.allclose(a.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a[0], a[1])
    wav = torch.randn(2, 16000)
    emb_a, emb_b = writer.encode_audio(wav, 32000), reader.encode_audio(wav, 32000)
    assert emb_a.shape == (2, 512)
    assert torch.allclose(emb_a, emb_b, atol=1e-5)
    assert reader.spec()["checkpoint"] == str(path)
    assert reader.has_audio_tower


def test_clap_rejects_foreign_weights(clap_pair, tmp_path):
    _, _, kw = clap_pair
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {"foo.weight": torch.zeros(3)}}, bad)
    with pytest.raises(AudioSepError, match="do not fit"):
        build_query_encoder({"type": "clap", "checkpoint": str(bad), **kw})
    with pytest.raises(AudioSepError, match="not found"):
        build_query_encoder({"type": "clap", "checkpoint": str(tmp_path / "nope.pt"), **kw})


def test_seeded_random_clap_with_the_shipped_tokenizer_is_rebuilt_from_its_spec(clap_pair):
    writer, _, _ = clap_pair
    spec = {"type": "clap", "checkpoint": None, "amodel": "HTSAT-tiny", "tokenizer": "byte-level",
            "text_config": SMALL_ROBERTA, "max_length": 32, "seed": 3}
    a = build_query_encoder(spec)
    texts, wav = ["siren", "a dog barking"], torch.randn(2, 8000)
    assert a.spec()["seed"] == 3 and a.spec()["tokenizer"] == "byte-level"
    assert not torch.allclose(a.encode_text(texts), writer.encode_text(texts), atol=1e-3)
    stats = {"text_mean": [0.01] * 512, "text_std": [0.5] * 512, "audio_mean": [0.02] * 512,
             "audio_std": [2.0] * 512}
    # Rebuilt from its spec (as at evaluation, from the model package): the same towers, and
    # the standardisation applied to both modalities.
    c = build_query_encoder(dict(a.spec(), standardize=stats))
    assert torch.allclose(c.encode_text(texts), F.normalize((a.encode_text(texts) - 0.01) / 0.5, dim=-1), atol=1e-5)
    assert torch.allclose(c.encode_audio(wav, 16000), F.normalize((a.encode_audio(wav, 16000) - 0.02) / 2.0, dim=-1),
                          atol=1e-4)
    assert c.spec()["standardize"] == stats and c.spec()["seed"] == 3
    with pytest.raises(AudioSepError, match="standardize needs"):
        build_query_encoder(dict(a.spec(), standardize={"text_mean": [0.0]}))


def test_clip_text_tower_from_local_weights(tmp_path):
    import open_clip

    torch.manual_seed(0)
    reference = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    path = tmp_path / "clip.pt"
    torch.save(reference.state_dict(), path)
    encoder = build_query_encoder({"type": "clip", "pretrained": str(path)})
    texts = ["a dog barking", "rain on a roof"]
    emb = encoder.encode_text(texts)
    with torch.no_grad():
        expected = reference.encode_text(open_clip.get_tokenizer("ViT-B-32")(texts))
    expected = torch.nn.functional.normalize(expected, dim=-1)
    assert emb.shape == (2, 512)
    assert torch.allclose(emb, expected, atol=1e-5)
    assert encoder.spec() == {"type": "clip", "model_name": "ViT-B-32", "pretrained": str(path), "embed_dim": 512}
    with pytest.raises(AudioSepError, match="cannot embed audio"):
        encoder.encode_audio(torch.randn(1, 100), 16000)
