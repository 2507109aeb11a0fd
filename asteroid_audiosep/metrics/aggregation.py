"""Per-dataset aggregation of per-item scores, with the released evaluation's rule per benchmark.

* AudioCaps, Clotho, ESC-50, VGGSound (and any other set, e.g. the built-in ``mini`` corpus):
  the mean over mixtures (a NaN item makes the result NaN, as ``np.mean`` does in the release).
* MUSIC: the mean per instrument, then the mean over the instruments.
* AudioSet: the median over the (up to 10) mixtures of each class, then the mean over the
  classes, both NaN-aware (``np.nanmedian``, ``np.nanmean``), so a class without a valid item
  drops out instead of poisoning the mean.

The instrument (MUSIC) or class (AudioSet) of each item is read from a column, ``class`` by
default.
"""
import re
from typing import Optional, Sequence

import pandas as pd

from ..errors import AudioSepError

MEAN = "mean"
MEAN_OF_CLASS_MEANS = "mean of per-class means"
MEAN_OF_CLASS_MEDIANS = "mean of per-class medians (NaN-aware)"

_RULES = {"audioset": MEAN_OF_CLASS_MEDIANS, "music": MEAN_OF_CLASS_MEANS}

#: The per-item score columns that :func:`aggregate` averages by default, when present.
SCORE_COLUMNS = (
    "sdr", "sdri", "si_sdr", "si_sdri",
    "pesq", "csig", "cbak", "covl", "ssnr", "stoi", "llr", "wss",
    "clapscore", "clapscore_i", "input_clapscore",
)


def canonical_dataset(name: str) -> str:
    """A dataset name reduced to lower-case letters and digits: ``"ESC-50"`` -> ``"esc50"``."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def aggregation_rule(dataset: str) -> str:
    """The released evaluation's aggregation rule for a dataset (see the module docstring)."""
    return _RULES.get(canonical_dataset(dataset), MEAN)


def _score_columns(df: pd.DataFrame, metrics: Optional[Sequence[str]]) -> list:
    if metrics is None:
        metrics = [c for c in SCORE_COLUMNS if c in df.columns]
        if not metrics:
            raise AudioSepError(
                f"no score column found; expected some of {SCORE_COLUMNS}, got {list(df.columns)}"
            )
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise AudioSepError(f"score column(s) {missing} missing; columns are {list(df.columns)}")
    return list(metrics)


def aggregate(
    df: pd.DataFrame,
    dataset: Optional[str] = None,
    metrics: Optional[Sequence[str]] = None,
    class_column: str = "class",
) -> pd.Series:
    """One number per metric for one dataset's per-item table, as the released evaluation does.

    Args:
        df: one row per evaluated item.
        dataset: which rule to apply; default: the single value of ``df["dataset"]``.
        metrics: score columns to aggregate; default: those of :data:`SCORE_COLUMNS` present.
        class_column: the column holding each item's class (AudioSet) or instrument (MUSIC).

    Returns:
        A Series indexed by metric.

    Raises:
        AudioSepError: empty table, missing columns, several datasets mixed without ``dataset``,
            or a class-based rule without class labels.
    """
    if len(df) == 0:
        raise AudioSepError("cannot aggregate an empty result table")
    if dataset is None:
        if "dataset" not in df.columns:
            raise AudioSepError("pass `dataset` or give the table a 'dataset' column")
        names = df["dataset"].unique()
        if len(names) != 1:
            raise AudioSepError(
                f"the table holds several datasets {sorted(map(str, names))}; aggregate each "
                "separately (see aggregate_results)"
            )
        dataset = str(names[0])
    metrics = _score_columns(df, metrics)
    scores = df[metrics].astype(float)
    rule = aggregation_rule(dataset)
    if rule == MEAN:
        return scores.mean(skipna=False)
    if class_column not in df.columns or df[class_column].isna().any():
        raise AudioSepError(
            f"{dataset} is aggregated per class ({rule}); every row needs its class or instrument "
            f"in the '{class_column}' column"
        )
    groups = scores.groupby(df[class_column].astype(str), sort=True)
    if rule == MEAN_OF_CLASS_MEANS:
        return groups.mean().mean(skipna=False)
    return groups.median().mean()  # pandas' median and mean skip NaN: np.nanmedian / np.nanmean


def aggregate_results(
    df: pd.DataFrame,
    by: Sequence[str] = ("dataset", "query_type"),
    metrics: Optional[Sequence[str]] = None,
    class_column: str = "class",
) -> pd.DataFrame:
    """:func:`aggregate` for every group of a per-item table (e.g. per dataset and query type).

    Args:
        df: one row per item, with a ``dataset`` column and the ``by`` columns.
        by: grouping columns; must include ``dataset`` (it selects the rule).
        metrics: score columns; default: those of :data:`SCORE_COLUMNS` present.
        class_column: see :func:`aggregate`.

    Returns:
        One row per group: the ``by`` columns, ``n_items``, ``aggregation`` (the rule's name)
        and one column per metric, in order of first appearance.

    Raises:
        AudioSepError: see :func:`aggregate`.
    """
    by = list(by)
    if "dataset" not in by:
        raise AudioSepError("`by` must include 'dataset': it decides the aggregation rule")
    missing = [c for c in by if c not in df.columns]
    if missing:
        raise AudioSepError(f"grouping column(s) {missing} missing from the result table")
    if len(df) == 0:
        raise AudioSepError("cannot aggregate an empty result table")
    metrics = _score_columns(df, metrics)
    rows = []
    for key, group in df.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n_items"] = len(group)
        row["aggregation"] = aggregation_rule(row["dataset"])
        row.update(aggregate(group, row["dataset"], metrics, class_column).to_dict())
        rows.append(row)
    return pd.DataFrame(rows, columns=by + ["n_items", "aggregation"] + metrics)
