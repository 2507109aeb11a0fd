"""Resumable per-item evaluation and enhancement loops."""
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import small_model_args

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.audio import save_audio
from asteroid_audiosep.data import LASSEvalDataset
from asteroid_audiosep.data.evallist import write_eval_list
from asteroid_audiosep.evaluation import ResultCSV, enhance_speech, evaluate_separation
from asteroid_audiosep.metrics import sdr


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalset")
    g = torch.Generator().manual_seed(0)
    rows = []
    for idx in range(6):
        target = 0.3 * torch.randn(8000, generator=g)
        mixture = target + 0.3 * torch.randn(8000, generator=g)
        save_audio(root / f"segment-{idx}.wav", target, 16000)
        save_audio(root / f"mixture-{idx}.wav", mixture, 16000)
        rows.append({"idx": idx, "caption": f"sound {idx % 2}", "class": f"c{idx % 2}"})
    return write_eval_list(root / "eval.csv", rows)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AudioSep(**small_model_args()).eval()


def make_embed(fail_after=None):
    calls = []

    def embed(texts):
        if fail_after is not None and len(calls) >= fail_after:
            raise KeyboardInterrupt
        calls.append(list(texts))
        return torch.stack([torch.full((24,), float(t[-1])) for t in texts])

    return embed, calls


def test_scores_match_metrics(model, eval_set, tmp_path):
    dataset = LASSEvalDataset(eval_set, sample_rate=16000)
    embed, _ = make_embed()
    out = evaluate_separation(model, dataset, tmp_path / "r.csv", "mini", "caption", embed=embed,
                              progress=False, estimates_dir=tmp_path / "est", num_estimates=2)
    df = pd.read_csv(out)
    assert list(df["id"].astype(str)) == [str(it.id) for it in dataset.items]
    item = dataset[3]
    with torch.no_grad():
        est = model(item["mixture"][None, None], embed([item["query"]]))[0, 0]
    row = df.iloc[3]
    assert row["sdr"] == pytest.approx(float(sdr(item["target"], est)), abs=1e-4)
    assert row["sdri"] == pytest.approx(row["sdr"] - float(sdr(item["target"], item["mixture"])), abs=1e-4)
    assert set(df["class"]) == {"c0", "c1"} and set(df["query_type"]) == {"caption"}
    assert sorted(p.name for p in (tmp_path / "est").iterdir()) == sorted(df["id"].astype(str)[:2])


def test_interrupted_evaluation_resumes_without_recomputing(model, eval_set, tmp_path):
    dataset = LASSEvalDataset(eval_set, sample_rate=16000)
    full = evaluate_separation(model, dataset, tmp_path / "full.csv", "mini", "caption",
                               embed=make_embed()[0], progress=False)
    broken, _ = make_embed(fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        evaluate_separation(model, dataset, tmp_path / "part.csv", "mini", "caption", embed=broken, progress=False)
    assert len(pd.read_csv(tmp_path / "part.csv")) == 3
    # A line cut short by a crash is dropped on resume.
    with open(tmp_path / "part.csv", "a") as f:
        f.write("4,mini,capt")
    embed, calls = make_embed()
    evaluate_separation(model, dataset, tmp_path / "part.csv", "mini", "caption", embed=embed, progress=False)
    assert len(calls) == 3  # only the three unfinished items
    assert (tmp_path / "part.csv").read_text() == full.read_text()


def test_result_csv_refuses_other_columns(tmp_path):
    ResultCSV(tmp_path / "r.csv", ["id", "a"]).append({"id": "x", "a": 1.5})
    assert ResultCSV(tmp_path / "r.csv", ["id", "a"]).done("x")
    with pytest.raises(AudioSepError, match="columns"):
        ResultCSV(tmp_path / "r.csv", ["id", "b"])


def test_enhancement_rows_for_noisy_and_system(model, tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    clean = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    noisy = clean + 0.05 * rng.standard_normal(clean.shape)
    save_audio(tmp_path / "clean.wav", clean, 16000)
    save_audio(tmp_path / "noisy.wav", noisy, 16000)
    pairs = [{"id": "u1", "noisy": tmp_path / "noisy.wav", "clean": tmp_path / "clean.wav"}]
    embed, _ = make_embed()
    out = enhance_speech(model, pairs, tmp_path / "enh", tmp_path / "enh.csv", query="speech 1",
                         embed=embed, progress=False)
    df = pd.read_csv(out)
    assert list(df["system"]) == ["Noisy", "AudioSep"]
    assert {"pesq", "csig", "cbak", "covl", "ssnr", "stoi"} <= set(df.columns)
    assert (tmp_path / "enh" / "u1.wav").is_file()
    assert df.loc[0, "pesq"] > 1.0


def test_asteroid_metrics_as_extra_columns(model, eval_set, tmp_path):
    dataset = LASSEvalDataset(eval_set, sample_rate=16000)
    out = evaluate_separation(model, dataset, tmp_path / "r.csv", "mini", "caption", embed=make_embed()[0],
                              extra_metrics=("si_sdr", "sdr"), progress=False)
    df = pd.read_csv(out)
    assert {"asteroid_si_sdr", "asteroid_sdr"} <= set(df.columns)
    assert np.isfinite(df["asteroid_sdr"]).all()
