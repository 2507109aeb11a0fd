"""The released checkpoint through the recipe: import (stage 2), the released benchmark's
reader on a fake data folder (stage 3), the report's Table III row (stage 5).

The stand-in checkpoint is written by ../shared/reference/official_checkpoint.py; the query
embeddings come from a table file (evaluation.query_embeddings), as the CLAP weights are not
available offline.
"""
import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from asteroid_audiosep.encoders import PrecomputedQueryEncoder

REPO = Path(__file__).resolve().parents[1]
SETS = ("[{name: AudioSet, released: audioset, csv: '{benchmark_dir}/metadata/audioset_eval.csv', "
        "data_dir: '{benchmark_dir}/data/audioset', class_labels_csv: '{benchmark_dir}/metadata/class_labels_indices.csv'}, "
        "{name: ESC-50, released: esc50, csv: '{benchmark_dir}/metadata/esc50_eval.csv', data_dir: '{benchmark_dir}/data/esc50'}]")


def fake_benchmark(metadata: Path, root: Path, rows: dict) -> set:
    """The released evaluation/ folder with the first rows of each CSV and 0.5 s clips at 32 kHz.

    Mixtures are target + interference, so the scores mean something (the mixture's SDR is 0 dB).
    """
    bench = root / "evaluation"
    (bench / "metadata").mkdir(parents=True)
    (bench / "metadata" / "class_labels_indices.csv").write_text((metadata / "class_labels_indices.csv").read_text())
    rng = np.random.default_rng(0)
    queries = set()
    for name, n in rows.items():
        lines = (metadata / f"{name}_eval.csv").read_text().splitlines()[: n + 1]
        (bench / "metadata" / f"{name}_eval.csv").write_text("\n".join(lines) + "\n")
        for row in csv.DictReader(lines):
            queries.add(row["caption"])
            target = 0.1 * rng.standard_normal(16000)
            mixture = target + 0.1 * rng.standard_normal(16000)
            if name == "audioset":  # columns: source and mixture paths from the benchmark's parent
                paths = {root / row["src_wav"]: target, root / row["noise_wav"]: mixture}
            else:
                paths = {bench / "data" / name / f"segment-{row['idx']}.wav": target,
                         bench / "data" / name / f"mixture-{row['idx']}.wav": mixture}
            for path, wav in paths.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, wav.astype(np.float32), 32000)
    return queries


def test_released_checkpoint_on_the_released_benchmark_reader(official_ckpt, reference, tmp_path, run_recipe):
    queries = fake_benchmark(reference / "benchmark_metadata", tmp_path, {"audioset": 4, "esc50": 3})
    torch.manual_seed(0)
    table = PrecomputedQueryEncoder(table={q: torch.randn(512) for q in sorted(queries)}).save(tmp_path / "q.pt")
    # No data stage: importing a model and reading the released benchmark need none.
    run_recipe("--conf", "conf/released_checkpoint.yaml", "--stage", "2", "--stop_stage", "3",
               "--import.model", official_ckpt, "--paths.benchmark_dir", tmp_path / "evaluation",
               "--evaluation.query_embeddings", table, "--evaluation.sets", SETS, root=tmp_path)
    exp = tmp_path / "exp" / "released_checkpoint"
    summary = pd.read_csv(exp / "eval" / "summary.csv").set_index("dataset")
    assert set(summary.index) == {"AudioSet", "ESC-50"}
    assert summary.loc["AudioSet", "n_items"] == 4 and summary.loc["ESC-50", "n_items"] == 3
    assert summary.loc["AudioSet", "aggregation"].startswith("mean of per-class medians")
    # The released aggregation: AudioSet is the median of its (single) class, ESC-50 the mean.
    items = pd.read_csv(exp / "eval" / "AudioSet" / "caption.csv")
    assert summary.loc["AudioSet", "sdri"] == np.median(items["sdri"])
    assert abs(pd.read_csv(exp / "eval" / "ESC-50" / "caption.csv")["sdri"].mean() - summary.loc["ESC-50", "sdri"]) < 1e-9
    assert items["input_sdr"].abs().max() < 1.0  # mixture = target + equal-power noise: about 0 dB
    assert all(math.isfinite(v) for v in summary[["sdr", "sdri", "si_sdr", "si_sdri"]].to_numpy().ravel())

    proc = run_recipe("--conf", "conf/released_checkpoint.yaml", "--stage", "5", "--stop_stage", "5", root=tmp_path)
    report = (exp / "report" / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| AudioSep released checkpoint (this run) |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = next(line for line in report.splitlines() if line.startswith("| System | Source | AudioSet SI-SDR"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    values = dict(zip(columns, cells))
    assert float(values["AudioSet SDRi"]) == round(summary.loc["AudioSet", "sdri"], 2)
    assert float(values["ESC-50 SDRi"]) == round(summary.loc["ESC-50", "sdri"], 2)
    assert values["VGGSound SDRi"] == "-"
    assert "report: " in proc.stdout
