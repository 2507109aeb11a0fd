"""Safe loading: the released checkpoints' metadata loads with the allow-list, a checkpoint that
runs code is refused everywhere a user hands one over (and loads when trusted)."""
import numpy as np
import pytest
import torch
from helpers import nontrivial, small_model_args
from standins import (
    ZOO_LAYOUTS,
    RunsCodeOnLoad,
    clap_metadata,
    lightning_metadata,
    reference_module,
)

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.checkpoints import (
    UntrustedCheckpointError,
    allowed_global_names,
    load_checkpoint,
    trusted_checkpoints,
    unsafe_globals,
)
from asteroid_audiosep.cli import build_parser, main
from asteroid_audiosep.encoders import PrecomputedQueryEncoder
from asteroid_audiosep.encoders.clap import load_clap_state_dict
from asteroid_audiosep.engine.setup import load_initial_model
from asteroid_audiosep.engine.train_config import train_defaults
from asteroid_audiosep.official import read_released_checkpoint


@pytest.fixture(scope="module")
def metadata(tmp_path_factory):
    """Lightning metadata as the released training code writes it: AudioSep and the DCASE
    baseline (no validation), AudioSep-DP (validation, a ModelCheckpoint on val_sdr)."""
    root = tmp_path_factory.mktemp("lightning")
    (root / "plain").mkdir()
    (root / "validated").mkdir()
    return {"plain": lightning_metadata(root / "plain"), "validated": lightning_metadata(root / "validated", True)}


@pytest.fixture(scope="module")
def small_package(tmp_path_factory):
    """A small model and an embedding table of one query."""
    root = tmp_path_factory.mktemp("small")
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**small_model_args()))
    PrecomputedQueryEncoder(table={"dog barking": torch.randn(24)}).save(root / "queries.pt")
    return model, root / "queries.pt"


def _refused(call, marker, *names):
    with pytest.raises(UntrustedCheckpointError) as err:
        call()
    for name in names:
        assert name in str(err.value)
    assert "--trust-checkpoint" in str(err.value)
    assert not marker.exists()
    return err.value


# ---------------------------------------------------------------- the released files' metadata
def test_released_lightning_checkpoints_need_nothing_beyond_the_allow_list(metadata, official_ckpt, reference,
                                                                            tmp_path, capsys):
    """The stand-in released AudioSep checkpoint with Lightning's metadata converts without
    trust; the zoo stand-ins (DCASE baseline, AudioSep-DP) read with the safe loader."""
    state = torch.load(official_ckpt, weights_only=True)["state_dict"]
    ckpt = tmp_path / "audiosep_base_4M_steps.ckpt"
    torch.save({**metadata["plain"], "state_dict": state}, ckpt)
    assert unsafe_globals(ckpt) == []
    out = tmp_path / "audiosep.pth"
    assert main(["convert-official", str(ckpt), str(out)]) == 0, capsys.readouterr().err
    assert AudioSep.from_pretrained(str(out)).condition_dim == 512
    del state
    zoo = reference_module(reference, "zoo/standin_checkpoint.py")
    for name, kind in zip(ZOO_LAYOUTS, ("plain", "validated", "validated")):
        layout = zoo.make_state_dict(name)
        path = tmp_path / f"{name}.ckpt"
        torch.save({**metadata[kind], "state_dict": layout}, path)
        assert unsafe_globals(path) == [], name
        read = read_released_checkpoint(path)
        assert read["global_step"] == 2 and list(read["state_dict"]) == list(layout)
        assert torch.equal(next(iter(read["state_dict"].values())), next(iter(layout.values())))
        path.unlink()


def test_clap_checkpoint_needs_exactly_the_numpy_scalar_entries(tmp_path):
    """The published CLAP checkpoints' NumPy float64 learning rates are what the allow-list adds:
    PyTorch's own weights-only set refuses them, the project's loader reads them."""
    path = tmp_path / "clap.pt"
    state = {"module.text_branch.embeddings.position_ids": torch.arange(4)[None], "module.logit_scale_a": torch.ones(())}
    torch.save({**clap_metadata(), "state_dict": state}, path)
    needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    assert needed == {"numpy.core.multiarray.scalar", "numpy.dtype"}
    assert needed <= set(allowed_global_names())
    with pytest.raises(Exception, match="numpy"):
        torch.load(path, weights_only=True)
    assert unsafe_globals(path) == []
    loaded = load_checkpoint(path)
    assert isinstance(loaded["optimizer"]["param_groups"][0]["lr"], np.float64)
    assert list(load_clap_state_dict(path)) == ["logit_scale_a"]  # prefixes and position_ids dropped


