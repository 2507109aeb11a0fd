"""Shared fixtures: the reference material, offline Hugging Face settings, small models."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    """``../shared/reference`` beside the repository (or $AUDIOSEP_REFERENCE_DIR)."""
    env = os.environ.get("AUDIOSEP_REFERENCE_DIR")
    return Path(env) if env else REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference():
    path = reference_dir()
    if not (path / "official_forward_vectors.npz").is_file():
        pytest.fail(f"reference material not found in {path}: set AUDIOSEP_REFERENCE_DIR")
    return path


@pytest.fixture(scope="session")
def official_ckpt(reference, tmp_path_factory):
    """The stand-in released checkpoint written by the reference script."""
    out = tmp_path_factory.mktemp("official") / "audiosep_base_4M_steps.ckpt"
    subprocess.run([sys.executable, str(reference / "official_checkpoint.py"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def roberta_tokenizer_dir(tmp_path_factory):
    """A byte-level BPE RoBERTa tokenizer with no merges (real class, vocabulary made here)."""
    import json

    from transformers.models.roberta.tokenization_roberta import bytes_to_unicode

    out = tmp_path_factory.mktemp("roberta_tok")
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in bytes_to_unicode().values():
        vocab[char] = len(vocab)
    vocab["<mask>"] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")
    return out


def small_model_args(**overrides):
    """A small AudioSep configuration for fast tests (16 kHz, n_fft 256)."""
    args = dict(
        sample_rate=16000,
        n_fft=256,
        hop_length=64,
        channels=[8, 8, 16, 16],
        bottleneck_channels=16,
        pool_sizes=[[2, 2], [2, 2], [2, 2], [1, 2]],
        condition_dim=24,
    )
    args.update(overrides)
    return args
