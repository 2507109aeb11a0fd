"""GPU code paths checked on the CPU: device resolution, dtype handling, device placement of the
model and its query encoder, half-precision (autocast) inference, and mixed-precision training
through the recipe's train step (``training.precision``)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers import small_model_args

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.api import _half_dtype, load_separator
from asteroid_audiosep.apply import separate_segment
from asteroid_audiosep.devices import resolve_device
from asteroid_audiosep.encoders import PrecomputedQueryEncoder
from asteroid_audiosep.metrics.separation import si_sdr

REPO = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO / "egs" / "audiosep" / "train.py"
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages given without a GPU")


def small_model(seed: int = 0, **overrides) -> AudioSep:
    torch.manual_seed(seed)
    model = AudioSep(**small_model_args(**overrides))
    # Non-trivial running statistics, so that the folded BatchNorms are exercised.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def mixture(seconds: float, rate: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    return (0.1 * torch.randn(t.numel(), generator=g) + 0.3 * torch.sin(2 * torch.pi * 440 * t))[None]


def condition(dim: int, count: int = 1) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(count, dim, generator=torch.Generator().manual_seed(1)), dim=-1)


# ---------------------------------------------------------------------- device and dtype
def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(AudioSepError, match="only 2 GPU"):
        resolve_device("cuda:2")


@no_gpu
def test_cuda_without_a_gpu_says_what_to_do():
    with pytest.raises(AudioSepError, match="use cpu"):
        resolve_device("cuda")
    with pytest.raises(AudioSepError, match="no CUDA GPU"):
        load_separator(small_model(), device="cuda")


def test_half_dtype_names():
    """The legacy ``half`` values are aliases of ``precision`` (see tests/test_precision.py)."""
    cuda = torch.device("cuda")
    assert _half_dtype(False, cuda) is None and _half_dtype(None, cuda, "fp32") is None
    assert _half_dtype(True, cuda) is torch.float16 and _half_dtype("fp16", cuda) is torch.float16
    assert _half_dtype("bf16", cuda) is torch.bfloat16 and _half_dtype("bfloat16", cuda) is torch.bfloat16
    with pytest.raises(AudioSepError, match="unknown half"):
        _half_dtype("fp8", cuda)


def test_model_moves_with_its_query_encoder():
    """``model.to(...)`` moves and casts the attached (non-sub-module) query encoder too, so that
    ``--device cuda`` puts both on the GPU; the encoder is not part of the state dict."""
    model = small_model()
    table = {"a dog barks": torch.randn(24), "rain": torch.randn(24)}
    model.set_query_encoder(PrecomputedQueryEncoder(table=table))
    encoder = model.query_encoder
    assert not any(k.startswith("_query_encoder") or "embeddings" in k for k in model.state_dict())
    model.to(torch.float64)
    assert encoder.embeddings.dtype == torch.float64 and model.window.dtype == torch.float64
    assert model.embed_queries(["rain"]).dtype == torch.float32  # conditions are float32
    model.to("meta")  # a device other than the CPU, available everywhere
    assert encoder.embeddings.device.type == "meta" and model.window.device.type == "meta"
    assert all(p.device.type == "meta" for p in model.parameters())


def test_separate_segment_dtypes():
    """float64 audio and conditions, float32 out; a bf16 autocast dtype gives float32 out too."""
    model = small_model()
    wav = mixture(0.5, 16000).double()
    cond = condition(24).double()
    fp32 = separate_segment(model, wav, cond)
    half = separate_segment(model, wav, cond, autocast_dtype=torch.bfloat16)
    assert fp32.dtype == half.dtype == torch.float32 and fp32.shape == half.shape == (1, 1, wav.shape[-1])
    assert float(si_sdr(fp32.flatten(), half.flatten())) > 25.0


# ---------------------------------------------------------------------- half-precision inference
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fused_forward_under_autocast_matches_fp32(dtype):
    """The fused eval path under CPU autocast (what ``--half`` runs on a GPU) stays close to the
    fp32 output, and agrees with the module-by-module path under the same autocast."""
    model = small_model(film_mode="gamma_beta", film_hidden_dim=16)
    wav, cond = mixture(1.0, 16000)[None], condition(24, 1)
    with torch.inference_mode():
        fp32 = model(wav, cond)
        with torch.autocast("cpu", dtype=dtype):
            fused = model(wav, cond)
            model.separator.fused_inference = False
            reference = model(wav, cond)
            model.separator.fused_inference = True
            mag = model.stft(wav).abs()
            net_out = model.separator(mag, cond)
        net_fp32 = model.separator(mag, cond)
    # The network itself ran in reduced precision (the fused bf16 path returns its fp32 last
    # 1x1 convolution's output, see masknn/fused.py).
    assert net_out.dtype in (dtype, torch.float32) and not torch.equal(net_out.float(), net_fp32)
    for out in (fused, reference):
        assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
        assert float(si_sdr(fp32.flatten(), out.flatten())) > 25.0
    assert float(si_sdr(reference.flatten(), fused.flatten())) > 25.0


def test_fp16_mask_has_no_nan_where_the_phase_vanishes():
    """Regression: in fp16 the mask's norm floor (1e-10) underflowed to 0 and an all-zero network
    output (phase components 0) gave 0 / 0 = NaN."""
    model = small_model()
    torch.nn.init.zeros_(model.separator.after_conv.weight)
    torch.nn.init.zeros_(model.separator.after_conv.bias)
    spec = model.stft(mixture(0.25, 16000)[None])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.float16):
        out = model.separate_spectrogram(spec, condition(24))
    assert bool(torch.isfinite(torch.view_as_real(out)).all())


# ---------------------------------------------------------------------- mixed-precision training
@pytest.fixture(scope="module")
def mini_setup(tmp_path_factory):
    """A small mini corpus (4 training clips per class) and the tiny test model's config."""
    from asteroid_audiosep.data.mini import generate_mini_corpus

    corpus = tmp_path_factory.mktemp("mini")
    generate_mini_corpus(corpus, seed=0, clips_per_class=(4, 1, 1), speech_pairs=(0, 0))
    conf = dict(
        paths=dict(data_dir=str(corpus), exp_dir="unset"),
        data=dict(train_datafiles=["{data_dir}/train.json"], valid_list=None, sample_rate=8000,
                  segment_seconds=0.5, mix_mode="equal_energy"),
        model=dict(n_fft=256, hop_length=128, channels=[8, 16, 32, 32], bottleneck_channels=32,
                   pool_sizes=[[2, 2], [2, 2], [2, 2], [1, 2]], film_mode="gamma_beta", film_hidden_dim=64,
                   bn_momentum=0.1, query_encoder={"type": "sentence"}),
        training=dict(batch_size=16, num_workers=0, num_threads=1, max_steps=12, lr=5e-3, warmup_steps=1,
                      checkpoint_every_n_steps=100, log_every_n_steps=1, progress_bar=False, trace_batches=True),
    )
    path = corpus / "conf.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def run_train(config: Path, exp_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``egs/audiosep/train.py`` as run.sh runs it, with ``--section.key value`` overrides."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONWARNINGS="ignore", PYTHONPATH=str(REPO))
    cmd = [sys.executable, str(TRAIN_SCRIPT), "--config", str(config), "--exp_dir", str(exp_dir), "--ngpu", "0"]
    return subprocess.run(cmd + list(overrides), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_bf16_mixed_training_on_the_cpu(mini_setup, tmp_path):
    """``training.precision: bf16-mixed`` through the recipe's train step on the CPU: every
    step's loss is finite, and the run ends with its package."""
    exp_dir = tmp_path / "exp"
    proc = run_train(mini_setup, exp_dir, "--training.precision", "bf16-mixed")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((exp_dir / "train_report.json").read_text())
    assert report["precision"] == "bf16-mixed" and report["steps"] == 12
    trace = [json.loads(line) for line in (exp_dir / "trace" / "rank0.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in trace]
    assert len(losses) == 12 and all(torch.isfinite(torch.tensor(losses)))
    assert (exp_dir / "best_model.pth").is_file()


def test_bf16_mixed_training_step_decreases_the_loss():
    """The Lightning system under ``precision="bf16-mixed"`` on the CPU, on one fixed batch
    (the same mixtures every step): the loss is finite and falls."""
    import pytorch_lightning as pl

    from asteroid_audiosep.data import SegmentMixer
    from asteroid_audiosep.engine import AudioSepSystem, make_optimizer
    from asteroid_audiosep.losses import l1_waveform_loss

    model = small_model().train()
    captions = ["a dog barks", "rain", "a bell rings", "an engine hums"]
    cache = PrecomputedQueryEncoder(table=dict(zip(captions, condition(24, len(captions)))))
    g = torch.Generator().manual_seed(0)
    batch = {"waveform": 0.1 * torch.randn(4, 1, 8000, generator=g), "caption": captions,
             "position": torch.zeros(4, dtype=torch.long)}
    loader = torch.utils.data.DataLoader([batch] * 10, batch_size=None)  # the same batch, 10 times
    system = AudioSepSystem(model, make_optimizer(model.parameters(), lr=3e-3), l1_waveform_loss, loader,
                            mixer=SegmentMixer(seed=0, mode="equal_energy"), query_cache=cache)
    losses = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, *args):
            losses.append(float(outputs["loss"]))

    trainer = pl.Trainer(accelerator="cpu", devices=1, precision="bf16-mixed", max_steps=10, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, callbacks=[Record()])
    assert trainer.precision == "bf16-mixed"
    trainer.fit(system)
    print("bf16-mixed losses on a fixed batch:", [round(v, 4) for v in losses])
    assert len(losses) == 10 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3]), losses


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU 16-mixed is allowed")
def test_fp16_mixed_training_on_the_cpu_is_refused_clearly(mini_setup, tmp_path):
    """Lightning has no fp16 autocast on the CPU (it would silently train in bf16): the train
    step refuses ``16-mixed`` on the CPU with a message naming the alternatives."""
    proc = run_train(mini_setup, tmp_path / "exp", "--training.precision", "16-mixed")
    assert proc.returncode == 1
    assert "16-mixed needs a GPU" in proc.stderr and "bf16-mixed" in proc.stderr
    assert not (tmp_path / "exp" / "checkpoints").exists()
