"""benchmarks/bench_gpu.py --dry-run: every section (parity, inference, training) runs at tiny
sizes on this machine (the GPU when there is one, else the CPU) and writes complete JSON."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_gpu.py"


def test_dry_run_covers_every_section_and_writes_json(reference, tmp_path):
    out = tmp_path / "bench_gpu.json"
    env = dict(os.environ, AUDIOSEP_REFERENCE_DIR=str(reference), HF_HUB_OFFLINE="1",
               PYTHONWARNINGS="ignore", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--json", str(out), "--workdir", str(tmp_path / "work")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["dry_run"] is True and doc["errors"] == []
    for heading in ("parity (", "inference (", "training ("):
        assert heading in proc.stdout

    parity = doc["parity"]
    assert parity["fp32_fused_max_abs_err"] <= 1e-4
    assert parity["fp32_reference_max_abs_err"] <= 1e-4
    for name in ("bf16", "fp16"):  # half precision stays close to fp32 (goal on GPU: 40 dB)
        assert parity[f"{name}_si_sdr_db"] > 25.0, parity

    sizes = doc["sizes"]
    runs = doc["inference"]["runs"]
    assert len(runs) == len(sizes["input_seconds"]) * len(sizes["queries"]) * 3
    assert {r["precision"] for r in runs} == {"fp32", "bf16", "fp16"}
    assert all(r["x_realtime"] > 0 for r in runs)
    if doc["device"] == "cuda":
        assert all(f"memory_ratio_{p}" in doc["inference"] for p in ("fp32", "bf16", "fp16"))

    training = doc["training"]["runs"]
    assert [r["workers"] for r in training if not r["compiled"]] == sizes["workers"]
    for run in training:
        assert len(run["losses"]) == sizes["warmup_steps"] + sizes["steps"]
        assert all(math.isfinite(v) for v in run["losses"])
        assert run["steps_per_s"] > 0 and 0.0 <= run["data_wait_share"] < 1.0
