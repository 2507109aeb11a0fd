"""separate --score: scores.csv, --min-score ("not found", nothing deleted), --auto ranked by the
score, --query-variants best-of-N, and the error of a model that cannot score."""
import csv
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import small_model_args
from tone_encoder import TONES, TextOnlyEncoder, ToneEncoder, tone

from asteroid_audiosep import AudioSep, Separator
from asteroid_audiosep.cli import main
from asteroid_audiosep.encoders import base as encoder_registry
from asteroid_audiosep.errors import AudioSepError
from asteroid_audiosep.metrics import ClapScorer, clap_score, clap_score_i
from asteroid_audiosep.query_variants import common_reference

RATE = 16000


def _model(encoder=None):
    torch.manual_seed(0)
    model = AudioSep(**small_model_args(condition_dim=len(TONES)))
    model.set_query_encoder(encoder or ToneEncoder(), update_spec=False)
    return model


def _inputs(root):
    """A folder of two mixtures (one in a sub-folder) of tones at different levels."""
    (root / "sub").mkdir(parents=True)
    sf.write(root / "a.wav", tone(500, 2.0, RATE) + tone(2000, 2.0, RATE, 0.3), RATE, subtype="FLOAT")
    sf.write(root / "sub" / "b.wav", tone(250, 1.5, RATE, 0.4) + tone(1000, 1.5, RATE, 0.2), RATE, subtype="FLOAT")
    return root


