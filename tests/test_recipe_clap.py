"""conf/mini_clap.yaml: the mini model with random seeded LAION-CLAP towers trained with audio-text
hybrid supervision (text ratio 0.5), evaluated with text and held-out audio-example queries."""
import pandas as pd
import pytest


@pytest.mark.slow
def test_mini_clap_meets_its_goals(tmp_path, run_recipe):
    """TR 0.5: audio-example-queried test SDRi >= 5 dB, label-queried >= 7 dB. Estimated 12-15 minutes
    on an idle 2-core CPU (5.5 of them embedding the 432 training clips once); far longer on a loaded
    one (the 2026-12-02 run was stopped at step 500; measured figures: docs/results.md). `utils/test.sh -m slow`."""
    run_recipe("--conf", "conf/mini_clap.yaml", "--stop_stage", "3", root=tmp_path, relative=True)
    summary = pd.read_csv(tmp_path / "exp" / "mini_clap" / "eval" / "summary.csv")
    summary = summary[summary["dataset"] == "mini"].set_index("query_type")
    assert set(summary.index) == {"label", "caption", "paraphrase", "audio"}
    assert summary.loc["audio", "sdri"] >= 5.0 and summary.loc["label", "sdri"] >= 7.0
    assert summary["n_items"].eq(18 * 6).all()
