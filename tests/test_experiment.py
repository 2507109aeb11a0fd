"""What the recipe's steps do through the package: eval-dir claiming, query tables, set opening,
device choice, config files (inheritance, required values), model sources."""
import pytest
import torch
import yaml

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.config import ConfigError, apply_overrides, check_required, data_path, load_config
from asteroid_audiosep.devices import resolve_device
from asteroid_audiosep.encoders import PrecomputedQueryEncoder
from asteroid_audiosep.experiment import claim_eval_dir, model_package, open_eval_set, query_table


def test_claim_eval_dir_keeps_scores_of_the_same_model_and_moves_others_aside(tmp_path):
    eval_dir = tmp_path / "eval"
    package = tmp_path / "model.pth"
    package.write_bytes(b"model one")
    assert claim_eval_dir(eval_dir, package) is False
    (eval_dir / "scores.csv").write_text("id,sdr\n0,1.0\n")
    assert claim_eval_dir(eval_dir, package) is True  # same model: kept, to resume
    assert (eval_dir / "scores.csv").is_file()
    package.write_bytes(b"model two")
    assert claim_eval_dir(eval_dir, package) is False
    assert not (eval_dir / "scores.csv").exists()
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("eval.")]
    assert len(aside) == 1 and (aside[0] / "scores.csv").read_text() == "id,sdr\n0,1.0\n"


def _table_model(dim=4):
    model = AudioSep(sample_rate=8000, n_fft=64, hop_length=32, channels=[4], bottleneck_channels=4,
                     pool_sizes=[[1, 2]], condition_dim=dim)
    table = PrecomputedQueryEncoder(table={"dog": torch.ones(dim), "cat": -torch.ones(dim)})
    model.set_query_encoder(table, update_spec=False)
    return model, table


def test_query_table_from_the_encoder_or_a_complete_file(tmp_path):
    model, table = _table_model()
    built = query_table(model, ["dog", "cat"])
    assert torch.allclose(built.encode_text(["cat"]), table.encode_text(["cat"]))
    path = tmp_path / "table.pt"
    table.save(path)
    assert torch.allclose(query_table(model, ["dog"], path).encode_text(["dog"]), table.encode_text(["dog"]))
    with pytest.raises(AudioSepError, match="lack 1 queries .*'bird'"):
        query_table(model, ["dog", "bird"], path)
    other, _ = _table_model(dim=6)
    with pytest.raises(AudioSepError, match="4-d embeddings, the model takes 6-d"):
        query_table(other, ["dog"], path)


def test_open_eval_set_names_what_is_missing(tmp_path):
    with pytest.raises(AudioSepError, match="evaluation set x: give `list` or `released`"):
        open_eval_set({"name": "x"}, "caption", 8000)
    with pytest.raises(AudioSepError, match="set its csv"):
        open_eval_set({"released": "esc50"}, "caption", 8000)
    with pytest.raises(AudioSepError, match="no model package at .*run stage 2"):
        model_package(tmp_path)


def test_resolve_device():
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(AudioSepError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(AudioSepError, match="no CUDA GPU is available"):
            resolve_device("cuda")


def test_config_inheritance_overrides_and_required_values(tmp_path):
    (tmp_path / "parent.yaml").write_text(yaml.safe_dump(
        {"paths": {"data_dir": "D"}, "evaluation": {"sets": "???"}, "training": {"lr": 1.0}}))
    (tmp_path / "child.yaml").write_text("base: parent.yaml\ntraining: {batch_size: 2}\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert cfg["training"] == {"lr": 1.0, "batch_size": 2}
    assert apply_overrides(cfg, ["--training.lr", "0.5"])["training"]["lr"] == 0.5
    assert data_path(cfg, "{data_dir}/x.csv").as_posix() == "D/x.csv"
    check_required(cfg, [0, 1, 2])  # evaluation is read by stage 3 only
    with pytest.raises(ConfigError, match="evaluation.sets: set it with --evaluation.sets"):
        check_required(cfg, [3])
    # The package's shipped defaults are found as a base from any folder.
    (tmp_path / "uses_defaults.yaml").write_text("base: train_defaults.yaml\n")
    assert load_config(tmp_path / "uses_defaults.yaml")["training"]["batch_size"] == 12
    (tmp_path / "bad.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="base nowhere.yaml not found"):
        load_config(tmp_path / "bad.yaml")
    assert issubclass(ConfigError, AudioSepError) and not issubclass(ConfigError, SystemExit)
