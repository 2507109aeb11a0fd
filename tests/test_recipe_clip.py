"""conf/mini_clip.yaml as shipped: AudioSep-CLIP on the mini corpus, text/picture hybrid supervision
(text ratio 0.5), evaluated with text and held-out picture queries."""
import pandas as pd
import pytest


@pytest.mark.slow
def test_mini_clip_meets_its_goals(tmp_path, run_recipe):
    """TR 0.5, 2000 steps: label-queried test SDRi >= 7 dB, image-queried >= 5 dB (measured 2026-12-06:
    8.30 and 7.19 dB). 72 minutes for stages 0-5 (43 of training) on a 2-core CPU shared with other
    jobs (load 15-25), far less on an idle one; `utils/test.sh -m slow`."""
    run_recipe("--conf", "conf/mini_clip.yaml", "--stop_stage", "3", root=tmp_path, relative=True)
    summary = pd.read_csv(tmp_path / "exp" / "mini_clip" / "eval" / "summary.csv").set_index("query_type")
    assert set(summary.index) == {"label", "caption", "paraphrase", "image"}
    assert summary.loc["label", "sdri"] >= 7.0 and summary.loc["image", "sdri"] >= 5.0
    assert summary["n_items"].eq(18 * 6).all()
