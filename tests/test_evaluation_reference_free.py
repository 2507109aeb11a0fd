"""Reference-free evaluation: recording lists, CLAPScore rows, per-item failures, resume, report."""
import pandas as pd
import pytest
import torch
from helpers import BandEncoder, TextOnly, small_model_args

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.audio import save_audio
from asteroid_audiosep.data import LASSEvalDataset
from asteroid_audiosep.data.evallist import write_eval_list
from asteroid_audiosep.data.recordings import RecordingSet, read_recording_list, recordings_from_eval_list
from asteroid_audiosep.evaluation import evaluate_separation
from asteroid_audiosep.experiment import open_eval_set
from asteroid_audiosep.metrics.clap_score import ClapScorer
from asteroid_audiosep.reference_free import (
    check_metrics,
    evaluate_recordings,
    read_failures,
    write_failures,
)
from asteroid_audiosep.report import write_report

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = 16000


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AudioSep(**small_model_args()).eval()


@pytest.fixture(scope="module")
def scorer():
    return ClapScorer(BandEncoder())


def embed(texts):
    """Stand-in query embeddings (24-d, one per distinct text)."""
    return torch.stack([torch.full((24,), float(len(t))) for t in texts])


def _tone(freq, seconds=0.5, seed=0):
    t = torch.arange(int(seconds * RATE)) / RATE
    noise = 0.05 * torch.randn(t.shape[0], generator=torch.Generator().manual_seed(seed))
    return 0.3 * torch.sin(2 * torch.pi * freq * t) + noise


@pytest.fixture
def recordings(tmp_path):
    """A CLAPScore-format list over four recordings (one listed twice), as the tool writes it."""
    folder = tmp_path / "audio"
    for k, freq in enumerate((300, 900, 2500)):
        save_audio(folder / f"rec{k}.wav", _tone(freq, seed=k), RATE)
    lines = ["audio_file, text_query", "rec0.wav, dog", "rec1.wav, cat", "rec1.wav, dog",
             "rec2.wav, cat", f"{folder / 'rec0.wav'}, cat"]
    csv = tmp_path / "text_queries.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv, folder


def test_recording_list_reads_the_clapscore_format(recordings, tmp_path):
    csv, folder = recordings
    items = read_recording_list(csv, audio_dir=folder)
    assert [it.id for it in items] == ["rec0.wav", "rec1.wav [cat]", "rec1.wav [dog]", "rec2.wav",
                                       str(folder / "rec0.wav")]
    assert items[1].audio == folder / "rec1.wav" and items[1].queries == {"text_query": "cat"}
    assert items[4].audio == folder / "rec0.wav"  # absolute paths stay as they are
    # As an evaluation.sets entry (stage 3): nothing is read when the set is opened.
    (folder / "rec2.wav").unlink()
    dataset = open_eval_set({"name": "street", "recordings": str(csv), "audio_dir": str(folder)}, "text_query", 8000)
    assert isinstance(dataset, RecordingSet) and len(dataset) == 5 and dataset.queries() == ["cat", "dog"]
    assert dataset[0]["mixture"].shape == (4000,)  # read at the model's rate
    with pytest.raises(AudioSepError, match="rec2.wav"):
        dataset[3]
    bad = tmp_path / "bad.csv"
    bad.write_text("audio_file, text_query\nrec0.wav, dog\nrec0.wav, dog\n")
    with pytest.raises(AudioSepError, match="listed twice"):
        read_recording_list(bad)
    bad.write_text("file, query\nrec0.wav, dog\n")
    with pytest.raises(AudioSepError, match="audio_file.*text_query"):
        read_recording_list(bad)
    bad.write_text("audio_file, text_query\nrec0.wav, \n")
    with pytest.raises(AudioSepError, match="line 2: empty text_query"):
        read_recording_list(bad)


def test_rows_hold_clapscore_of_output_and_recording(model, scorer, recordings, tmp_path):
    csv, folder = recordings
    dataset = RecordingSet(csv, sample_rate=RATE, audio_dir=folder)
    result = evaluate_recordings(model, dataset, tmp_path / "r.csv", "street", "text_query", scorer,
                                 embed=embed, progress=False)
    assert result.failures == []
    df = pd.read_csv(result.csv, keep_default_na=False, na_values=["nan"])
    assert list(df["id"]) == [it.id for it in dataset.items]
    row, item = df.iloc[2], dataset[2]  # rec1.wav with the query "dog"
    with torch.no_grad():
        est = model(item["mixture"][None, None], embed(["dog"]))[0, 0]
    direct = scorer.scores([(est, RATE), (item["mixture"], RATE)], ["dog", "dog"])
    assert row["clapscore"] == pytest.approx(float(direct[0]), abs=1e-5)
    assert row["input_clapscore"] == pytest.approx(float(direct[1]), abs=1e-5)
    assert row["clapscore_i"] == pytest.approx(row["clapscore"] - row["input_clapscore"], abs=1e-9)
    # The same recording scored against another query gives another input score.
    assert df.iloc[1]["input_clapscore"] != pytest.approx(row["input_clapscore"])