# ---------------------------------------------------------------- a checkpoint that runs code
def test_the_loader_names_what_it_refuses_in_both_torch_formats(tmp_path):
    for zipped in (True, False):
        marker = tmp_path / f"marker-{zipped}"
        path = tmp_path / f"evil-{zipped}.pt"
        torch.save({"state_dict": {"w": torch.zeros(2)}, "x": RunsCodeOnLoad(marker)}, path,
                   _use_new_zipfile_serialization=zipped)
        _refused(lambda: load_checkpoint(path), marker, "getattr")
        assert not marker.exists()
        with trusted_checkpoints():
            assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.zeros(2))
        assert marker.exists()
    with pytest.raises(AudioSepError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_convert_official_refuses_code_unless_trusted(official_ckpt, tmp_path, capsys):
    marker = tmp_path / "marker"
    state = torch.load(official_ckpt, weights_only=True)["state_dict"]
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": RunsCodeOnLoad(marker)}, evil)
    del state
    out = tmp_path / "out.pth"
    assert main(["convert-official", str(evil), str(out)]) == 2
    err = capsys.readouterr().err
    assert "pathlib.PosixPath" in err and "--trust-checkpoint" in err
    assert not marker.exists() and not out.exists()
    assert main(["convert-official", str(evil), str(out), "--trust-checkpoint"]) == 0
    assert marker.exists() and AudioSep.from_pretrained(str(out)).condition_dim == 512


def _code_running_package(model, path, marker):
    """A model package whose infos hold an object that creates ``marker`` when unpickled."""
    package = model.serialize()
    package["infos"]["note"] = RunsCodeOnLoad(marker)
    torch.save(package, path)
    return path


def test_model_option_refuses_code_unless_trusted(small_package, tmp_path, capsys):
    """``separate -m``, ``tag -m`` and ``demo -m`` refuse it before any work;
    ``separate --trust-checkpoint`` runs it; every sub-command takes the option."""
    model, table = small_package
    marker = tmp_path / "marker"
    evil = _code_running_package(model, tmp_path / "model.pth", marker)
    wav = tmp_path / "in.wav"
    import soundfile as sf

    sf.write(wav, 0.1 * np.random.default_rng(0).standard_normal(16000).astype("float32"), 16000)
    args = ["separate", str(wav), "-m", str(evil), "--query-embeddings", str(table), "-q", "dog barking",
            "-o", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 2
    assert "pathlib.PosixPath" in capsys.readouterr().err
    assert main(["tag", str(wav), "-m", str(evil)]) == 2
    assert "--trust-checkpoint" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out").exists()
    pytest.importorskip("gradio")  # the demo extra: the page is never served, the model is refused first
    assert main(["demo", "-m", str(evil), "--port", "0"]) == 2
    assert "pathlib.PosixPath" in capsys.readouterr().err and not marker.exists()
    assert main(args + ["--trust-checkpoint"]) == 0
    assert marker.exists() and len(list((tmp_path / "out").glob("*.wav"))) == 1
    for command in (["convert-official", "a.ckpt", "b.pth"], ["separate", "x.wav"], ["tag", "x.wav"], ["demo"]):
        assert build_parser().parse_args(command + ["--trust-checkpoint"]).trust_checkpoint
        assert not build_parser().parse_args(command).trust_checkpoint


def test_init_from_refuses_code_unless_trusted(small_package, tmp_path):
    model, _ = small_package
    marker = tmp_path / "marker"
    evil = _code_running_package(model, tmp_path / "init.pth", marker)
    assert train_defaults()["training"]["trust_init_from"] is False
    err = _refused(lambda: load_initial_model(str(evil), tmp_path / "exp", 16000), marker, "pathlib.PosixPath")
    assert str(err).startswith("training.init_from:") and "training.trust_init_from: true" in str(err)
    loaded = load_initial_model(str(evil), tmp_path / "exp", 16000, trust=True)
    assert marker.exists()
    key = "separator.pre_conv.weight"
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key])


def test_clap_loader_refuses_code_unless_trusted(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "clap.pt"
    torch.save({**clap_metadata(), "state_dict": {"module.w": torch.ones(2)}, "args": RunsCodeOnLoad(marker)}, evil)
    _refused(lambda: load_clap_state_dict(evil), marker, "pathlib.PosixPath")
    assert torch.equal(load_clap_state_dict(evil, trust=True)["w"], torch.ones(2))
    assert marker.exists()
