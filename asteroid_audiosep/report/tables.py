"""Report tables: per-item results read and checked, aggregated with the released rules, and
laid out as the paper's Tables III (benchmarks), IV (speech enhancement) and VII (query types),
with the paper's numbers beside this run's; Markdown rendering."""
import math
import os
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from ..errors import AudioSepError
from ..metrics.aggregation import (
    aggregate_results,
    canonical_dataset,
)

PathLike = Union[str, os.PathLike]
TableSource = Union[pd.DataFrame, PathLike, Sequence[PathLike]]

#: Evaluation sets that are the paper's benchmarks, by canonical name (see ``canonical_dataset``).
PAPER_BENCHMARKS = {
    "audioset": "AudioSet",
    "vggsound": "VGGSound",
    "audiocaps": "AudioCaps",
    "clotho": "Clotho",
    "music": "MUSIC",
    "esc50": "ESC-50",
    "voicebankdemand": "Voicebank-DEMAND",
    "voicebank": "Voicebank-DEMAND",
    "audiocapsmini": "AudioCaps-Mini",
}
#: The separation benchmarks of Table III, in the paper's order.
SEPARATION_BENCHMARKS = ("AudioSet", "VGGSound", "AudioCaps", "Clotho", "MUSIC", "ESC-50")
#: Columns every separation result row must have.
SEPARATION_COLUMNS = ("id", "dataset", "query_type", "sdr", "sdri", "si_sdr")
#: Columns every enhancement result row must have.
ENHANCEMENT_COLUMNS = ("id", "system", "pesq", "csig", "cbak", "covl", "ssnr", "stoi")
#: Order of query types in the tables (others follow alphabetically).
QUERY_TYPE_ORDER = ("label", "labels", "caption", "paraphrase", "audio", "image")
#: The paper's name for the unprocessed input of the enhancement table.
NOISY = "Noisy"

_SEPARATION_HEADERS = {"sdr": "SDR", "sdri": "SDRi", "si_sdr": "SI-SDR", "si_sdri": "SI-SDRi",
                       "clapscore": "CLAPScore", "clapscore_i": "CLAPScore-i"}
#: Columns shown with 3 decimals (cosine similarities, -1 to 1) instead of 2 (dB).
FINE_COLUMNS = {"CLAPScore": 3, "CLAPScore-i": 3, "Recording CLAPScore": 3}
_ENHANCEMENT_HEADERS = {
    "pesq": "PESQ", "csig": "CSIG", "cbak": "CBAK", "covl": "COVL", "ssnr": "SSNR", "stoi": "STOI",
}
_PAPER_COLUMNS = ("table", "system", "benchmark", "metric", "value")
_RELEASED_README = "README"



# --------------------------------------------------------------------------- inputs


def paper_benchmark(dataset: str) -> Optional[str]:
    """The paper's name of a benchmark (``"esc50"`` -> ``"ESC-50"``), None when not one of them."""
    return PAPER_BENCHMARKS.get(canonical_dataset(dataset))


def load_results(source: TableSource, required: Sequence[str], what: str) -> pd.DataFrame:
    """A per-item table from a DataFrame, a CSV path or several CSV paths (concatenated).

    Args:
        source: the table or where to read it.
        required: columns it must have.
        what: what the table is, for error messages.

    Returns:
        A copy with ``id`` (and ``dataset``, ``query_type``, ``system``, ``class`` when present)
        as strings.

    Raises:
        AudioSepError: a file is missing or unreadable, the table is empty or lacks a column.
    """
    if isinstance(source, pd.DataFrame):
        df = source.copy()
    else:
        paths = [source] if isinstance(source, (str, os.PathLike)) else list(source)
        if not paths:
            raise AudioSepError(f"no {what} file given")
        frames = []
        for path in paths:
            if not Path(path).is_file():
                raise AudioSepError(f"{what} file not found: {path}")
            try:
                frames.append(pd.read_csv(path, dtype={"id": str, "class": str}))
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
                raise AudioSepError(f"cannot read {what} file {path}: {err}") from err
        df = pd.concat(frames, ignore_index=True)
    if len(df) == 0:
        raise AudioSepError(f"the {what} table is empty")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise AudioSepError(
            f"the {what} table lacks column(s) {missing}; it has {list(df.columns)}"
        )
    for column in ("id", "dataset", "query_type", "system", "class"):
        if column in df.columns:
            df[column] = df[column].where(df[column].isna(), df[column].astype(str))
    return df


