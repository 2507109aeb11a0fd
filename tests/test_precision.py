"""Precision names, CPU capability detection (faked both ways), and where bf16 applies."""
import warnings

import pytest
import torch
from helpers import nontrivial, small_model_args

from asteroid_audiosep import AudioSep, AudioSepError, separate_waveform
from asteroid_audiosep import precision as prec
from asteroid_audiosep.masknn import fused
from asteroid_audiosep.precision import resolve_precision

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


def fake_cpu(monkeypatch, flags=(), torch_reports=()):
    """A CPU with these /proc/cpuinfo flags and these torch.cpu._is_*_supported() answers."""
    monkeypatch.delenv(prec.ENV_BF16, raising=False)
    monkeypatch.delenv(prec.ENV_FP16, raising=False)
    monkeypatch.setattr(prec, "_proc_cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(prec, "_torch_reports", lambda name: name in torch_reports)


@pytest.mark.parametrize(
    "flags, reports, native",
    [
        ((), (), False),
        (("avx512f", "avx512_fp16"), (), False),  # fp16 vector units do not make bf16 native
        (("avx512_bf16",), (), True),
        (("amx_tile", "amx_bf16"), (), True),
        ((), ("_is_avx512_bf16_supported",), True),
    ],
)
def test_cpu_bf16_detection(monkeypatch, flags, reports, native):
    fake_cpu(monkeypatch, flags, reports)
    assert prec.cpu_native_bf16() is native
    assert resolve_precision("auto", "cpu") == (torch.bfloat16 if native else None)


def test_environment_overrides_detection(monkeypatch):
    fake_cpu(monkeypatch, flags=("avx512_bf16",))
    monkeypatch.setenv(prec.ENV_BF16, "0")
    assert resolve_precision("auto", "cpu") is None
    fake_cpu(monkeypatch)
    monkeypatch.setenv(prec.ENV_BF16, "1")
    assert resolve_precision("auto", "cpu") == torch.bfloat16
    monkeypatch.setenv(prec.ENV_BF16, "maybe")
    with pytest.raises(AudioSepError, match="AUDIOSEP_CPU_BF16"):
        resolve_precision("auto", "cpu")


def test_names_and_legacy_half_aliases(monkeypatch):
    fake_cpu(monkeypatch, flags=("avx512_bf16",))
    assert resolve_precision("fp32", "cpu") is None
    assert resolve_precision("BF16", "cpu") == torch.bfloat16
    assert resolve_precision("auto", "cpu", half=False) is None  # legacy half=False: fp32
    assert resolve_precision("auto", "cpu", half="bf16") == torch.bfloat16
    assert resolve_precision("bf16", "cpu", half="bfloat16") == torch.bfloat16
    assert resolve_precision(None, "cpu") == torch.bfloat16  # None: auto
    with pytest.raises(AudioSepError, match="contradicts"):
        resolve_precision("fp32", "cpu", half="bf16")
    for bad in ("fp8", "half", 16):
        with pytest.raises(AudioSepError, match="unknown precision.*auto, fp32, bf16, fp16"):
            resolve_precision(bad, "cpu")
    with pytest.raises(AudioSepError, match="unknown half"):
        resolve_precision("auto", "cpu", half="int8")


@pytest.mark.parametrize("bf16, faster", [(True, "bf16"), (False, "fp32")])
def test_fp16_on_cpu_is_refused_naming_the_faster_choice(monkeypatch, bf16, faster):
    fake_cpu(monkeypatch, flags=("avx512_fp16",) + (("amx_bf16",) if bf16 else ()))
    for kwargs in (dict(precision="fp16"), dict(precision="auto", half=True)):
        with pytest.raises(AudioSepError, match=f"fp16 is slower than fp32.*use precision {faster}"):
            resolve_precision(device="cpu", **kwargs)
    fake_cpu(monkeypatch, flags=("amx_fp16",))  # AMX-FP16: fp16 is fast, allowed
    assert resolve_precision("fp16", "cpu") == torch.float16
    fake_cpu(monkeypatch)
    monkeypatch.setenv(prec.ENV_FP16, "1")
    assert resolve_precision("fp16", "cpu") == torch.float16


def test_bf16_without_native_support_runs_with_one_warning(monkeypatch):
    fake_cpu(monkeypatch, flags=("avx2",))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_precision("bf16", "cpu") == torch.bfloat16
    assert len(caught) == 1 and "slower than fp32" in str(caught[0].message)
    fake_cpu(monkeypatch, flags=("avx512_bf16",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # native: no warning at all
        assert resolve_precision("bf16", "cpu") == torch.bfloat16


def test_cuda_auto_follows_gpu_bf16_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda") == torch.bfloat16
    assert resolve_precision("auto", "cuda", half=True) == torch.float16
    assert resolve_precision("fp32", "cuda") is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "cuda") is None


def test_capability_line_names_the_detection(monkeypatch):
    fake_cpu(monkeypatch, flags=("avx512_bf16", "amx_bf16"))
    assert "native bf16 (avx512_bf16 amx_bf16)" in prec.cpu_capability()
    fake_cpu(monkeypatch)
    assert "no native bf16" in prec.cpu_capability()


# ---------------------------------------------------------------------------- where it applies
@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return nontrivial(AudioSep(**small_model_args(channels=[8, 16, 16, 32], bottleneck_channels=32))).eval()


def _snr(ref, est):
    return (10 * torch.log10(ref.pow(2).sum() / (ref - est).pow(2).sum())).item()


def test_auto_without_capability_is_bit_identical_to_fp32(monkeypatch, model):
    fake_cpu(monkeypatch, flags=("avx2",))
    wav, cond = 0.3 * torch.randn(2, 24000), torch.randn(1, model.condition_dim)
    auto = separate_waveform(model, wav, 16000, ["q"], condition=cond, precision="auto")
    fp32 = separate_waveform(model, wav, 16000, ["q"], condition=cond, precision="fp32")
    legacy = separate_waveform(model, wav, 16000, ["q"], condition=cond, half=False)
    assert torch.equal(auto, fp32) and torch.equal(legacy, fp32)


@pytest.mark.skipif(not fused.mkldnn_fusion_available(), reason="the oneDNN path needs a mkldnn build")
def test_auto_with_capability_runs_the_network_in_bf16(monkeypatch, model):
    fake_cpu(monkeypatch, flags=("amx_bf16",))
    calls = []
    real = fused._MkldnnOps.conv

    def conv(self, x, w, *args, **kwargs):
        calls.append((w.dtype, x.is_contiguous(memory_format=torch.channels_last)))
        return real(self, x, w, *args, **kwargs)

    monkeypatch.setattr(fused._MkldnnOps, "conv", conv)
    wav, cond = 0.3 * torch.randn(2, 24000), torch.randn(1, model.condition_dim)
    auto = separate_waveform(model, wav, 16000, ["q"], condition=cond, precision="auto")
    bf16 = separate_waveform(model, wav, 16000, ["q"], condition=cond, precision="bf16")
    n_bf16 = len(calls)
    fp32 = separate_waveform(model, wav, 16000, ["q"], condition=cond, precision="fp32")
    assert torch.equal(auto, bf16) and auto.dtype == torch.float32
    assert not torch.equal(auto, fp32) and _snr(fp32, auto) > 30
    # The fused oneDNN path ran, channels-last, with bf16 weights inside the network and fp32 at
    # its full-resolution ends; the fp32 run used fp32 weights only.
    dtypes = {d for d, _ in calls[:n_bf16]}
    assert dtypes == {torch.bfloat16, torch.float32}
    assert {d for d, _ in calls[n_bf16:]} == {torch.float32}
    assert all(cl for _, cl in calls)


def test_fused_bf16_is_as_close_to_fp32_as_the_reference_under_autocast(model):
    wav, cond = 0.3 * torch.randn(2, 1, 16000), torch.randn(2, model.condition_dim)
    with torch.inference_mode():
        exact = model(wav, cond)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(wav, cond)
            model.separator.fused_inference = False
            ref = model(wav, cond)
            model.separator.fused_inference = True
    assert fast.dtype == torch.float32
    assert _snr(exact, fast) >= _snr(exact, ref) - 3  # not worse than plain autocast


def test_folded_bf16_weights_are_cached_and_follow_updates(model):
    cond = torch.randn(1, model.condition_dim)
    mag = torch.rand(1, 1, 64, model.n_fft // 2 + 1)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        model.separator(mag, cond)
        cache = model.separator.__dict__["_fused_cache"][1]
        assert set(cache) >= {torch.float32} and (
            not fused.mkldnn_fusion_available() or cache[torch.bfloat16]["enc"][1]["w2"].dtype == torch.bfloat16
        )
        before = model.separator(mag, cond)
    with torch.no_grad():
        model.separator.after_conv.bias.add_(1.0)
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            after = model.separator(mag, cond)
        assert not torch.equal(before, after)
    finally:
        with torch.no_grad():
            model.separator.after_conv.bias.sub_(1.0)


def test_cli_precision_option_and_half_alias():
    from asteroid_audiosep.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["separate", "x.wav", "-q", "dog"])
    assert args.precision == "auto" and args.half is None and args.threads is None
    args = parser.parse_args(["separate", "x.wav", "-q", "dog", "--half", "--threads", "1"])
    assert resolve_precision(args.precision, "cuda", half=args.half) == torch.float16
    assert args.threads == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["separate", "x.wav", "-q", "dog", "--precision", "fp8"])


def test_evaluation_is_fp32_by_default_and_offers_bf16(monkeypatch, model, tmp_path):
    import pandas as pd

    from asteroid_audiosep.audio import save_audio
    from asteroid_audiosep.data import LASSEvalDataset
    from asteroid_audiosep.data.evallist import write_eval_list
    from asteroid_audiosep.evaluation import evaluate_separation

    fake_cpu(monkeypatch, flags=("amx_bf16",))  # auto would be bf16: the default must not follow it
    g = torch.Generator().manual_seed(0)
    rows = []
    for idx in range(2):
        target = 0.3 * torch.randn(8000, generator=g)
        save_audio(tmp_path / f"segment-{idx}.wav", target, 16000)
        save_audio(tmp_path / f"mixture-{idx}.wav", target + 0.3 * torch.randn(8000, generator=g), 16000)
        rows.append({"idx": idx, "caption": f"sound {idx}", "class": "c"})
    dataset = LASSEvalDataset(write_eval_list(tmp_path / "eval.csv", rows), sample_rate=16000)
    embed = lambda texts: torch.stack([torch.full((24,), float(t[-1]) + 0.5) for t in texts])  # noqa: E731
    scores = {}
    for name, kwargs in (("default", {}), ("fp32", dict(precision="fp32")), ("bf16", dict(precision="bf16"))):
        csv = evaluate_separation(model, dataset, tmp_path / f"{name}.csv", "mini", "caption", embed=embed,
                                  progress=False, **kwargs)
        scores[name] = pd.read_csv(csv)["sdr"].to_numpy()
    assert (scores["default"] == scores["fp32"]).all()
    assert (scores["bf16"] != scores["fp32"]).any()
    assert abs(scores["bf16"] - scores["fp32"]).max() < 0.5
