"""Helpers shared by the tests (plain functions and constants; fixtures live in conftest.py)."""
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from asteroid_audiosep import AudioSep
from asteroid_audiosep.audio import resample
from asteroid_audiosep.encoders import PrecomputedQueryEncoder, QueryEncoder


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


#: A deeper grid (6 levels, n_fft 512) for chunking tests: the pooling grid is 32 frames.
DEEP_ARGS = small_model_args(
    n_fft=512, hop_length=160, channels=[8, 8, 16, 16, 16, 16], pool_sizes=[[2, 2]] * 5 + [[1, 2]]
)


def nontrivial(model: AudioSep, seed: int = 0) -> AudioSep:
    """Random BatchNorm statistics and affine parameters (some negative scales), random FiLM."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                mod.running_var.copy_(0.2 + torch.rand(n, generator=g))
                mod.weight.copy_(torch.randn(n, generator=g))
                mod.bias.copy_(0.3 * torch.randn(n, generator=g))
            elif isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(0.2 * torch.randn(mod.weight.shape, generator=g))
    return model


class BandEncoder(QueryEncoder):
    """A stand-in with an audio tower: log energies of 16 frequency bands at 16 kHz (normalised),
    and a fixed table of text embeddings."""

    embed_dim = 16

    def __init__(self):
        super().__init__()
        self.texts = {"dog": F.normalize(torch.arange(16.0), dim=0), "cat": F.normalize(torch.ones(16), dim=0)}
        self.audio_calls = []

    def _embed_text(self, texts):
        return torch.stack([self.texts[t] for t in texts])

    @property
    def has_audio_tower(self):
        return True

    def encode_audio(self, wav, sample_rate):
        self.audio_calls.append(tuple(wav.shape))
        wav = resample(wav.float(), int(sample_rate), 16000)
        spec = torch.stft(wav, 512, 256, window=torch.hann_window(512), return_complex=True).abs().pow(2)
        bands = spec[:, :256].reshape(wav.shape[0], 16, 16, -1).sum(dim=(2, 3))
        return F.normalize(torch.log(bands + 1e-6) + 20, dim=-1)

    def spec(self):
        return {"type": "band"}


class TextOnly(BandEncoder):
    @property
    def has_audio_tower(self):
        return False

    def spec(self):
        return {"type": "sentence"}


#: The demo's tiny model: a few seconds of CPU per request.
DEMO_ARGS = small_model_args(n_fft=512, hop_length=160, channels=[8, 8, 16, 16],
                             pool_sizes=[[2, 2], [2, 2], [2, 2], [1, 2]])
QUERIES = ("dog barking", "speech")


def make_demo_package(root):
    """A tiny randomly initialised model package and an embedding table of :data:`QUERIES`."""
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**DEMO_ARGS))
    torch.save(model.serialize(), root / "model.pth")
    table = PrecomputedQueryEncoder(table={q: torch.randn(DEMO_ARGS["condition_dim"]) for q in QUERIES})
    table.save(root / "queries.pt")
    return root / "model.pth", root / "queries.pt"


def make_demo_wav(path, seconds=1.5, rate=22050, channels=2):
    """A test WAV (noise plus a tone) at another rate than the model's."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    wav = 0.05 * rng.standard_normal((t.size, channels)) + 0.3 * np.sin(2 * np.pi * 440 * t)[:, None]
    sf.write(path, wav.astype("float32"), rate, subtype="FLOAT")
    return path


def reference_dir() -> Path:
    """``../shared/reference`` beside the repository (or $AUDIOSEP_REFERENCE_DIR)."""
    env = os.environ.get("AUDIOSEP_REFERENCE_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "reference"
