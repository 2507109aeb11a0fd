"""Per-dataset aggregation rules of the released evaluation, on a crafted table."""
import math

import numpy as np
import pandas as pd
import pytest

from asteroid_audiosep.errors import AudioSepError
from asteroid_audiosep.metrics import (
    MEAN,
    MEAN_OF_CLASS_MEANS,
    MEAN_OF_CLASS_MEDIANS,
    aggregate,
    aggregate_results,
    aggregation_rule,
    canonical_dataset,
)

NAN = float("nan")


def crafted_table() -> pd.DataFrame:
    rows = [
        # ESC-50: plain mean
        ("e0", "ESC-50", "caption", "dog", 1.0, 10.0),
        ("e1", "ESC-50", "caption", "dog", 2.0, 20.0),
        ("e2", "ESC-50", "caption", "rain", 6.0, 30.0),
        # MUSIC: accordion mean 2, violin mean 10 -> 6 (the plain mean would be 14/3)
        ("m0", "music", "caption", "accordion", 1.0, 0.0),
        ("m1", "music", "caption", "accordion", 3.0, 0.0),
        ("m2", "music", "caption", "violin", 10.0, 0.0),
        # AudioSet: medians 2 (outlier 100 ignored), nanmedian 5, all-NaN class dropped -> 3.5
        ("a0", "audioset", "label", "Speech", 1.0, 1.0),
        ("a1", "audioset", "label", "Speech", 2.0, 1.0),
        ("a2", "audioset", "label", "Speech", 100.0, 1.0),
        ("a3", "audioset", "label", "Dog", NAN, 2.0),
        ("a4", "audioset", "label", "Dog", 4.0, 2.0),
        ("a5", "audioset", "label", "Dog", 6.0, 2.0),
        ("a6", "audioset", "label", "Rain", NAN, 3.0),
        ("a7", "audioset", "label", "Rain", NAN, 3.0),
        # the mini corpus, two query types: plain mean each
        ("q0", "mini", "label", "siren", 8.0, 1.0),
        ("q1", "mini", "label", "flute", 10.0, 1.0),
        ("q0", "mini", "paraphrase", "siren", 4.0, 1.0),
        ("q1", "mini", "paraphrase", "flute", 7.0, 1.0),
    ]
    return pd.DataFrame(rows, columns=["id", "dataset", "query_type", "class", "sdri", "si_sdr"])


def test_rules_by_dataset_name():
    assert canonical_dataset("ESC-50") == "esc50" == canonical_dataset("esc_50")
    assert aggregation_rule("AudioSet") == MEAN_OF_CLASS_MEDIANS
    assert aggregation_rule("MUSIC") == MEAN_OF_CLASS_MEANS
    for name in ("AudioCaps", "Clotho", "ESC-50", "VGGSound", "mini"):
        assert aggregation_rule(name) == MEAN


def test_aggregate_each_rule_on_the_crafted_table():
    df = crafted_table()
    esc = aggregate(df[df.dataset == "ESC-50"])
    assert esc["sdri"] == pytest.approx(3.0) and esc["si_sdr"] == pytest.approx(20.0)
    assert aggregate(df[df.dataset == "music"])["sdri"] == pytest.approx(6.0)
    audioset = aggregate(df[df.dataset == "audioset"])
    assert audioset["sdri"] == pytest.approx(3.5)
    assert audioset["si_sdr"] == pytest.approx(2.0)  # classes' medians 1, 2, 3
    # the same rows under a plain-mean dataset name give a different number
    assert aggregate(df[df.dataset == "music"], dataset="clotho")["sdri"] == pytest.approx(14 / 3)


def test_nan_poisons_the_plain_means_but_not_audioset():
    df = crafted_table()
    esc = df[df.dataset == "ESC-50"].copy()
    esc.loc[esc.index[0], "sdri"] = NAN
    assert math.isnan(aggregate(esc)["sdri"])
    music = df[df.dataset == "music"].copy()
    music.loc[music.index[-1], "sdri"] = NAN
    assert math.isnan(aggregate(music)["sdri"])
    assert not math.isnan(aggregate(df[df.dataset == "audioset"])["sdri"])


def test_aggregate_results_per_dataset_and_query_type():
    table = aggregate_results(crafted_table(), metrics=["sdri", "si_sdr"])
    assert list(table.columns) == [
        "dataset", "query_type", "n_items", "aggregation", "sdri", "si_sdr"
    ]
    keyed = table.set_index(["dataset", "query_type"])
    assert keyed.loc[("ESC-50", "caption"), "n_items"] == 3
    assert keyed.loc[("audioset", "label"), "aggregation"] == MEAN_OF_CLASS_MEDIANS
    assert keyed.loc[("audioset", "label"), "sdri"] == pytest.approx(3.5)
    assert keyed.loc[("music", "caption"), "sdri"] == pytest.approx(6.0)
    assert keyed.loc[("mini", "label"), "sdri"] == pytest.approx(9.0)
    assert keyed.loc[("mini", "paraphrase"), "sdri"] == pytest.approx(5.5)
    assert len(table) == 5
    default_columns = aggregate_results(crafted_table())
    np.testing.assert_allclose(default_columns["sdri"], table["sdri"])


def test_aggregation_errors_are_user_errors():
    df = crafted_table()
    with pytest.raises(AudioSepError, match="several datasets"):
        aggregate(df)
    with pytest.raises(AudioSepError, match="'class' column"):
        aggregate(df[df.dataset == "music"].drop(columns="class"))
    with pytest.raises(AudioSepError, match="missing"):
        aggregate(df[df.dataset == "mini"], metrics=["pesq"])
    with pytest.raises(AudioSepError, match="empty"):
        aggregate(df.iloc[:0], dataset="mini")
    with pytest.raises(AudioSepError, match="must include 'dataset'"):
        aggregate_results(df, by=["query_type"])
