"""Every offline config (conf/mini*.yaml) runs stages 0-5 end to end, reduced (tests/recipe_runs.py).

What each run must show is read from its resolved config (exp/<conf>_reduced/config.yaml), not
written per config: every stage done, the training steps, the hybrid-supervision caches its
text ratio and query modality call for, every evaluation set with every query type over every
test item, the enhancement scores and the report. A new entry in ``REDUCED_RUNS`` is tested as
it is. The full-size runs and their quality goals are the slow tests (test_recipe_full.py,
test_recipe_clap.py, test_recipe_clip.py).
"""
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from recipe_runs import REDUCED_RUNS, SIZE_KEYS

from asteroid_audiosep.config import load_config, missing_values

REPO = Path(__file__).resolve().parents[1]


def _flatten(cfg, prefix=""):
    out = {}
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_offline_config_has_a_reduced_run():
    """An offline config: one with no required (``???``) setting, i.e. runnable here as it is."""
    offline = {f"conf/{p.name}" for p in sorted((REPO / "conf").glob("*.yaml"))
               if not missing_values(load_config(p))}
    assert "conf/mini.yaml" in offline
    assert offline == set(REDUCED_RUNS), "add the new offline config's reduction to tests/recipe_runs.py"


@pytest.mark.parametrize("conf", sorted(REDUCED_RUNS))
def test_reduction_changes_sizes_only(conf, reduced_recipe):
    _, exp, _, _ = reduced_recipe(conf)
    full = _flatten(load_config(REPO / conf))
    reduced = _flatten(yaml.safe_load((exp / "config.yaml").read_text()))
    changed = {k for k in set(full) | set(reduced)
               if full.get(k) != reduced.get(k) and not k.startswith("paths.")
               and k not in ("training.devices", "training.num_nodes", "base")}
    assert changed <= SIZE_KEYS, sorted(changed - SIZE_KEYS)


@pytest.mark.parametrize("conf", sorted(REDUCED_RUNS))
def test_reduced_run_goes_through_every_stage(conf, reduced_recipe):
    root, exp, proc, seconds = reduced_recipe(conf)
    print(f"{conf}: stages 0-5 in {seconds:.1f} s")
    cfg = yaml.safe_load((exp / "config.yaml").read_text())
    training = cfg["training"]
    for stage in range(6):
        assert re.search(rf"\d\d:\d\d:\d\d \(run.sh\) Stage {stage}: ", proc.stdout), stage
        assert (exp / "done" / f"stage{stage}").is_file()
    # Files follow the umask; logs are plain lines.
    wrong = [f"{p.relative_to(root)} {oct(p.stat().st_mode & 0o777)}" for top in ("exp", "data")
             for p in (root / top).rglob("*") if p.is_file() and p.stat().st_mode & 0o777 != 0o640]
    assert not wrong, wrong[:20]
    logs = sorted((exp / "log").glob("*.log"))
    assert {p.stem for p in logs} >= {"data", "mixtures", "train", "eval", "enhance", "report"}
    for log in logs:
        text = log.read_text()
        assert "\r" not in text, log.name
        assert max((len(line) for line in text.splitlines()), default=0) <= 500, log.name
    steps = training["max_steps"]
    assert re.search(rf"train: \d+/{steps} step \(\d+%\)", (exp / "log" / "train.log").read_text())

    # Training: every step, validated, and the caches of its hybrid supervision.
    report = json.loads((exp / "train_report.json").read_text())
    assert report["steps"] == training["max_steps"]
    assert len(report["validation"]) >= training["max_steps"] // training["val_check_interval"]
    hybrid = float(training["use_text_ratio"]) < 1.0
    picture = hybrid and training["query_modality"] == "image"
    assert (exp / "picture_embeddings.pt").is_file() == picture
    assert (exp / "clip_embeddings.pt").is_file() == (hybrid and training["query_modality"] == "audio")
    assert (exp / "best_model.pth").is_file()

    # Evaluation: every set, every query type, every test item, finite scores.
    summary = pd.read_csv(exp / "eval" / "summary.csv")
    for entry in cfg["evaluation"]["sets"]:
        rows = summary[summary["dataset"] == entry["name"]].set_index("query_type")
        assert set(rows.index) == set(entry["query_types"])
        if "recordings_of" in entry:  # without references: CLAPScore only, one item per listed recording
            listed = pd.read_csv(exp / "recordings" / f"{entry['name']}.csv", skipinitialspace=True)
            assert len(listed) == min(entry["items"], len(pd.read_csv(
                REPO / entry["recordings_of"].format(data_dir=cfg["paths"]["data_dir"]))))
            assert rows["n_items"].eq(len(listed)).all()
            assert all(math.isfinite(v) for v in rows["clapscore_i"]) and rows["sdri"].isna().all(), rows
            continue
        items = pd.read_csv(REPO / entry["list"].format(data_dir=cfg["paths"]["data_dir"]))
        assert rows["n_items"].eq(len(items)).all()
        assert all(math.isfinite(v) for v in rows["sdri"]), rows
        for query_type in entry["query_types"]:  # the queries really were of that kind
            per_item = pd.read_csv(exp / "eval" / entry["name"] / f"{query_type}.csv", keep_default_na=False)
            assert len(per_item) == len(items)
            if query_type in ("audio", "image"):
                assert all(Path(q).suffix in (".wav", ".png") for q in per_item["query"]), per_item["query"][:3]

    # Enhancement and the report.
    speech = cfg["enhancement"]["dataset"]
    scores = pd.read_csv(exp / "enhance" / speech / "scores.csv")
    assert set(scores["system"]) == {"Noisy", "AudioSep"} and scores["pesq"].between(1.0, 4.6).all()
    text = (exp / "report" / "report.md").read_text()
    assert speech in text
    for entry in cfg["evaluation"]["sets"]:
        for query_type in entry["query_types"]:
            assert re.search(rf"\| *{entry['name']} *\| *{query_type} *\|", text), query_type
