"""`EmbeddingCache`: computed once, reused for the same key, recomputed for another key or a damaged file."""
import argparse

import torch

from asteroid_audiosep.embedding_cache import EmbeddingCache


def test_computed_once_then_reused_and_recomputed_for_another_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"embeddings": torch.full((2, 3), float(len(calls)))}

    path = tmp_path / "sub" / "cache.pt"
    first = EmbeddingCache(path, {"type": "x", "texts": ["a", "b"]}).get_or_compute(compute)
    again = EmbeddingCache(path, {"texts": ["a", "b"], "type": "x"}).get_or_compute(compute)  # key order is irrelevant
    assert len(calls) == 1 and torch.equal(first["embeddings"], again["embeddings"])
    other = EmbeddingCache(path, {"type": "x", "texts": ["a"]}).get_or_compute(compute)
    assert len(calls) == 2 and float(other["embeddings"][0, 0]) == 2.0
    # not valid for the caller (e.g. a text missing): recomputed; write=False leaves the file alone
    EmbeddingCache(path, {"type": "x", "texts": ["a"]}).get_or_compute(compute, write=False, valid=lambda c: False)
    assert len(calls) == 3 and float(EmbeddingCache(path, {"type": "x", "texts": ["a"]}).load()["embeddings"][0, 0]) == 2


def test_a_damaged_or_code_carrying_file_is_recomputed(tmp_path, caplog):
    path = tmp_path / "cache.pt"
    path.write_bytes(b"not a torch file")
    assert EmbeddingCache(path, "k").load() is None and "ignoring the embedding cache" in caplog.text

    torch.save({"key": '"k"', "embeddings": argparse.Namespace()}, path)  # weights_only refuses any class
    assert EmbeddingCache(path, "k").load() is None
    assert EmbeddingCache(path, "k").get_or_compute(lambda: {"embeddings": torch.ones(1)})["embeddings"].item() == 1
