"""The demo page shows each output's CLAPScore and CLAPScore-i (when the model's encoder has an
audio tower), the values ``separate --score`` writes."""
import pytest
import torch
from helpers import DEMO_ARGS, BandEncoder, make_demo_package, make_demo_wav, nontrivial

from asteroid_audiosep import AudioSep
from asteroid_audiosep.demo import DemoSeparator, page_response
from asteroid_audiosep.metrics import ClapScorer, clap_score, clap_score_i


def test_each_output_shows_its_scores(tmp_path):
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**dict(DEMO_ARGS, condition_dim=16))).eval()
    model.set_query_encoder(BandEncoder(), update_spec=False)
    sep = DemoSeparator(model, "cpu", max_minutes=0.05, workdir=tmp_path / "out")
    wav_path = make_demo_wav(tmp_path / "mix.wav")
    result = sep.run(wav_path, ["dog", "cat"])
    scorer = ClapScorer(BandEncoder())
    for out in result.outputs:
        assert out.score[0] == pytest.approx(clap_score(out.target, None, out.query, scorer), abs=1e-4)
        assert out.score[1] == pytest.approx(clap_score_i(out.target, wav_path, None, out.query, scorer), abs=1e-4)
    values = page_response(sep, str(wav_path), "dog\ncat")
    headings = [v["value"] for v in values[3::4][:2]]
    assert headings == [f"{o.query}  (CLAPScore {o.score[0]:.3f}, CLAPScore-i {o.score[1]:+.3f})"
                        for o in result.outputs]


def test_a_table_model_shows_no_score(tmp_path):
    model, table = make_demo_package(tmp_path)
    sep = DemoSeparator(model, "cpu", table, max_minutes=0.05, workdir=tmp_path / "out")
    result = sep.run(make_demo_wav(tmp_path / "mix.wav"), ["dog barking"])
    assert sep.scorer is None and result.outputs[0].score is None
