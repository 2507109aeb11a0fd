"""The recipe's data step (egs/audiosep/prepare_data.py): subcommands and recipe mode."""
import importlib.util
import json
from pathlib import Path

import yaml

SCRIPT = Path(__file__).resolve().parents[1] / "egs" / "audiosep" / "prepare_data.py"


def _main():
    spec = importlib.util.spec_from_file_location("prepare_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_mini_and_shards_subcommands(tmp_path, capsys):
    main = _main()
    out = tmp_path / "mini"
    assert main(["mini", str(out), "--classes", "rain", "siren", "--clips-per-class", "2", "1", "1",
                 "--clip-seconds", "0.5", "0.5", "--speech-pairs", "0", "1"]) == 0
    meta = json.loads((out / "classes.json").read_text())
    assert [c["name"] for c in meta["classes"]] == ["siren", "rain"] and meta["clip_seconds"] == [0.5, 0.5]
    assert (out / "speech" / "test" / "eval.csv").is_file() and not (out / "speech" / "train").exists()
    assert main(["make-shards", str(out / "train.json"), str(tmp_path / "shards"), "--max-count", "3"]) == 0
    assert len(list((tmp_path / "shards").glob("*.tar"))) == 2


def test_errors_exit_nonzero_with_message(tmp_path, capsys):
    main = _main()
    assert main(["esc50", str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 1
    assert "meta/esc50.csv not found" in capsys.readouterr().err


def test_recipe_mode_reads_the_data_section(tmp_path):
    esc = tmp_path / "ESC-50"
    (esc / "meta").mkdir(parents=True)
    (esc / "audio").mkdir()
    import numpy as np
    import soundfile as sf

    sf.write(esc / "audio" / "1-1-A-0.wav", np.zeros(800, dtype=np.float32), 8000)
    (esc / "meta" / "esc50.csv").write_text("filename,fold,target,category\n1-1-A-0.wav,1,0,dog\n")
    cfg = {"paths": {"data_dir": str(tmp_path / "data")},
           "data": {"mini": {"classes": ["rain", "wind"], "clips_per_class": [1, 1, 1], "clip_seconds": [0.5, 0.5],
                             "speech_pairs": [0, 0]},
                    "corpora": {"esc50": {"root": str(esc)}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert _main()(["--config", str(tmp_path / "config.yaml")]) == 0
    assert (tmp_path / "data" / "mini" / "train.json").is_file()
    assert json.loads((tmp_path / "data" / "esc50" / "esc50.json").read_text())["data"][0]["caption"] == "dog"
    cfg["data"]["corpora"] = {"clotho": {"root": "???"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert _main()(["--config", str(tmp_path / "config.yaml")]) == 1
