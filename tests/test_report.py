"""The report: Tables III, IV, VII and the mini corpus's from a small crafted evaluation; PNGs."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from asteroid_audiosep.audio import save_audio
from asteroid_audiosep.errors import AudioSepError
from asteroid_audiosep.report import (
    SpectrogramExample,
    load_paper_results,
    markdown_table,
    query_type_table,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAPER_III_SYSTEMS = ["USS-ResUNet30", "USS-ResUNet60", "LASSNet", "CLIPSep", "AudioSep-CLIP",
                     "AudioSep-CLAP"]
PAPER_IV_SYSTEMS = ["Noisy", "Wiener", "SEGAN", "AudioSet-UNet", "Wave-U-Net", "AudioSep-CLIP",
                    "AudioSep-CLAP"]


def separation_rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []

    def add(dataset, query_type, klass, n):
        for i in range(n):
            sdri_value = float(rng.normal(8, 3))
            rows.append(dict(id=f"{dataset}-{klass}-{i}", dataset=dataset, query_type=query_type,
                             sdr=sdri_value - 1.0, sdri=sdri_value,
                             si_sdr=float(rng.normal(6, 3)), **{"class": klass}))

    for klass in ("dog", "rain"):
        add("esc50", "caption", klass, 3)
    for query_type in ("caption", "labels"):
        add("audiocaps", query_type, None, 4)
    for klass in ("0", "1"):
        add("audioset", "caption", klass, 3)
    for query_type in ("paraphrase", "caption", "label"):
        for klass in ("siren", "flute"):
            add("mini", query_type, klass, 2)
    return pd.DataFrame(rows)


def enhancement_rows() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for system, offset in (("AudioSep", 0.5), ("Noisy", 0.0)):
        for i in range(3):
            values = {m: float(rng.uniform(1, 3)) + offset
                      for m in ("pesq", "csig", "cbak", "covl", "ssnr")}
            rows.append(dict(id=f"p232_{i:03d}", system=system, stoi=0.9, **values))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory, reference):
    root = tmp_path_factory.mktemp("evaluation")
    results = separation_rows()
    # two result files, as two evaluation runs would write them
    half = results["dataset"].isin(["esc50", "audiocaps"])
    results[half].to_csv(root / "results_a.csv", index=False)
    results[~half].to_csv(root / "results_b.csv", index=False)
    enhancement = enhancement_rows()
    enhancement.to_csv(root / "enhancement.csv", index=False)
    rng = np.random.default_rng(2)
    target, noise = rng.standard_normal((2, 8000)) * 0.1
    wav_dir = root / "wavs"
    for name, wav in (("mix", target + noise), ("target", target), ("est", target + 0.1 * noise)):
        save_audio(wav_dir / f"{name}.wav", wav, 16000)
    examples = [
        SpectrogramExample("esc50", "esc50-dog-0", target + noise, target, target + 0.3 * noise,
                           sample_rate=16000, query="dog barking"),
        SpectrogramExample("mini", "mini/siren 0", wav_dir / "mix.wav", wav_dir / "target.wav",
                           wav_dir / "est.wav"),
    ]
    out = root / "exp" / "report"
    report = write_report(
        out,
        separation_results=[root / "results_a.csv", root / "results_b.csv"],
        enhancement_results=root / "enhancement.csv",
        paper_results=reference / "paper_results.csv",
        examples=examples,
        system_name="AudioSep-mini",
        enhancement_dataset="Voicebank-DEMAND",
    )
    return {"out": out, "report": report, "results": results, "enhancement": enhancement}


def read_table(evaluation, name):
    return pd.read_csv(evaluation["out"] / "tables" / f"{name}.csv", dtype={"Query type": str})


def test_report_links_every_written_file(evaluation):
    out, report = evaluation["out"], evaluation["report"]
    assert report == out / "report.md"
    text = report.read_text()
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "report.md" in written
    for rel in written:
        if rel != "report.md":
            assert f"]({rel})" in text, rel
    assert not [p for p in out.rglob(".*")], "temporary files left behind"
    for name in ("summary", "table3_benchmarks", "table4_enhancement", "table7_query_types",
                 "mini_query_types"):
        assert (out / "tables" / f"{name}.md").read_text().startswith("| ")


def test_table3_paper_rows_then_this_run(evaluation):
    table = read_table(evaluation, "table3_benchmarks")
    results = evaluation["results"]
    expected_columns = ["System", "Source"]
    for benchmark in ("AudioSet", "VGGSound", "AudioCaps", "Clotho", "MUSIC", "ESC-50"):
        expected_columns += [f"{benchmark} SI-SDR", f"{benchmark} SDRi"]
    expected_columns += ["Voicebank-DEMAND PESQ", "Voicebank-DEMAND SSNR"]
    assert list(table.columns) == expected_columns
    assert list(table["System"][:6]) == PAPER_III_SYSTEMS
    assert table["Source"].iloc[6] == "released checkpoint README"
    assert table["System"].iloc[-1] == "AudioSep-mini" and len(table) == 8
    clap = table[table["System"] == "AudioSep-CLAP"].iloc[0]
    assert clap["AudioCaps SDRi"] == pytest.approx(7.68) and clap["ESC-50 SI-SDR"] == 9.16
    ours = table.iloc[-1]
    assert ours["Source"] == "this run"
    esc = results[results.dataset == "esc50"]
    assert ours["ESC-50 SDRi"] == pytest.approx(esc["sdri"].mean())
    captions = results[(results.dataset == "audiocaps") & (results.query_type == "caption")]
    assert ours["AudioCaps SI-SDR"] == pytest.approx(captions["si_sdr"].mean())
    audioset = results[results.dataset == "audioset"]
    assert ours["AudioSet SDRi"] == pytest.approx(audioset.groupby("class")["sdri"].median().mean())
    assert np.isnan(ours["VGGSound SDRi"]) and np.isnan(ours["MUSIC SI-SDR"])
    enhancement = evaluation["enhancement"]
    model = enhancement[enhancement.system == "AudioSep"]
    assert ours["Voicebank-DEMAND PESQ"] == pytest.approx(model["pesq"].mean())
    assert "mini" not in " ".join(table.columns)


def test_table4_noisy_row_and_paper_rows(evaluation):
    table = read_table(evaluation, "table4_enhancement")
    assert list(table.columns) == ["Dataset", "System", "Source", "Items", "PESQ", "CSIG", "CBAK",
                                   "COVL", "SSNR", "STOI"]
    assert list(table["System"][:7]) == PAPER_IV_SYSTEMS
    assert table["PESQ"].iloc[0] == pytest.approx(1.97)  # the paper's Noisy row
    assert list(table["System"][7:]) == ["Noisy (this run)", "AudioSep (this run)"]
    enhancement = evaluation["enhancement"]
    for system, row in zip(("Noisy", "AudioSep"), table.iloc[7:].itertuples()):
        items = enhancement[enhancement.system == system]
        assert row.Items == 3
        assert row.CSIG == pytest.approx(items["csig"].mean())
        assert row.STOI == pytest.approx(0.9)
    assert table["STOI"].iloc[:7].isna().all()


def test_table7_and_the_mini_corpus_table(evaluation):
    results = evaluation["results"]
    table7 = read_table(evaluation, "table7_query_types")
    assert set(table7["Dataset"]) == {"audiocaps"}  # the only paper set with several query types
    assert list(table7["Query type"]) == ["labels", "caption"]
    assert list(table7["Source"]) == ["this run", "this run"]
    mini = read_table(evaluation, "mini_query_types")
    assert list(mini.columns) == ["Dataset", "Model", "System", "Query type", "Source", "Items", "SI-SDR",
                                  "SDRi", "SDR", "Train s/step"]
    assert list(mini["Query type"]) == ["label", "caption", "paraphrase"]
    assert list(mini["Items"]) == [4, 4, 4]
    for row in mini.itertuples():
        items = results[(results.dataset == "mini") & (results.query_type == row[4])]
        assert row.SDRi == pytest.approx(items["sdri"].mean())
    summary = read_table(evaluation, "summary")
    assert len(summary) == 7  # esc50, audiocaps x2, audioset, mini x3
    assert set(summary.columns) >= {"Dataset", "Query type", "Aggregation", "Items", "SDRi"}


def test_figures_are_valid_pngs(evaluation):
    from matplotlib.image import imread
    from PIL import Image

    figures = sorted((evaluation["out"] / "figures").glob("*.png"))
    names = [p.name for p in figures]
    assert "class_sdri_esc50.png" in names and "class_sdri_mini.png" in names
    assert "class_sdri_audioset.png" in names and "class_sdri_audiocaps.png" not in names
    assert sum(n.startswith("spectrogram_") for n in names) == 2
    for path in figures:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        with Image.open(path) as image:
            image.verify()
        pixels = imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert pixels.std() > 0.01  # something was drawn


def test_paper_query_type_rows_beside_audiocaps_mini(reference):
    results = separation_rows().query("dataset == 'audiocaps'").assign(dataset="AudioCaps-Mini")
    table = query_type_table(results, load_paper_results(reference / "paper_results.csv"))
    paper = table[table["Source"] == "paper"]
    assert len(paper) == 6 and set(paper["Query type"]) == {
        "text label", "original caption", "re-annotated caption"}
    assert len(table[table["Source"] == "this run"]) == 2


def test_markdown_table_formatting():
    text = markdown_table(pd.DataFrame({"System": ["a|b", "c"], "SDRi": [1.234, float("nan")]}))
    assert text.splitlines() == ["| System | SDRi |", "|---|---:|", "| a\\|b | 1.23 |", "| c | - |"]


def test_user_errors(tmp_path, reference):
    results = separation_rows()
    with pytest.raises(AudioSepError, match="nothing to report"):
        write_report(tmp_path)
    with pytest.raises(AudioSepError, match="lacks column"):
        write_report(tmp_path, separation_results=results.drop(columns="sdri"))
    with pytest.raises(AudioSepError, match="not found"):
        write_report(tmp_path, separation_results=tmp_path / "missing.csv")
    with pytest.raises(AudioSepError, match="enhancement_dataset"):
        write_report(tmp_path, enhancement_results=enhancement_rows())
    wav = np.zeros(1600)
    with pytest.raises(AudioSepError, match="sample_rate"):
        write_report(tmp_path, separation_results=results,
                     examples=[SpectrogramExample("mini", "x", wav, wav, wav)])
    with pytest.raises(AudioSepError, match="different lengths"):
        write_report(tmp_path, separation_results=results,
                     examples=[SpectrogramExample("mini", "x", wav, wav, wav[:-1], 16000)])
    with pytest.raises(AudioSepError, match="query types"):
        write_report(tmp_path, separation_results=results, query_types={"esc50": "labels"})
    assert not Path(tmp_path / "report.md").exists()


def test_table5_has_the_papers_eight_systems_and_this_runs_rows(tmp_path):
    from asteroid_audiosep.report.document import write_report
    from asteroid_audiosep.report.supervision import supervision_table
    from asteroid_audiosep.resources import __file__ as resources

    paper = load_paper_results(Path(resources).parent / "paper_results.csv")
    rows = pd.DataFrame([
        {"id": f"{q}{k}", "dataset": "mini", "query_type": q, "sdr": 5.0 + k, "sdri": s + k, "si_sdr": 4.0 + k,
         "class": "c"} for q, s in (("label", 8.0), ("image", 5.0)) for k in range(2)])
    table = supervision_table(rows, paper, "clip", 0.5, "mini")
    paper_rows = table[table["Source"] == "paper"]
    assert len(paper_rows) == 8 and set(paper_rows["TR"]) == {0.0, 0.5, 0.75, 1.0}
    clip05 = paper_rows[(paper_rows["Encoder"] == "CLIP") & (paper_rows["TR"] == 0.5)].iloc[0]
    assert clip05["AudioSet SDRi"] == pytest.approx(7.28) and np.isnan(clip05["mini SDRi"])
    ours = table[table["Source"] == "this run"].set_index("Query type")
    assert ours.loc["image", "mini SDRi"] == pytest.approx(5.5) and ours.loc["label", "TR"] == 0.5
    assert ours.loc["label", "Encoder"] == "CLIP"
    report = write_report(tmp_path, separation_results=rows, paper_results=paper, supervision=("clip", 0.5))
    assert "Table V:" in report.read_text() and (tmp_path / "tables" / "table5_supervision.csv").is_file()
    write_report(tmp_path / "plain", separation_results=rows, paper_results=paper)
    assert "Table V:" not in (tmp_path / "plain" / "report.md").read_text()