def test_missing_and_unreadable_recordings_fail_alone_and_are_retried(model, scorer, recordings, tmp_path):
    csv, folder = recordings
    (folder / "rec1.wav").write_bytes(b"not audio at all")  # unreadable
    (folder / "rec2.wav").unlink()  # missing
    dataset = RecordingSet(csv, sample_rate=RATE, audio_dir=folder)
    out = tmp_path / "r.csv"
    result = evaluate_recordings(model, dataset, out, "street", "text_query", scorer, embed=embed, progress=False)
    assert [f.id for f in result.failures] == ["rec1.wav [cat]", "rec1.wav [dog]", "rec2.wav"]
    assert all(f.file.endswith(f.id.split(" ")[0]) for f in result.failures)
    assert "rec2.wav" in result.failures[2].reason and "not found" in result.failures[2].reason
    assert list(pd.read_csv(out)["id"]) == ["rec0.wav", str(folder / "rec0.wav")]
    failed = write_failures(tmp_path / "text_query.failed.tsv", result.failures)
    assert [f.id for f in read_failures(failed)] == [f.id for f in result.failures]
    # The files are fixed: a rerun scores the failed items only and keeps the earlier rows.
    save_audio(folder / "rec1.wav", _tone(900, seed=1), RATE)
    save_audio(folder / "rec2.wav", _tone(2500, seed=2), RATE)
    before = out.read_text()
    calls = []
    result = evaluate_recordings(model, RecordingSet(csv, sample_rate=RATE, audio_dir=folder), out, "street",
                                 "text_query", scorer, embed=lambda t: calls.append(t) or embed(t), progress=False)
    assert result.failures == [] and len(calls) == 3
    assert out.read_text().startswith(before) and len(pd.read_csv(out)) == 5
    assert write_failures(tmp_path / "text_query.failed.tsv", []) is None
    assert not (tmp_path / "text_query.failed.tsv").exists()


def test_sets_with_references_get_clapscore_beside_sdr(model, scorer, tmp_path):
    rows = []
    for idx in range(3):
        target = _tone(400 * (idx + 1), seed=idx)
        save_audio(tmp_path / f"segment-{idx}.wav", target, RATE)
        save_audio(tmp_path / f"mixture-{idx}.wav", target + _tone(3000, seed=10 + idx), RATE)
        rows.append({"idx": idx, "caption": ("dog", "cat")[idx % 2]})
    dataset = LASSEvalDataset(write_eval_list(tmp_path / "eval.csv", rows), sample_rate=RATE)
    out = evaluate_separation(model, dataset, tmp_path / "s.csv", "mini", "caption", embed=embed,
                              progress=False, scorer=scorer, batch_size=3)
    df = pd.read_csv(out)
    assert list(df.columns[-2:]) == ["clapscore", "clapscore_i"] and df["sdri"].notna().all()
    item = dataset[1]
    with torch.no_grad():
        est = model(item["mixture"][None, None], embed(["cat"]))[0, 0]
    direct = scorer.scores([(est, RATE), (item["mixture"], RATE)], ["cat", "cat"])
    assert df.loc[1, "clapscore"] == pytest.approx(float(direct[0]), abs=1e-5)
    assert df.loc[1, "clapscore_i"] == pytest.approx(float(direct[0] - direct[1]), abs=1e-5)


def test_metric_names_and_scorer_are_checked():
    assert check_metrics(["SDR", "clapscore"]) == ["sdr", "clapscore"]
    with pytest.raises(AudioSepError, match="unknown evaluation metric.*pesq"):
        check_metrics(["pesq"])
    with pytest.raises(AudioSepError, match="audio tower"):
        ClapScorer(TextOnly())


def test_mixtures_of_a_list_become_a_recording_list(tmp_path):
    rows = [{"idx": i, "caption": f"the {c} sound", "label": c, "class": c}
            for i, c in enumerate(["siren", "siren", "rain", "rain", "flute"])]
    eval_csv = write_eval_list(tmp_path / "eval.csv", rows)
    out = recordings_from_eval_list(eval_csv, tmp_path / "rec.csv", query_column="label", items=4)
    items = read_recording_list(out)
    assert [it.queries["text_query"] for it in items] == ["siren", "rain", "flute", "siren"]  # one per class first
    assert [it.audio.name for it in items] == ["mixture-0.wav", "mixture-2.wav", "mixture-4.wav", "mixture-1.wav"]
    with pytest.raises(AudioSepError, match="no query column 'paraphrase'"):
        recordings_from_eval_list(eval_csv, tmp_path / "x.csv", query_column="paraphrase")


def test_report_shows_both_tables_with_their_sentences(tmp_path):
    separation = pd.DataFrame({"id": ["1", "2"], "dataset": "mini", "query_type": "label", "sdr": [5.0, 7.0],
                               "sdri": [4.0, 6.0], "si_sdr": [3.0, 5.0], "clapscore": [0.2, 0.4],
                               "clapscore_i": [0.05, 0.15]})
    free = pd.DataFrame({"id": ["a", "b", "c"], "dataset": "street", "query_type": "text_query",
                         "clapscore": [0.3, float("nan"), 0.5], "clapscore_i": [0.1, float("nan"), -0.2],
                         "input_clapscore": [0.2, 0.25, 0.7]})
    report = write_report(tmp_path, separation_results=separation, reference_free_results=free,
                          failed={("street", "text_query"): 2, ("garden", "text_query"): 1})
    text = report.read_text()
    assert "Sets without references: CLAPScore" in text and "CLAPScore-i the output's minus the" in text
    assert "CLAPScore / CLAPScore-i beside SDR" in text
    table = pd.read_csv(tmp_path / "tables" / "reference_free.csv").set_index("Dataset")
    street = table.loc["street"]
    assert (street["Items"], street["Silent"], street["Failed"]) == (3, 1, 2)
    assert street["CLAPScore"] == pytest.approx(0.4) and street["CLAPScore-i"] == pytest.approx(-0.05)
    assert table.loc["garden", "Failed"] == 1 and table.loc["garden", "Items"] == 0
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv")
    assert summary.loc[0, "CLAPScore-i"] == pytest.approx(0.1) and summary.loc[0, "SDRi"] == pytest.approx(5.0)
    assert "| street | text_query | 3 | 1 | 2 | 0.450 | 0.400 | -0.050 |" in text  # cosines: 3 decimals
