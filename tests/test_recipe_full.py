"""The whole recipe, stages 0-5, on a shrunken mini config; then stage 3 again on its experiment.

The config is conf/mini.yaml with command-line overrides only (its reduction in
tests/recipe_runs.py: a smaller corpus, a 2-level ResUNet, 20 training steps), so this exercises
exactly what `./run.sh` runs. The run itself is conftest's ``reduced_recipe`` (shared with
tests/test_recipe_configs.py, which checks what every offline config's reduced run must show).
"""
import math
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from recipe_runs import REDUCED_RUNS, TAG

REPO = Path(__file__).resolve().parents[1]
SHRUNKEN = REDUCED_RUNS["conf/mini.yaml"]


@pytest.fixture(scope="module")
def experiment(reduced_recipe):
    """The shrunken recipe, run under umask 027 (a shared cluster's group-readable setting)."""
    root, exp, proc, _ = reduced_recipe("conf/mini.yaml")
    return root, exp, proc


def test_a_second_experiment_starts_at_stage_2_on_prepared_data(experiment, run_recipe):
    root, _, _ = experiment
    before = {p: p.stat().st_mtime_ns for p in (root / "data").rglob("*") if p.is_file()}
    proc = run_recipe("--tag", "t2", *SHRUNKEN, "--stage", "2", "--stop_stage", "3", "--training.max_steps", "5",
                      root=root, relative=True)
    exp2 = root / "exp" / "mini_t2"
    assert (exp2 / "best_model.pth").is_file() and (exp2 / "eval" / "summary.csv").is_file()
    assert "Stage 0" not in proc.stdout and "Stage 1" not in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in (root / "data").rglob("*") if p.is_file()} == before


def test_all_stages_run_and_the_report_has_numbers(experiment):
    root, exp, proc = experiment
    for stage in range(6):
        assert re.search(rf"\d\d:\d\d:\d\d \(run.sh\) Stage {stage}: ", proc.stdout), stage
        assert (exp / "done" / f"stage{stage}").is_file()
    # Where the report is, at the end.
    report = exp / "report" / "report.md"
    assert proc.stdout.rstrip().splitlines()[-2].endswith(f"report: {os.path.relpath(report, REPO)}")
    text = report.read_text()
    # The mini table: one row per query type, with finite numbers in every metric column.
    summary = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "mini" and len(cells) == 8 and cells[3] == "mean":
            summary[cells[1]] = cells
    assert set(summary) == {"label", "caption", "paraphrase"}
    for cells in summary.values():
        assert cells[2] == "18"  # every test clip of the 18 classes
        assert all(math.isfinite(float(c)) for c in cells[4:8]), cells
    # The enhancement table: PESQ etc. of the enhanced and the noisy speech.
    scores = pd.read_csv(exp / "enhance" / "mini-speech" / "scores.csv")
    assert len(scores) == 2 * 3 and set(scores["system"]) == {"Noisy", "AudioSep"}
    assert scores["pesq"].between(1.0, 4.6).all()
    assert "mini-speech" in text
    for figure in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (report.parent / figure).stat().st_size > 1000, figure
    # The trained model is a package that Asteroid loads and that separates with a text query.
    import asteroid
    import torch

    import asteroid_audiosep  # noqa: F401 (registers AudioSep)
    model = asteroid.models.get("AudioSep").from_pretrained(str(exp / "best_model.pth"))
    out = model.forward_wav(torch.randn(1, 8000) * 0.1, query="a dog barks")
    assert out.shape == (1, 8000) and torch.isfinite(out).all()  # shaped as the input


def test_stage3_again_gives_the_same_evaluation(experiment, run_recipe):
    root, exp, _ = experiment
    first = exp.parent / "eval_first_run"
    shutil.copytree(exp / "eval", first)
    # As finished: the stored scores are the model's, nothing is recomputed.
    run_recipe("--tag", TAG, "--stage", "3", "--stop_stage", "3", root=root, relative=True)
    pd.testing.assert_frame_equal(pd.read_csv(exp / "eval" / "summary.csv"), pd.read_csv(first / "summary.csv"))
    # From scratch: the same per-item scores.
    shutil.rmtree(exp / "eval")
    proc = run_recipe("--tag", TAG, "--stage", "3", "--stop_stage", "3", root=root, relative=True)
    assert "Stage 2" not in proc.stdout and "Stage 3: evaluation" in proc.stdout
    for name in ("summary.csv", "mini/label.csv", "mini/caption.csv", "mini/paraphrase.csv"):
        again, before = pd.read_csv(exp / "eval" / name), pd.read_csv(first / name)
        pd.testing.assert_frame_equal(again, before, check_exact=False, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_default_run_meets_its_goals(tmp_path, run_recipe):
    """`./run.sh` as shipped (conf/mini.yaml): SDRi >= 8 dB with label and caption queries, >= 6 dB
    with held-out paraphrases (about 5 minutes on 2 CPU cores). Run with `utils/test.sh -m slow`."""
    run_recipe(root=tmp_path, relative=True)
    summary = pd.read_csv(tmp_path / "exp" / "mini" / "eval" / "summary.csv").set_index("query_type")
    assert summary.loc["label", "sdri"] >= 8.0 and summary.loc["caption", "sdri"] >= 8.0
    assert summary.loc["paraphrase", "sdri"] >= 6.0
    assert summary["n_items"].eq(18 * 6).all()
