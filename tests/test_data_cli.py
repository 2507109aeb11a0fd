"""The recipe's data step: its command line (egs/audiosep/prepare_data.py, run as a program) and
recipe mode (:func:`asteroid_audiosep.data.stage.prepare_from_config`)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asteroid_audiosep import AudioSepError
from asteroid_audiosep.data.stage import prepare_from_config

SCRIPT = Path(__file__).resolve().parents[1] / "egs" / "audiosep" / "prepare_data.py"


def run_script(*args):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_mini_and_shards_subcommands(tmp_path):
    out = tmp_path / "mini"
    proc = run_script("mini", out, "--classes", "rain", "siren", "--clips-per-class", "2", "1", "1",
                      "--clip-seconds", "0.5", "0.5", "--speech-pairs", "0", "1")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "classes.json").read_text())
    assert [c["name"] for c in meta["classes"]] == ["siren", "rain"] and meta["clip_seconds"] == [0.5, 0.5]
    assert (out / "speech" / "test" / "eval.csv").is_file() and not (out / "speech" / "train").exists()
    proc = run_script("make-shards", out / "train.json", tmp_path / "shards", "--max-count", "3")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "shards").glob("*.tar"))) == 2


def test_errors_exit_nonzero_with_message(tmp_path):
    proc = run_script("esc50", tmp_path / "nowhere", tmp_path / "out")
    assert proc.returncode == 1 and "meta/esc50.csv not found" in proc.stderr


def test_recipe_mode_reads_the_data_section(tmp_path):
    esc = tmp_path / "ESC-50"
    (esc / "meta").mkdir(parents=True)
    (esc / "audio").mkdir()
    sf.write(esc / "audio" / "1-1-A-0.wav", np.zeros(800, dtype=np.float32), 8000)
    (esc / "meta" / "esc50.csv").write_text("filename,fold,target,category\n1-1-A-0.wav,1,0,dog\n")
    cfg = {"paths": {"data_dir": str(tmp_path / "data")},
           "data": {"mini": {"classes": ["rain", "wind"], "clips_per_class": [1, 1, 1], "clip_seconds": [0.5, 0.5],
                             "speech_pairs": [0, 0]},
                    "corpora": {"esc50": {"root": str(esc)}}}}
    prepare_from_config(cfg)
    assert (tmp_path / "data" / "mini" / "train.json").is_file()
    assert json.loads((tmp_path / "data" / "esc50" / "esc50.json").read_text())["data"][0]["caption"] == "dog"
    cfg["data"]["corpora"] = {"clotho": {"root": str(tmp_path / "no-clotho")}}
    with pytest.raises(AudioSepError):
        prepare_from_config(cfg)
    cfg["data"]["corpora"] = {"esc50": {"root": str(esc), "colour": "red"}}
    with pytest.raises(AudioSepError, match=r"data.corpora.esc50: .*unknown options \['colour'\]"):
        prepare_from_config(cfg)
