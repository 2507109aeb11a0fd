"""What the benchmarks share: the stand-in released package, the test signals and conditions, the
reduced model, and a stand-in query encoder with an audio tower.

Import it from a benchmark script (``benchmarks/`` is put on ``sys.path`` by running the script
from there, and the repository by :data:`REPO`).
"""
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
#: The reference material (the stand-in released checkpoint script).
REFERENCE = Path(os.environ.get("AUDIOSEP_REFERENCE_DIR", REPO.parent / "shared" / "reference"))

#: The reduced model, overriding the released arguments: the released pooling depth's shape at
#: 16 kHz with a 512-point STFT and narrow layers (dry runs, hour-long memory runs, CPU training).
REDUCED_ARGS = dict(
    sample_rate=16000,
    n_fft=512,
    hop_length=160,
    channels=[8, 16, 16, 32],
    bottleneck_channels=32,
    pool_sizes=[[2, 2], [2, 2], [2, 2], [1, 2]],
)


def reduced_model(seed: int = 0, **overrides):
    """The reduced :class:`AudioSep` (seeded random weights, eval mode)."""
    from asteroid_audiosep import AudioSep
    from asteroid_audiosep.models import RELEASED_ARGS

    torch.manual_seed(seed)
    return AudioSep(**{**RELEASED_ARGS, **REDUCED_ARGS, **overrides}).eval()


def stand_in_package(workdir: Path, required: bool = True) -> Optional[Path]:
    """The stand-in released checkpoint (the reference script), converted to a model package in
    ``workdir`` once; None when the reference material is missing and not ``required``."""
    script = REFERENCE / "official_checkpoint.py"
    if not script.is_file():
        if not required:
            return None
        raise FileNotFoundError(f"{script} not found: set AUDIOSEP_REFERENCE_DIR to the reference material")
    from asteroid_audiosep.official import convert_official

    ckpt, package = Path(workdir) / "official.ckpt", Path(workdir) / "official.pth"
    if not package.is_file():
        subprocess.run([sys.executable, str(script), str(ckpt)], check=True, capture_output=True)
        convert_official(ckpt, package)
        ckpt.unlink()
    return package


def test_signal(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """(channels, samples): noise with a slow amplitude envelope plus a gated 440 Hz tone."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    tone = 0.2 * torch.sin(2 * math.pi * 440 * t) * (torch.sin(2 * math.pi * 0.5 * t) > 0)
    return 0.1 * torch.randn(channels, t.numel(), generator=g) * (1 + torch.sin(0.3 * t)) + tone


def conditions(count: int = 1, dim: int = 512, seed: int = 1) -> torch.Tensor:
    """(count, dim) unit-norm random conditions."""
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(count, dim, generator=g), dim=-1)


def write_noise_file(path: Path, minutes: float, rate: int = 32000) -> None:
    """A long mono 16-bit file of noise and a tone, written block by block (never held whole)."""
    import numpy as np
    import soundfile as sf

    if Path(path).is_file():
        return
    rng = np.random.default_rng(0)
    total, block = int(minutes * 60 * rate), 60 * rate
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / rate
            f.write((0.1 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * 440 * t)).astype("float32"))


def band_encoder(dim: int = 512):
    """A stand-in query encoder with an audio tower (no download): audio -> normalised log
    energies of ``dim`` frequency bands; text -> a fixed random vector per text."""
    from asteroid_audiosep.encoders import QueryEncoder

    class BandEncoder(QueryEncoder):
        embed_dim = dim

        def _embed_text(self, texts):
            rows = [torch.randn(dim, generator=torch.Generator().manual_seed(sum(map(ord, t)))) for t in texts]
            return F.normalize(torch.stack(rows), dim=-1)

        @property
        def has_audio_tower(self):
            return True

        def encode_audio(self, wav, sample_rate):
            n_fft = 2 * dim
            spec = torch.stft(wav.float(), n_fft, n_fft // 2, window=torch.hann_window(n_fft), return_complex=True)
            return F.normalize(torch.log(spec.abs().pow(2).mean(-1)[:, :dim] + 1e-6) + 20, dim=-1)

        def spec(self):
            return {"type": "band", "dim": dim}

    return BandEncoder()