def _rows(outdir):
    with open(outdir / "scores.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _separator(model=None, **kwargs):
    return Separator(model or _model(), "cpu", precision="fp32", progress=False, score=True, **kwargs)


def test_a_folder_gets_one_row_per_output_equal_to_the_metric(tmp_path):
    inputs = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    report = _separator().separate_files(inputs, ["mid tone", "whistle"], out)
    assert report.ok, report.summary()
    rows = _rows(out)
    assert list(rows[0]) == ["input", "query", "output", "kind", "clapscore", "clapscore_i", "duration", "status"]
    assert sorted((r["output"], r["query"]) for r in rows) == [
        ("a__mid_tone.wav", "mid tone"), ("a__whistle.wav", "whistle"),
        ("sub/b__mid_tone.wav", "mid tone"), ("sub/b__whistle.wav", "whistle")]
    scorer = ClapScorer(ToneEncoder())
    for r in rows:
        assert (out / r["output"]).is_file() and r["status"] == "written"
        assert float(r["clapscore"]) == pytest.approx(clap_score(out / r["output"], None, r["query"], scorer), abs=1e-3)
        assert float(r["clapscore_i"]) == pytest.approx(
            clap_score_i(out / r["output"], r["input"], None, r["query"], scorer), abs=1e-3)
    assert float(next(r for r in rows if r["input"].endswith("b.wav"))["duration"]) == pytest.approx(1.5)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    # A second run on one more query merges: the four rows stay, two are added
    _separator().separate_files(inputs, ["beep"], out)
    assert len(_rows(out)) == 6


def test_min_score_leaves_out_low_outputs_and_deletes_nothing(tmp_path):
    inputs = _inputs(tmp_path / "in")
    before = {p: p.read_bytes() for p in inputs.rglob("*.wav")}
    _separator().separate_files(inputs / "a.wav", list(TONES), tmp_path / "scored")
    gains = {r["query"]: float(r["clapscore_i"]) for r in _rows(tmp_path / "scored")}
    ordered = sorted(gains.values())
    threshold = (ordered[1] + ordered[2]) / 2  # two outputs below, two above
    out = tmp_path / "out"
    out.mkdir()
    low = [q for q, g in gains.items() if g < threshold]
    earlier = out / f"a__{low[0].replace(' ', '_')}.wav"
    sf.write(earlier, np.full(100, 0.25, dtype="float32"), RATE)  # an earlier output, kept as it is
    report = _separator().separate_files(inputs / "a.wav", list(TONES), out, overwrite=True, min_score=threshold)
    assert report.ok
    rows = {r["query"]: r for r in _rows(out)}
    assert {q for q, r in rows.items() if r["status"] == "not found"} == set(low)
    for query, row in rows.items():
        path = out / row["output"]
        assert path.exists() == (query not in low) or path == earlier
    assert sf.read(earlier)[0].shape == (100,) and float(sf.read(earlier)[0][0]) == 0.25
    assert len(report.not_found) == 2 and "2 output(s) not found" in report.summary()
    assert {p: p.read_bytes() for p in inputs.rglob("*.wav")} == before
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_a_model_without_audio_tower_fails_once_before_any_work(tmp_path, capsys, monkeypatch):
    with pytest.raises(AudioSepError, match="no audio tower|has none.*--score-encoder"):
        _separator(_model(TextOnlyEncoder()))
    # the same through the command line: exit 2, one message, nothing written
    monkeypatch.setitem(encoder_registry._REGISTRY, "sentence-stand-in", TextOnlyEncoder)
    model = AudioSep(**small_model_args(condition_dim=len(TONES)), query_encoder={"type": "sentence-stand-in"})
    torch.save(model.serialize(), tmp_path / "model.pth")
    inputs = _inputs(tmp_path / "in")
    code = main(["separate", str(inputs), "-q", "beep", "-m", str(tmp_path / "model.pth"), "-o",
                 str(tmp_path / "out"), "--score", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("--score-encoder") == 1
    assert not (tmp_path / "out").exists()
    # ... and a scoring encoder given by spec makes it work
    monkeypatch.setitem(encoder_registry._REGISTRY, "tone", ToneEncoder)
    code = main(["separate", str(inputs), "-q", "beep", "-m", str(tmp_path / "model.pth"), "-o",
                 str(tmp_path / "out"), "--score", "--score-encoder", '{"type": "tone"}', "--quiet"])
    assert code == 0 and len(_rows(tmp_path / "out")) == 2


def test_min_score_without_score_is_refused(tmp_path):
    sep = Separator(_model(), "cpu", precision="fp32", progress=False)
    with pytest.raises(AudioSepError, match="--min-score needs --score"):
        sep.separate_files(_inputs(tmp_path / "in"), ["beep"], tmp_path / "out", min_score=0.1)


def test_auto_ranks_labels_with_the_score_and_scores_its_outputs(tmp_path):
    sf.write(tmp_path / "mix.wav", tone(500, 2.0, RATE) + tone(2000, 2.0, RATE, 0.3) + tone(250, 2.0, RATE, 0.05),
             RATE)
    report = _separator().separate_files(tmp_path / "mix.wav", [], tmp_path / "out", auto=2, labels=list(TONES))
    assert report.ok
    scorer = ClapScorer(ToneEncoder())
    mixture = {label: clap_score(tmp_path / "mix.wav", None, label, scorer) for label in TONES}
    best_two = sorted(mixture, key=mixture.get)[-2:]
    assert sorted(r["query"] for r in _rows(tmp_path / "out")) == sorted(best_two) == ["mid tone", "whistle"]


def test_query_variants_keep_the_best_phrasing_against_the_common_reference(tmp_path):
    sf.write(tmp_path / "mix.wav", tone(500, 2.0, RATE) + tone(1000, 2.0, RATE, 0.3), RATE, subtype="FLOAT")
    (tmp_path / "phrasings.yaml").write_text("tonal: [mid tone, beep, whistle]\nlow: [low hum]\n")
    sep = _separator()
    report = sep.separate_files(tmp_path / "mix.wav", [], tmp_path / "out", query_variants=tmp_path / "phrasings.yaml")
    assert report.ok, report.summary()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["mix__low.wav", "mix__tonal.wav"]
    assert sorted(r["query"] for r in _rows(tmp_path / "out")) == ["low", "tonal"]
    # the file kept is the candidate an independent best-of-N picks
    wav, _ = sf.read(tmp_path / "mix.wav", dtype="float32")
    texts = ["mid tone", "beep", "whistle"]
    outputs = sep.separate_waveform(torch.from_numpy(wav), RATE, texts)
    scorer = ClapScorer(ToneEncoder())
    scores = scorer.audio_embeddings([(o, RATE) for o in outputs]).double() @ common_reference(scorer, texts).double()
    written, _ = sf.read(tmp_path / "out" / "mix__tonal.wav", dtype="float32")
    errors = [float(np.abs(written - o[0].numpy()).max()) for o in outputs]
    assert int(np.argmin(errors)) == int(scores.argmax()) and min(errors) < 1e-5
    assert not math.isnan(float(scores.max()))
    with pytest.raises(AudioSepError, match="needs --score"):
        Separator(_model(), "cpu", progress=False).separate_files(tmp_path / "mix.wav", ["beep"], tmp_path / "x",
                                                                  query_variants=2)


def test_phrasings_and_their_file_are_checked(tmp_path):
    from asteroid_audiosep import Query
    from asteroid_audiosep.query_variants import TEMPLATES, load_phrasings, phrasings, variant_groups

    assert phrasings(" a siren ", 3) == ["a siren", "the sound of a siren", "a recording of a siren"]
    with pytest.raises(AudioSepError, match=f"1 to {len(TEMPLATES)}"):
        phrasings("a siren", len(TEMPLATES) + 1)
    (tmp_path / "bad.yaml").write_text("siren: []\n")
    with pytest.raises(AudioSepError, match="'siren' needs a list of non-empty phrasings"):
        load_phrasings(tmp_path / "bad.yaml")
    (tmp_path / "ok.yaml").write_text("siren: [a siren, a siren, an alarm]\ndog: a dog\n")
    assert load_phrasings(tmp_path / "ok.yaml") == {"siren": ["a siren", "an alarm"], "dog": ["a dog"]}
    names, groups = variant_groups(["beep"], load_phrasings(tmp_path / "ok.yaml"))
    assert names == ["beep", "siren", "dog"] and groups == [["beep"], ["a siren", "an alarm"], ["a dog"]]
    with pytest.raises(AudioSepError, match="text queries only"):
        variant_groups([Query.span(0, 1)], 2)
    code = main(["separate", "-q", "beep", "--query-variants", "nope.yaml", "-m", "x.pth", str(tmp_path / "ok.yaml")])
    assert code == 2
