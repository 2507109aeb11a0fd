"""run.sh: options, help, required settings, stage prerequisites, the SLURM backend."""
import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_every_option(tmp_path, run_recipe):
    proc = run_recipe("--help", root=tmp_path, check=False)
    assert proc.returncode == 0
    text = (REPO / "run.sh").read_text()
    block = text[text.index("# ----"):text.index("help_message=")]
    options = [o for o in re.findall(r"^([a-z_]+)=", block, flags=re.M) if o != "overrides"]
    assert len(options) >= 10
    for name in options:
        assert f"--{name}" in proc.stdout, name
    for stage in ("0 data", "1 mixtures", "2 train", "3 eval", "4 enhance", "5 report"):
        assert stage in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--no_such_option", "1"], "unknown option --no_such_option"),
    (["--stage"], "needs a value"),
    (["--stage", "two"], "--stage must be a non-negative integer"),
    (["--conf", "conf/nope.yaml"], "config conf/nope.yaml not found"),
    (["extra"], "unexpected argument 'extra'"),
])
def test_bad_options_fail_with_a_message(args, message, tmp_path, run_recipe):
    proc = run_recipe(*args, root=tmp_path, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_missing_corpus_path_names_the_setting(tmp_path, run_recipe):
    proc = run_recipe("--conf", "conf/audiosep_base.yaml", "--stop_stage", "0", root=tmp_path, check=False)
    assert proc.returncode != 0
    assert "data.corpora.audioset.root: set it with --data.corpora.audioset.root VALUE" in proc.stderr
    # Stage 3 alone only needs the benchmark folder, not the training corpora.
    proc = run_recipe("--conf", "conf/audiosep_base.yaml", "--stage", "3", "--stop_stage", "3", root=tmp_path, check=False)
    assert "paths.benchmark_dir" in proc.stderr and "data.corpora" not in proc.stderr


def test_stage_without_prerequisites(tmp_path, run_recipe):
    proc = run_recipe("--stage", "3", "--stop_stage", "3", root=tmp_path, check=False)
    assert proc.returncode != 0
    assert "stage 3 needs" in proc.stderr and "best_model.pth" in proc.stderr
    assert "./run.sh --stage 2 --stop_stage 3" in proc.stderr
    # Stage 2 names the datafile it reads, not another experiment's marker.
    proc = run_recipe("--tag", "t2", "--stage", "2", "--stop_stage", "2", root=tmp_path, check=False)
    assert proc.returncode != 0
    assert f"stage 2 needs {tmp_path / 'data' / 'mini' / 'train.json'}, which is missing" in proc.stderr
    assert "run stage 0 (data preparation)" in proc.stderr


def test_overrides_reach_the_resolved_config(tmp_path, run_recipe):
    run_recipe("--stage", "5", "--stop_stage", "4", "--training.max_steps", "7", "--tag", "t",
               root=tmp_path)
    text = (tmp_path / "exp" / "mini_t" / "config.yaml").read_text()
    assert "max_steps: 7" in text
    assert f"data_dir: {tmp_path / 'data'}" in text


def test_slurm_backend_passes_nodes_gpus_and_tasks(tmp_path, run_recipe):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "calls.txt"
    for tool in ("sbatch", "srun"):
        script = bindir / tool
        script.write_text(f'#!/usr/bin/env bash\nprintf "%s " {tool} "$@" >> {record}\necho >> {record}\n')
        script.chmod(0o755)
    # Stage 2 needs stage 0's data: the datafile and the validation list of conf/mini.yaml.
    exp = tmp_path / "exp" / "mini"
    for name in ("mini/train.json", "mini/eval/validation/eval.csv"):
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name).write_text("x")
    proc = run_recipe("--stage", "2", "--stop_stage", "2", "--cmd_backend", "slurm", "--ngpu", "8",
                  "--num_nodes", "4", root=tmp_path, check=False,
                  env_extra={"PATH": f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    calls = record.read_text()
    assert calls.startswith("sbatch ")
    for flag in ("--nodes 4", "--ntasks-per-node 8", "--gpus-per-node 8", "--wait", "--time 3-00:00:00",
                 "--cpus-per-task 8"):
        assert flag in calls, flag
    assert "--wrap srun --kill-on-bad-exit=1 python egs/audiosep/train.py --config" in calls
    config = (exp / "config.yaml").read_text()
    assert "devices: 8" in config and "num_nodes: 4" in config
