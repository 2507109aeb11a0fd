"""The report's mini table: one row per (run, query type), with the model and train time per step."""
import pandas as pd

from asteroid_audiosep.report import write_report


def _results(sdri):
    rows = []
    for query_type, shift in (("label", 0.0), ("caption", 1.0)):
        for k in range(3):
            rows.append({"id": f"{k}", "dataset": "mini", "query_type": query_type, "query": "q", "class": "c",
                         "sdr": sdri + shift + k, "sdri": sdri + shift + k, "si_sdr": 1.0, "si_sdri": 1.0,
                         "input_sdr": 0.0})
    return pd.DataFrame(rows)


def test_mini_table_has_a_model_column_and_other_runs(tmp_path):
    write_report(tmp_path, separation_results=_results(5.0), system_name="AudioSep-DP-mini",
                 model_name="AudioSepDP", seconds_per_step=0.4,
                 other_runs=[("AudioSep-mini", "AudioSep", 0.2, _results(3.0))])
    table = pd.read_csv(tmp_path / "tables" / "mini_query_types.csv")
    assert list(table.columns[:3]) == ["Dataset", "Model", "System"]
    assert list(table["Model"]) == ["AudioSepDP"] * 2 + ["AudioSep"] * 2
    assert list(table["Train s/step"]) == [0.4, 0.4, 0.2, 0.2]
    assert list(table["Source"]) == ["this run"] * 2 + ["compared run"] * 2
    dp = table[(table["Model"] == "AudioSepDP") & (table["Query type"] == "caption")].iloc[0]
    plain = table[(table["Model"] == "AudioSep") & (table["Query type"] == "caption")].iloc[0]
    assert (dp["SDRi"], plain["SDRi"]) == (7.0, 5.0)
