"""Import of the released checkpoint: layout checks, CLAP weights, command line."""
import subprocess
import sys

import pytest
import torch

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.cli import main
from asteroid_audiosep.official import convert_official
from asteroid_audiosep.pretrained import package_path


@pytest.fixture(scope="module")
def released_state(official_ckpt):
    return torch.load(official_ckpt, weights_only=True)["state_dict"]


def _write(tmp_path, state, name="x.ckpt"):
    path = tmp_path / name
    torch.save({"state_dict": state}, path)
    return path


def test_missing_tensor_is_named(released_state, tmp_path):
    state = dict(released_state)
    del state["ss_model.base.encoder_block3.conv_block1.conv2.weight"]
    with pytest.raises(AudioSepError, match=r"1 missing tensors \['separator.encoder_blocks.2.conv_block.conv2.weight'\]"):
        convert_official(_write(tmp_path, state), tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()


def test_unexpected_and_misshaped_tensors_are_named(released_state, tmp_path):
    state = dict(released_state)
    state["ss_model.base.extra_head.weight"] = torch.zeros(3)
    state["ss_model.base.after_conv.bias"] = torch.zeros(4)
    with pytest.raises(AudioSepError) as err:
        convert_official(_write(tmp_path, state), tmp_path / "out.pth")
    assert "ss_model.base.extra_head.weight" in str(err.value)
    assert "ss_model.base.after_conv.bias (shape (4,), expected (3,))" in str(err.value)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "random.ckpt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(AudioSepError, match="cannot read .* as a torch checkpoint"):
        convert_official(path, tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()
    with pytest.raises(AudioSepError, match="not found"):
        convert_official(tmp_path / "missing.ckpt", tmp_path / "out.pth")
    with pytest.raises(AudioSepError, match="neither a model file .* nor a released model name"):
        package_path("no-such-model")


def test_clap_weights_inside_the_checkpoint_are_used(released_state, roberta_tokenizer_dir, tmp_path):
    from asteroid_audiosep.encoders import build_query_encoder

    torch.manual_seed(0)
    kw = dict(amodel="HTSAT-tiny", tokenizer=str(roberta_tokenizer_dir),
              text_config=dict(num_hidden_layers=1, intermediate_size=128, vocab_size=300))
    clap = build_query_encoder({"type": "clap", "checkpoint": None, **kw})
    state = dict(released_state)
    state.update({f"query_encoder.model.model.{k}": v for k, v in clap.model.state_dict().items()})
    package = convert_official(_write(tmp_path, state), tmp_path / "sep.pth")
    assert (tmp_path / "sep.clap.pt").is_file()
    model = AudioSep.from_pretrained(str(package))
    spec = model.query_encoder_spec
    assert spec["type"] == "clap" and spec["checkpoint"] == str((tmp_path / "sep.clap.pt").resolve())
    # Offline, the tokenizer and the small text tower of this test are given explicitly.
    model.set_query_encoder(build_query_encoder(spec, **kw), update_spec=False)
    assert torch.allclose(model.embed_queries("a siren"), clap.encode_text(["a siren"]), atol=1e-6)


def test_cli_convert_and_python_m(official_ckpt, tmp_path, capsys):
    out = tmp_path / "pkg" / "audiosep.pth"
    assert main(["convert-official", str(official_ckpt), str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    package = torch.load(out, weights_only=True)
    assert package["model_name"] == "AudioSep" and package["infos"]["converted_from"] == official_ckpt.name
    assert main(["convert-official", str(tmp_path / "none.ckpt"), str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "asteroid_audiosep", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "convert-official" in proc.stdout


def test_one_resolver_for_names_checkpoints_and_packages(official_ckpt, tmp_path, monkeypatch):
    """A released checkpoint is recognised by content (whatever its suffix), converted once into
    the cache and reused; a package is used as it is; a training checkpoint is refused."""
    from asteroid_audiosep.pretrained import CHECKPOINT, PACKAGE, import_package, load_model, read_model_file

    monkeypatch.setenv("ASTEROID_AUDIOSEP_CACHE", str(tmp_path / "cache"))
    renamed = tmp_path / "released.bin"
    renamed.write_bytes(official_ckpt.read_bytes())
    assert read_model_file(renamed)[0] == CHECKPOINT
    converted = package_path(renamed)
    assert converted.parent == tmp_path / "cache" / "converted" and read_model_file(converted)[0] == PACKAGE
    stamp = converted.stat().st_mtime_ns
    assert package_path(renamed) == converted and converted.stat().st_mtime_ns == stamp  # reused
    assert package_path(converted) == converted
    model = load_model(renamed)
    assert isinstance(model, AudioSep) and model.condition_dim == 512
    assert load_model(model) is model
    out = import_package(str(converted), tmp_path / "exp" / "best_model.pth")
    assert out.read_bytes() == converted.read_bytes()
    with pytest.raises(AudioSepError, match="is the output itself"):
        import_package(str(out), out)
    with pytest.raises(AudioSepError, match="no model given"):
        import_package(None, tmp_path / "x.pth")
    training_ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"model.separator.w": torch.zeros(1)}}, training_ckpt)
    with pytest.raises(AudioSepError, match="training checkpoint of this recipe"):
        package_path(training_ckpt)


def test_model_layer_does_not_import_the_hub():
    code = ("import sys, asteroid_audiosep.models; "
            "bad = [m for m in ('asteroid_audiosep.hub', 'asteroid_audiosep.official', "
            "'asteroid_audiosep.pretrained') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
