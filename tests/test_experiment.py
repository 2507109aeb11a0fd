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
    with pytest.raises(AudioSepError, match="evaluation set x: give `list`, `released`, `dcase2024_validation` or `recordings`"):
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
    # Python-style numbers without a dot are numbers (YAML 1.1 alone reads "2e-3" as a string),
    # in overrides, nested override values and files; quoted values stay strings.
    over = apply_overrides(cfg, ["--training.lr", "2e-3", "--training.warm_up_steps=1E4",
                                 "--data.mini", "{gain: -5e-1, name: '1e3'}"])
    assert over["training"]["lr"] == 0.002 and isinstance(over["training"]["lr"], float)
    assert over["training"]["warm_up_steps"] == 10000.0
    assert over["data"]["mini"] == {"gain": -0.5, "name": "1e3"}
    (tmp_path / "exp.yaml").write_text("training: {lr: 1e-4, tag: 3e2x}\n")
    assert load_config(tmp_path / "exp.yaml")["training"] == {"lr": 0.0001, "tag": "3e2x"}
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


def test_audio_query_type_embeds_the_listed_files_with_the_models_encoder(tmp_path):
    import numpy as np
    import pandas as pd
    import soundfile as sf
    from tone_encoder import TextOnlyEncoder, ToneEncoder, tone

    from asteroid_audiosep.data.evallist import write_eval_list
    from asteroid_audiosep.evaluation import evaluate_separation
    from asteroid_audiosep.metrics import aggregate_results
    from asteroid_audiosep.report.tables import query_type_table

    folder = tmp_path / "eval"
    (tmp_path / "examples").mkdir()
    sf.write(tmp_path / "examples" / "beep.wav", tone(1000, 1, 8000), 8000)
    sf.write(tmp_path / "examples" / "hum.wav", tone(250, 1, 8000), 8000)
    rows = []
    for idx, (freq, label, example) in enumerate([(1000, "beep", "beep"), (250, "low hum", "hum")]):
        target = tone(freq, 1, 8000)
        folder.mkdir(exist_ok=True)
        sf.write(folder / f"segment-{idx}.wav", target, 8000)
        sf.write(folder / f"mixture-{idx}.wav", target + tone(2000, 1, 8000, 0.3), 8000)
        rows.append({"idx": idx, "caption": label, "label": label,
                     "audio": f"../examples/{example}.wav" if idx == 0 else str(tmp_path / "examples" / "hum.wav")})
    write_eval_list(folder / "eval.csv", rows)
    model = AudioSep(sample_rate=8000, n_fft=64, hop_length=32, channels=[4], bottleneck_channels=4,
                     pool_sizes=[[1, 2]], condition_dim=4)
    model.set_query_encoder(ToneEncoder(), update_spec=False)
    tables = []
    for query_type in ("label", "audio"):
        dataset = open_eval_set({"name": "toy", "list": str(folder / "eval.csv")}, query_type, 8000)
        table = query_table(model, dataset.queries(), query_type=query_type, base_dir=folder)
        tables.append(pd.read_csv(evaluate_separation(model, dataset, tmp_path / f"{query_type}.csv", "toy",
                                                      query_type, embed=table.encode_text, progress=False)))
    audio = query_table(model, ["../examples/beep.wav"], query_type="audio", base_dir=folder)
    assert torch.allclose(audio.encode_text(["../examples/beep.wav"])[0], torch.tensor([0.0, 0.0, 1.0, 0.0]),
                          atol=1e-3)  # the example's embedding (a 1 kHz tone), not a text's
    # text queries keep exactly the encoder's text embeddings (scores of text runs unchanged)
    text = query_table(model, ["beep"])
    assert torch.equal(text.encode_text(["beep"]), ToneEncoder().encode_text(["beep"]))
    results = pd.concat(tables, ignore_index=True)
    assert sorted(aggregate_results(results)["query_type"]) == ["audio", "label"]
    assert list(query_type_table(results)["Query type"]) == ["label", "audio"]
    assert np.isfinite(results["sdri"]).all()
    with pytest.raises(AudioSepError, match="1 audio query files not found .*relative to"):
        query_table(model, ["../examples/nope.wav"], query_type="audio", base_dir=folder)
    text_only, _ = _table_model()
    text_only.set_query_encoder(TextOnlyEncoder(), update_spec=False)
    with pytest.raises(AudioSepError, match="the sentence query encoder cannot embed audio .*clap"):
        query_table(text_only, ["../examples/beep.wav"], query_type="audio", base_dir=folder)