def load_paper_results(source: Union[pd.DataFrame, PathLike]) -> pd.DataFrame:
    """The paper's numbers: ``table, system, benchmark, metric, value``, one number per row.

    Raises:
        AudioSepError: missing file or columns.
    """
    df = load_results(source, _PAPER_COLUMNS, "paper results")
    df["table"] = df["table"].astype(str)
    df["value"] = df["value"].astype(float)
    return df


# --------------------------------------------------------------------------- tables


def _query_type_key(query_type: str):
    order = {name: i for i, name in enumerate(QUERY_TYPE_ORDER)}
    return (order.get(query_type, len(order)), query_type)


def _present(df: pd.DataFrame, names: Sequence[str]) -> List[str]:
    return [n for n in names if n in df.columns]


def separation_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Every dataset and query type of this run, aggregated with the released rules.

    Args:
        results: per-item separation results (see the module docstring).

    Returns:
        Columns ``Dataset, Query type, Aggregation, Items`` and the present ones of ``SDR, SDRi,
        SI-SDR, SI-SDRi, CLAPScore, CLAPScore-i``; datasets in order of appearance, query types in
        :data:`QUERY_TYPE_ORDER`.
    """
    metrics = _present(results, _SEPARATION_HEADERS)
    table = aggregate_results(results, by=("dataset", "query_type"), metrics=metrics)
    datasets = list(dict.fromkeys(results["dataset"]))
    table = table.assign(
        _d=table["dataset"].map(datasets.index),
        _q=table["query_type"].map(_query_type_key),
    ).sort_values(["_d", "_q"]).drop(columns=["_d", "_q"])
    table = table.rename(
        columns={"dataset": "Dataset", "query_type": "Query type", "aggregation": "Aggregation",
                 "n_items": "Items", **_SEPARATION_HEADERS}
    )
    return table.reset_index(drop=True)


def primary_query_types(
    results: pd.DataFrame, overrides: Optional[Mapping[str, str]] = None
) -> Dict[str, str]:
    """The query type that stands for each dataset in Table III.

    A dataset's only query type, else ``caption`` (the paper's default text query), else the
    first in :data:`QUERY_TYPE_ORDER`; ``overrides`` (dataset -> query type) wins.

    Raises:
        AudioSepError: an override names a query type the dataset was not evaluated with.
    """
    chosen = {}
    overrides = dict(overrides or {})
    for dataset, group in results.groupby("dataset", sort=False):
        types = sorted(group["query_type"].unique(), key=_query_type_key)
        if dataset in overrides:
            if overrides[dataset] not in types:
                raise AudioSepError(
                    f"{dataset} was evaluated with query types {types}, not "
                    f"{overrides[dataset]!r}"
                )
            chosen[dataset] = overrides[dataset]
        else:
            chosen[dataset] = "caption" if "caption" in types else types[0]
    return chosen


def _enhancement_means(enhancement: pd.DataFrame) -> pd.DataFrame:
    metrics = _present(enhancement, _ENHANCEMENT_HEADERS)
    return aggregate_results(enhancement, by=("dataset", "system"), metrics=metrics)


def _model_systems(means: pd.DataFrame) -> pd.DataFrame:
    return means[means["system"] != NOISY]


def benchmark_table(
    results: Optional[pd.DataFrame] = None,
    enhancement: Optional[pd.DataFrame] = None,
    paper: Optional[pd.DataFrame] = None,
    system_name: str = "This run",
    query_types: Optional[Mapping[str, str]] = None,
) -> pd.DataFrame:
    """Table III: SI-SDR and SDRi per benchmark (and PESQ, SSNR on Voicebank-DEMAND).

    Rows: the paper's systems (Table III), the released checkpoint's README numbers, then this
    run. Columns: ``System, Source`` and ``"<benchmark> <metric>"``: every benchmark of the
    paper's table (or, without ``paper``, those this run evaluated). This run fills the columns
    of the paper benchmarks it evaluated (with the query type of :func:`primary_query_types`);
    Voicebank-DEMAND PESQ/SSNR come from the enhancement results' model system when there is
    exactly one.

    Args:
        results: per-item separation results, or None.
        enhancement: per-item enhancement results (with ``dataset``), or None.
        paper: :func:`load_paper_results` output, or None.
        system_name: this run's row label.
        query_types: overrides for :func:`primary_query_types`.

    Returns:
        The table (empty when there is nothing to show).
    """
    columns: List[str] = []
    rows: List[Dict[str, object]] = []
    if paper is not None:
        subset = paper[paper["table"].isin(["III", _RELEASED_README])]
        for benchmark in SEPARATION_BENCHMARKS:
            if benchmark in set(subset["benchmark"]):
                columns += [f"{benchmark} SI-SDR", f"{benchmark} SDRi"]
        if "Voicebank-DEMAND" in set(subset["benchmark"]):
            columns += ["Voicebank-DEMAND PESQ", "Voicebank-DEMAND SSNR"]
        for (table, system), group in subset.groupby(["table", "system"], sort=False):
            source = "paper" if table == "III" else "released checkpoint README"
            row = {"System": system, "Source": source}
            values = group[["benchmark", "metric", "value"]].values
            row.update({f"{b} {m}": v for b, m, v in values})
            rows.append(row)
    ours: Dict[str, float] = {}
    if results is not None:
        primary = primary_query_types(results, query_types)
        summary = separation_summary(results)
        seen: Dict[str, str] = {}
        for dataset, query_type in primary.items():
            benchmark = paper_benchmark(dataset)
            if benchmark not in SEPARATION_BENCHMARKS:
                continue
            if benchmark in seen:
                raise AudioSepError(
                    f"datasets {seen[benchmark]!r} and {dataset!r} are both the {benchmark} "
                    "benchmark; rename one"
                )
            seen[benchmark] = dataset
            line = summary[(summary["Dataset"] == dataset) & (summary["Query type"] == query_type)]
            ours[f"{benchmark} SI-SDR"] = float(line["SI-SDR"].iloc[0])
            ours[f"{benchmark} SDRi"] = float(line["SDRi"].iloc[0])
    if enhancement is not None:
        models = _model_systems(_enhancement_means(enhancement))
        models = models[models["dataset"].map(paper_benchmark) == "Voicebank-DEMAND"]
        if len(models) == 1:
            ours["Voicebank-DEMAND PESQ"] = float(models["pesq"].iloc[0])
            ours["Voicebank-DEMAND SSNR"] = float(models["ssnr"].iloc[0])
    for benchmark in SEPARATION_BENCHMARKS + ("Voicebank-DEMAND",):
        names = [c for c in ours if c.startswith(benchmark + " ")]
        columns += [c for c in names if c not in columns]
    if ours:
        rows.append({"System": system_name, "Source": "this run", **ours})
    return pd.DataFrame(rows, columns=["System", "Source"] + columns)


def enhancement_table(
    enhancement: pd.DataFrame,
    paper: Optional[pd.DataFrame] = None,
    system_suffix: str = " (this run)",
) -> pd.DataFrame:
    """Table IV: PESQ, CSIG, CBAK, COVL, SSNR (and STOI) per system, "Noisy" first.

    The paper's rows come first, for Voicebank-DEMAND only; then this run's rows per dataset:
    the unprocessed input ("Noisy") and each model system, averaged over items.

    Args:
        enhancement: per-item enhancement results with a ``dataset`` column.
        paper: :func:`load_paper_results` output, or None.
        system_suffix: appended to this run's system names.

    Returns:
        Columns ``Dataset, System, Source, Items, PESQ, CSIG, CBAK, COVL, SSNR, STOI``.
    """
    means = _enhancement_means(enhancement)
    rows: List[Dict[str, object]] = []
    datasets = list(dict.fromkeys(means["dataset"]))
    if paper is not None and any(paper_benchmark(d) == "Voicebank-DEMAND" for d in datasets):
        subset = paper[(paper["table"] == "IV") & (paper["benchmark"] == "Voicebank-DEMAND")]
        for system, group in subset.groupby("system", sort=False):
            row = {"Dataset": "Voicebank-DEMAND", "System": system, "Source": "paper"}
            row.update({m: v for m, v in group[["metric", "value"]].values})
            rows.append(row)
    for dataset in datasets:
        block = means[means["dataset"] == dataset]
        block = block.assign(_noisy=block["system"] != NOISY).sort_values("_noisy", kind="stable")
        for _, line in block.iterrows():
            row = {"Dataset": dataset, "System": f"{line['system']}{system_suffix}",
                   "Source": "this run", "Items": int(line["n_items"])}
            row.update({h: line[m] for m, h in _ENHANCEMENT_HEADERS.items() if m in line})
            rows.append(row)
    table = pd.DataFrame(
        rows, columns=["Dataset", "System", "Source", "Items", *_ENHANCEMENT_HEADERS.values()]
    )
    return table.astype({"Items": "Int64"})


def query_type_table(
    results: pd.DataFrame,
    paper: Optional[pd.DataFrame] = None,
    system_name: str = "This run",
    datasets: Optional[Sequence[str]] = None,
) -> pd.DataFrame:
    """Table VII: separation per query type (label vs caption vs paraphrase).

    Args:
        results: per-item separation results.
        paper: :func:`load_paper_results` output; its Table VII rows (AudioCaps-Mini) are put
            beside this run's only when this run evaluated AudioCaps-Mini.
        system_name: this run's label; rows read ``"<system_name> (<query type>)"``.
        datasets: the datasets to include (default: those evaluated with several query types).

    Returns:
        Columns ``Dataset, System, Query type, Source, Items, SI-SDR, SDRi`` plus ``SDR`` and
        ``SI-SDRi`` when present.
    """
    summary = separation_summary(results)
    if datasets is None:
        counts = summary.groupby("Dataset", sort=False)["Query type"].nunique()
        datasets = [d for d, n in counts.items() if n > 1]
    metric_columns = ["SI-SDR", "SDRi"] + [c for c in ("SDR", "SI-SDRi", "CLAPScore", "CLAPScore-i")
                                           if c in summary.columns]
    rows: List[Dict[str, object]] = []
    for dataset in datasets:
        if paper is not None and paper_benchmark(dataset) == "AudioCaps-Mini":
            subset = paper[(paper["table"] == "VII") & (paper["benchmark"] == "AudioCaps-Mini")]
            for system, group in subset.groupby("system", sort=False):
                match = re.search(r"\(([^)]*)\)\s*$", system)
                row = {"Dataset": dataset, "System": system, "Source": "paper",
                       "Query type": match.group(1) if match else ""}
                row.update({m: v for m, v in group[["metric", "value"]].values})
                rows.append(row)
        for _, line in summary[summary["Dataset"] == dataset].iterrows():
            row = {"Dataset": dataset, "System": f"{system_name} ({line['Query type']})",
                   "Query type": line["Query type"], "Source": "this run", "Items": line["Items"]}
            row.update({c: line[c] for c in metric_columns})
            rows.append(row)
    table = pd.DataFrame(
        rows, columns=["Dataset", "System", "Query type", "Source", "Items", *metric_columns]
    )
    return table.astype({"Items": "Int64"})


def markdown_table(df: pd.DataFrame, digits: int = 2, column_digits: Optional[Mapping[str, int]] = None) -> str:
    """A GitHub-flavoured Markdown table; floats with ``digits`` decimals, missing values as "-".

    Args:
        df: the table.
        digits: decimals for float cells.
        column_digits: other decimals for some columns (default :data:`FINE_COLUMNS`).

    Returns:
        The Markdown text, ending with a newline.
    """

    places = dict(FINE_COLUMNS if column_digits is None else column_digits)

    def cell(value, column) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, (float, np.floating)):
            return f"{value:.{places.get(column, digits)}f}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    rule = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    lines = [header, rule]
    for values in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v, c) for v, c in zip(values, df.columns)) + " |")
    return "\n".join(lines) + "\n"
