"""The fused eval-mode forward equals the module-by-module reference, and falls back when needed."""

import numpy as np
import pytest
import torch
from helpers import nontrivial, small_model_args

from asteroid_audiosep import AudioSep
from asteroid_audiosep.masknn import fused
from asteroid_audiosep.official import convert_official

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


def both_paths(model, wav, condition):
    with torch.inference_mode():
        model.separator.fused_inference = True
        fast = model(wav, condition)
        model.separator.fused_inference = False
        ref = model(wav, condition)
        model.separator.fused_inference = True
    return fast, ref


@pytest.mark.parametrize(
    "args",
    [
        small_model_args(),
        small_model_args(film_mode="gamma_beta", film_hidden_dim=16),
        small_model_args(in_channels=2),
        small_model_args(pool_sizes=[[2, 2], [1, 1], [2, 2], [1, 2]]),
    ],
    ids=["beta", "gamma_beta", "stereo_model", "unpooled_block"],
)
def test_fused_eval_forward_equals_reference(args):
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**args)).eval()
    wav = 0.3 * torch.randn(3, model.in_channels, 16000 + 123)
    condition = torch.randn(3, model.condition_dim)
    fast, ref = both_paths(model, wav, condition)
    assert fast.shape == ref.shape == wav.shape
    assert (fast - ref).abs().max().item() <= 1e-5
    # The comparison is not vacuous: the output depends on the query.
    other, _ = both_paths(model, wav, condition.flip(0))
    assert (other - fast).abs().max().item() > 1e-3


def test_fused_generic_kernels_equal_reference(monkeypatch):
    """The plain-PyTorch kernels (used on GPU and without oneDNN) also match."""
    monkeypatch.setattr(fused, "mkldnn_fusion_available", lambda: False)
    torch.manual_seed(1)
    model = nontrivial(AudioSep(**small_model_args())).eval()
    wav, condition = 0.3 * torch.randn(2, 1, 8000), torch.randn(2, model.condition_dim)
    fast, ref = both_paths(model, wav, condition)
    assert (fast - ref).abs().max().item() <= 1e-5


def test_fused_path_under_autocast():
    """Mixed precision (as on GPU with --half) runs the plain kernels with reduced precision."""
    torch.manual_seed(2)
    model = nontrivial(AudioSep(**small_model_args())).eval()
    wav, condition = 0.3 * torch.randn(2, 1, 8000), torch.randn(2, model.condition_dim)
    with torch.inference_mode():
        exact = model(wav, condition)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast, ref = both_paths(model, wav, condition)
    assert fast.dtype == torch.float32 and fast.shape == exact.shape
    reference_error = (ref - exact).abs().max().item()
    assert (fast - exact).abs().max().item() <= 3 * max(reference_error, 1e-3)


def test_training_and_autograd_use_the_reference_path(monkeypatch):
    calls = []
    monkeypatch.setattr(fused, "fused_forward", lambda *a: calls.append(1) or 1 / 0)
    torch.manual_seed(0)
    model = AudioSep(**small_model_args())
    wav, condition = torch.randn(2, 1, 4000), torch.randn(2, model.condition_dim)
    model.train()(wav, condition).sum().backward()  # training mode
    assert model.separator.pre_conv.weight.grad is not None
    model.eval()(wav, condition).sum().backward()  # eval mode with gradients (frozen BatchNorm)
    assert not calls


def test_folded_weights_follow_parameter_updates():
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**small_model_args())).eval()
    wav, condition = 0.3 * torch.randn(1, 1, 8000), torch.randn(1, model.condition_dim)
    with torch.inference_mode():
        before = model(wav, condition)
    with torch.no_grad():
        model.separator.encoder_blocks[0].conv_block.conv1.weight.mul_(-1.5)
    fast, ref = both_paths(model, wav, condition)
    assert (fast - ref).abs().max().item() <= 1e-5
    assert (fast - before).abs().max().item() > 1e-4
    assert set(model.state_dict()) == set(AudioSep(**small_model_args()).state_dict())


def test_fused_path_reproduces_released_vectors(official_ckpt, reference, tmp_path):
    model = AudioSep.from_pretrained(
        str(convert_official(official_ckpt, tmp_path / "m.pth"))
    ).eval()
    vectors = np.load(reference / "official_forward_vectors.npz")
    mixture = torch.from_numpy(vectors["mixture"]).reshape(1, 1, -1)
    condition = torch.from_numpy(vectors["condition"]).reshape(1, -1)
    fast, ref = both_paths(model, mixture, condition)
    expected = torch.from_numpy(vectors["output"]).reshape(fast.shape)
    assert (fast - expected).abs().max().item() <= 1e-4
    assert (fast - ref).abs().max().item() <= 1e-5
