"""AudioSep's relatives: the DCASE 2024 baseline and AudioSep-DP imported from their released
layouts (stand-in checkpoints and forward vectors of ../shared/reference/zoo), the AudioSepDP
model class, and the released names."""
import importlib.util
import json

import numpy as np
import pytest
import torch
from helpers import nontrivial, small_model_args

from asteroid_audiosep import AudioSep, AudioSepDP, AudioSepError
from asteroid_audiosep.cli import main
from asteroid_audiosep.masknn.dprnn import DualPathRNN, released_key
from asteroid_audiosep.official import convert_official
from asteroid_audiosep.pretrained import load_model, package_path

LAYOUTS = {  # stand-in name -> (model class, sample rate, layout name stored in the package)
    "dcase2024_baseline_16k": (AudioSep, 16000, "dcase2024-baseline"),
    "audiosep_dp_16k": (AudioSepDP, 16000, "audiosep-dp-16k"),
    "audiosep_dp_32k": (AudioSepDP, 32000, "audiosep-dp-32k"),
}


@pytest.fixture(scope="module")
def zoo(reference):
    return reference / "zoo"


@pytest.fixture(scope="module")
def standin(zoo):
    spec = importlib.util.spec_from_file_location("standin_checkpoint", zoo / "standin_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_state_dict


@pytest.fixture(scope="module")
def dp16_ckpt(standin, tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "audiosep_dp_16k.ckpt"
    torch.save({"state_dict": standin("audiosep_dp_16k")}, path)
    return path


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_standin_converts_and_matches_the_released_forward(name, zoo, standin, tmp_path):
    """Same command as the released checkpoint; architecture and rate read from the tensors;
    the forward equals the released implementation's on both lengths (fused and reference)."""
    cls, rate, layout = LAYOUTS[name]
    ckpt = tmp_path / f"{name}.ckpt"
    torch.save({"state_dict": standin(name)}, ckpt)
    out = tmp_path / f"{name}.pth"
    assert main(["convert-official", str(ckpt), str(out)]) == 0
    package = torch.load(out, weights_only=True)
    assert package["model_name"] == cls.__name__ and package["infos"]["layout"].startswith(layout)
    model = AudioSep.from_pretrained(str(out)).eval()
    vectors = np.load(zoo / f"{name}_forward_vectors.npz")
    assert type(model) is cls and model.sample_rate == rate == int(vectors["sample_rate"])
    condition = torch.from_numpy(vectors["condition"])[None]
    for which in "ab":
        mixture = torch.from_numpy(vectors[f"mixture_{which}"])[None]
        for fused in (True, False):
            model.separator.fused_inference = fused
            with torch.no_grad():
                est = model(mixture, condition)[0, 0].numpy()
            err = np.abs(est - vectors[f"output_{which}"]).max()
            assert err <= 1e-5, (name, which, fused, err)


@pytest.mark.parametrize("name", ["audiosep_dp_16k", "audiosep_dp_32k"])
def test_dual_path_block_alone_matches_the_released_block(name, zoo, standin):
    state = standin(name)
    prefix = "ss_model.base.DPRNN.0."
    block = DualPathRNN(384, hidden=128, layers=2).eval()
    block.load_state_dict({released_key(k[len(prefix):]): v for k, v in state.items() if k.startswith(prefix)})
    vectors = np.load(zoo / f"{name}_forward_vectors.npz")
    assert json.loads(str(vectors["ctor_kwargs"])) == {"dprnn": True, "dprnn_layers": 2, "dprnn_hidden": 128}
    with torch.no_grad():
        out = block(torch.from_numpy(vectors["dprnn_input"])).numpy()
    assert np.abs(out - vectors["dprnn_output"]).max() <= 1e-5


def test_resolver_reads_layer_count_and_hidden_size(standin, tmp_path, monkeypatch):
    """`-m FILE` / init_from go through the same resolver; a block of other sizes (3 layers,
    hidden 64, rebuilt from the released names) is read from the shapes."""
    monkeypatch.setenv("ASTEROID_AUDIOSEP_CACHE", str(tmp_path / "cache"))
    state = {k: v for k, v in standin("audiosep_dp_16k").items() if ".DPRNN." not in k}
    torch.manual_seed(0)
    block = DualPathRNN(384, hidden=64, layers=3)
    ours = block.state_dict()
    released = [f"output.{m}.{p}" for m, p in (("0", "weight"), ("1", "weight"), ("1", "bias"))]
    for i in range(3):
        for path, side in (("row", "intra"), ("col", "inter")):
            released += [f"{path}_rnn.{i}.rnn.{k}" for k in block.blocks[i].get_submodule(f"{side}_RNN.rnn").state_dict()]
            released += [f"{path}_rnn.{i}.proj.weight", f"{path}_rnn.{i}.proj.bias",
                         f"{path}_norm.{i}.weight", f"{path}_norm.{i}.bias"]
    assert sorted(released_key(k) for k in released) == sorted(ours)
    state.update({"ss_model.base.DPRNN.0." + k: ours[released_key(k)] for k in released})
    ckpt = tmp_path / "dp_custom.ckpt"
    torch.save({"state_dict": state}, ckpt)
    model = load_model(ckpt)
    assert isinstance(model, AudioSepDP) and model.sample_rate == 16000
    assert model.get_model_args()["dprnn"] == dict(layers=3, hidden=64, rnn_layers=2, dropout=0.1)
    assert package_path(ckpt).parent == tmp_path / "cache" / "converted"
    with torch.no_grad():
        assert torch.equal(model.separator.center.blocks[2].inter_linear.weight, block.blocks[2].inter_linear.weight)


def test_unknown_layout_names_the_closest_and_first_differences(dp16_ckpt, tmp_path):
    state = torch.load(dp16_ckpt, weights_only=True)["state_dict"]
    del state["ss_model.base.DPRNN.0.output.1.bias"]
    state["ss_model.base.DPRNN.0.extra.weight"] = torch.zeros(2)
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": state}, bad)
    with pytest.raises(AudioSepError) as err:
        convert_official(bad, tmp_path / "out.pth")
    msg = str(err.value)
    assert "closest: audiosep-dp-16k" in msg
    assert "1 missing tensors ['separator.center.output.1.bias']" in msg
    assert "1 unexpected tensors ['ss_model.base.DPRNN.0.extra.weight']" in msg
    assert not (tmp_path / "out.pth").exists()
    # A rate that no released system uses (bn0 of 257 bins): still one message, closest named.
    state = torch.load(dp16_ckpt, weights_only=True)["state_dict"]
    for key in [k for k in state if ".bn0." in k and state[k].dim() == 1]:
        state[key] = state[key][:257]
    torch.save({"state_dict": state}, bad)
    with pytest.raises(AudioSepError, match=r"closest: audiosep-dp-16k .*ss_model.base.bn0.weight \(shape \(257,\)"):
        convert_official(bad, tmp_path / "out.pth")


def test_dp_model_round_trip_and_registration(tmp_path):
    from asteroid.models import get

    assert get("AudioSepDP") is AudioSepDP
    model = nontrivial(AudioSepDP(dprnn={"layers": 1, "hidden": 8}, **small_model_args())).eval()
    args = model.get_model_args()
    assert args["dprnn"] == dict(layers=1, hidden=8, rnn_layers=2, dropout=0.1)
    assert set(args) - {"query_encoder", "dprnn"} == set(small_model_args()) | {
        "in_channels", "film_mode", "film_hidden_dim", "bn_momentum", "negative_slope"}
    path = tmp_path / "dp.pth"
    torch.save(model.serialize(), path)
    loaded = AudioSep.from_pretrained(str(path)).eval()
    assert type(loaded) is AudioSepDP and loaded.get_model_args() == args
    wav, cond = torch.randn(2, 5000), torch.randn(2, 24)
    with torch.no_grad():
        ref = model(wav, cond)
        assert torch.equal(loaded(wav, cond), ref)
        # Batched fused forward == per-item: the block does not mix batch items.
        assert torch.allclose(model(wav[1:], cond[1:]), ref[1:], atol=1e-6)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(wav, cond)
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    assert (half - ref).abs().max() < 0.1 * ref.abs().max()
    with pytest.raises(AudioSepError, match="unknown dprnn keys"):
        AudioSepDP(dprnn={"layer": 2}, **small_model_args())


def test_init_from_with_another_hidden_size_is_refused(tmp_path):
    from asteroid_audiosep.engine.setup import build_model

    initial = AudioSepDP(dprnn={"layers": 2, "hidden": 8}, **small_model_args())
    cfg = {"model": {"dprnn": {"layers": 2, "hidden": 16}}, "data": {"sample_rate": 16000}}
    with pytest.raises(AudioSepError, match="init_from has hidden=8 but model.dprnn asks for hidden=16"):
        build_model(cfg, {"type": "sentence"}, 24, initial=initial)
    plain = AudioSep(**small_model_args())
    with pytest.raises(AudioSepError, match="no dual-path block"):
        build_model(cfg, {"type": "sentence"}, 24, initial=plain)
    cfg["model"]["dprnn"]["hidden"] = 8
    assert build_model(cfg, {"type": "sentence"}, 24, initial=initial) is initial


def test_released_names(monkeypatch):
    from asteroid_audiosep import hub

    for name in ("audiosep-dp-16k", "audiosep-dp-32k"):
        with pytest.raises(AudioSepError, match=r"zenodo.org/records/14208090.*convert-official FILE"):
            hub.download_official(name)

    def offline(url):
        raise AudioSepError(f"cannot download {url}: no network")

    monkeypatch.setattr(hub, "download_url", offline)
    with pytest.raises(AudioSepError, match=r"cannot download .*10887460.*by hand"):
        hub.download_official("dcase2024-baseline")
    assert "baseline-16k%2Cstep%3D200000.ckpt" in hub.KNOWN_MODELS["dcase2024-baseline"]["url"]
