"""The evaluation report: this run's numbers in the layout of the paper's Tables III, IV and VII.

:func:`write_report` turns per-item result tables into Markdown and CSV tables, PNG figures
(mixture / target / estimate spectrograms as the paper's Fig. 2, per-class SDRi bars) and a
``report.md`` linking them. The paper's numbers (``paper_results.csv``: columns ``table,
system, benchmark, metric, value``) are shown beside this run's wherever the benchmark is the
same one; other evaluation sets (the built-in ``mini`` corpus, a mini noisy-speech set) get
their own tables.

Per-item inputs (one row per item; the evaluation and enhancement steps write them):

* separation: ``id, dataset, query_type, sdr, sdri, si_sdr`` and optionally ``si_sdri`` and
  ``class`` (AudioSet class / MUSIC instrument / any class, used for aggregation and the bar
  chart). Aggregated per dataset with the released rules
  (:func:`asteroid_audiosep.metrics.aggregate`).
* enhancement: ``id, system, pesq, csig, cbak, covl, ssnr, stoi`` and ``dataset`` (or pass
  ``enhancement_dataset``); ``system`` is ``"Noisy"`` for the unprocessed input and the
  model's name otherwise. Averaged over items.

Figures are drawn on matplotlib's Agg canvas without touching pyplot's global backend. Every
file is written atomically (temporary file, then rename).
"""
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch

from .errors import AudioSepError
from .metrics.aggregation import (
    MEAN_OF_CLASS_MEDIANS,
    aggregate_results,
    aggregation_rule,
    canonical_dataset,
)
from .metrics.separation import sdri

PathLike = Union[str, os.PathLike]
TableSource = Union[pd.DataFrame, PathLike, Sequence[PathLike]]
AudioSource = Union[np.ndarray, torch.Tensor, PathLike]

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
QUERY_TYPE_ORDER = ("label", "labels", "caption", "paraphrase")
#: The paper's name for the unprocessed input of the enhancement table.
NOISY = "Noisy"

_SEPARATION_HEADERS = {"sdr": "SDR", "sdri": "SDRi", "si_sdr": "SI-SDR", "si_sdri": "SI-SDRi"}
_ENHANCEMENT_HEADERS = {
    "pesq": "PESQ", "csig": "CSIG", "cbak": "CBAK", "covl": "COVL", "ssnr": "SSNR", "stoi": "STOI",
}
_PAPER_COLUMNS = ("table", "system", "benchmark", "metric", "value")
_RELEASED_README = "README"


@dataclass
class SpectrogramExample:
    """One separated item to draw as mixture / target / estimate spectrograms.

    Attributes:
        dataset: evaluation set name.
        item_id: the item's ``id``.
        mixture: waveform (array or tensor, mono or ``(1, time)``) or audio file path.
        target: the same for the target source.
        estimate: the same for the separated estimate.
        sample_rate: rate of the arrays (required when any of them is not a path).
        query: the text query, shown in the title.
    """

    dataset: str
    item_id: str
    mixture: AudioSource
    target: AudioSource
    estimate: AudioSource
    sample_rate: Optional[int] = None
    query: str = ""


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
        SI-SDR, SI-SDRi``; datasets in order of appearance, query types in
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
    metric_columns = ["SI-SDR", "SDRi"] + [c for c in ("SDR", "SI-SDRi") if c in summary.columns]
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


def markdown_table(df: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub-flavoured Markdown table; floats with ``digits`` decimals, missing values as "-".

    Args:
        df: the table.
        digits: decimals for float cells.

    Returns:
        The Markdown text, ending with a newline.
    """

    def cell(value) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, (float, np.floating)):
            return f"{value:.{digits}f}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    rule = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    lines = [header, rule]
    for values in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in values) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- figures


def _mono(source: AudioSource, sample_rate: Optional[int], what: str):
    if isinstance(source, (str, os.PathLike)):
        from .audio import load_audio

        wav, rate = load_audio(source, mono=True)
        return wav[0].numpy().astype(np.float64), rate
    if sample_rate is None:
        raise AudioSepError(f"the {what} is an array: give the example's sample_rate")
    if isinstance(source, torch.Tensor):
        source = source.detach().cpu().to(torch.float64).numpy()
    x = np.asarray(source, dtype=np.float64)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1 or x.size == 0:
        raise AudioSepError(f"the {what} must be mono, (time,) or (1, time); got {x.shape}")
    return x, int(sample_rate)


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def plot_spectrograms(example: SpectrogramExample, path: PathLike) -> Path:
    """Mixture, target and estimate log-magnitude spectrograms side by side (paper's Fig. 2).

    The three panels share one colour scale (dB relative to the mixture's peak, 80 dB range);
    the title gives the dataset, item, query and the item's SDRi.

    Args:
        example: what to draw.
        path: the PNG to write.

    Returns:
        ``path``.

    Raises:
        AudioSepError: unreadable audio, different rates or lengths, missing sample rate.
    """
    from scipy.signal import stft

    signals = []
    for what in ("mixture", "target", "estimate"):
        signals.append(_mono(getattr(example, what), example.sample_rate, what))
    rates = {rate for _, rate in signals}
    if len(rates) != 1:
        raise AudioSepError(f"mixture, target and estimate have different rates {sorted(rates)}")
    rate = rates.pop()
    lengths = {x.size for x, _ in signals}
    if len(lengths) != 1:
        raise AudioSepError(
            f"mixture, target and estimate of {example.item_id} have different lengths "
            f"{sorted(lengths)}"
        )
    mixture, target, estimate = (x for x, _ in signals)
    n_fft = 1 << max(round(0.064 * rate) - 1, 1).bit_length()  # about 64 ms
    spectra = []
    for x in (mixture, target, estimate):
        freqs, times, z = stft(x, fs=rate, nperseg=min(n_fft, x.size), noverlap=None)
        spectra.append(20 * np.log10(np.abs(z) + 1e-10))
    top = spectra[0].max()
    fig = _new_figure(12.0, 3.6)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, spectrum, title in zip(axes, spectra, ("Mixture", "Target", "Estimate")):
        image = ax.pcolormesh(times, freqs / 1000.0, spectrum, vmin=top - 80.0, vmax=top,
                              cmap="magma", shading="auto", rasterized=True)
        ax.set_title(title)
        ax.set_xlabel("Time (s)")
    axes[0].set_ylabel("Frequency (kHz)")
    fig.colorbar(image, ax=list(axes), label="dB")
    improvement = float(sdri(target, estimate, mixture))
    query = f' - "{example.query}"' if example.query else ""
    fig.suptitle(f"{example.dataset} / {example.item_id}{query} - SDRi {improvement:.2f} dB")
    return _save_png(fig, Path(path))


def plot_class_sdri(
    results: pd.DataFrame,
    dataset: str,
    path: PathLike,
    metric: str = "sdri",
    max_classes: int = 40,
) -> Path:
    """Horizontal bars of the per-class SDRi of one dataset, one colour per query type.

    The per-class statistic is the one the dataset is aggregated with (median for AudioSet,
    mean otherwise). With more than ``max_classes`` classes, the best and worst halves are
    drawn.

    Args:
        results: per-item separation results with a ``class`` column.
        dataset: which dataset to draw.
        path: the PNG to write.
        metric: the score column to draw.
        max_classes: most classes drawn.

    Returns:
        ``path``.

    Raises:
        AudioSepError: no rows, no class labels or no such metric for this dataset.
    """
    rows = results[results["dataset"] == dataset]
    if len(rows) == 0 or "class" not in rows.columns or rows["class"].isna().all():
        raise AudioSepError(f"no per-class results for {dataset}: its rows need a 'class' column")
    if metric not in rows.columns:
        raise AudioSepError(f"no '{metric}' column in the results")
    rows = rows[rows["class"].notna()]
    median = aggregation_rule(dataset) == MEAN_OF_CLASS_MEDIANS
    grouped = rows.groupby(["class", "query_type"])[metric]
    per_class = (grouped.median() if median else grouped.mean()).unstack("query_type")
    per_class = per_class[sorted(per_class.columns, key=_query_type_key)]
    per_class = per_class.sort_values(per_class.columns[0], ascending=True)
    title = f"{dataset}: per-class {_SEPARATION_HEADERS.get(metric, metric)}"
    title += " (median per class)" if median else " (mean per class)"
    if len(per_class) > max_classes:
        half = max_classes // 2
        per_class = pd.concat([per_class.iloc[:half], per_class.iloc[-half:]])
        title += f", {half} worst and {half} best classes"
    n_classes, n_types = per_class.shape
    fig = _new_figure(8.0, 1.5 + 0.28 * n_classes * max(1, n_types * 0.6))
    ax = fig.subplots()
    height = 0.8 / n_types
    positions = np.arange(n_classes)
    for k, query_type in enumerate(per_class.columns):
        ax.barh(positions + ((n_types - 1) / 2 - k) * height, per_class[query_type].to_numpy(),
                height=height, label=str(query_type))
    ax.set_yticks(positions)
    ax.set_yticklabels([str(c) for c in per_class.index])
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"{_SEPARATION_HEADERS.get(metric, metric)} (dB)")
    ax.set_title(title)
    ax.legend(title="query type", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save_png(fig, Path(path))


# --------------------------------------------------------------------------- the report


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _write_table(out_dir: Path, name: str, table: pd.DataFrame) -> Dict[str, str]:
    csv_path = _write_text(out_dir / "tables" / f"{name}.csv", table.to_csv(index=False))
    md_path = _write_text(out_dir / "tables" / f"{name}.md", markdown_table(table))
    return {"csv": csv_path.relative_to(out_dir).as_posix(),
            "md": md_path.relative_to(out_dir).as_posix()}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "item"


def write_report(
    out_dir: PathLike,
    separation_results: Optional[TableSource] = None,
    enhancement_results: Optional[TableSource] = None,
    paper_results: Optional[Union[pd.DataFrame, PathLike]] = None,
    examples: Sequence[SpectrogramExample] = (),
    system_name: str = "This run",
    mini_datasets: Sequence[str] = ("mini",),
    enhancement_dataset: Optional[str] = None,
    query_types: Optional[Mapping[str, str]] = None,
    title: str = "AudioSep evaluation report",
    notes: Sequence[str] = (),
) -> Path:
    """Write the tables, figures and ``report.md`` of one evaluation into ``out_dir``.

    Writes ``tables/{summary,table3_benchmarks,table4_enhancement,table7_query_types,
    mini_query_types}.{md,csv}`` (those that have content), ``figures/spectrogram_*.png`` (one per
    example), ``figures/class_sdri_*.png`` (one per dataset with a ``class`` column) and
    ``report.md``, which shows the tables and links every file.

    Args:
        out_dir: the experiment's report folder (created).
        separation_results: per-item separation results (DataFrame, CSV path or paths).
        enhancement_results: per-item enhancement results (DataFrame, CSV path or paths).
        paper_results: the paper's numbers (``paper_results.csv`` or its DataFrame).
        examples: items to draw as spectrograms.
        system_name: how this run is named in the tables.
        mini_datasets: datasets reported in their own query-type table (the built-in corpus).
        enhancement_dataset: the enhancement set's name when its table has no ``dataset``
            column (e.g. ``"voicebank-demand"``, which puts the paper's Table IV beside it).
        query_types: dataset -> query type standing for it in Table III
            (see :func:`primary_query_types`).
        title: the report's first heading.
        notes: lines shown under the heading (e.g. training clips dropped for test overlap).

    Returns:
        The path of ``report.md``.

    Raises:
        AudioSepError: nothing to report, or an input is missing or malformed.
    """
    if separation_results is None and enhancement_results is None:
        raise AudioSepError("nothing to report: give separation and/or enhancement results")
    out = Path(out_dir)
    paper = load_paper_results(paper_results) if paper_results is not None else None
    results = enhancement = None
    if separation_results is not None:
        results = load_results(separation_results, SEPARATION_COLUMNS, "separation results")
    if enhancement_results is not None:
        enhancement = load_results(enhancement_results, ENHANCEMENT_COLUMNS, "enhancement results")
        if "dataset" not in enhancement.columns:
            if enhancement_dataset is None:
                raise AudioSepError(
                    "the enhancement results have no 'dataset' column: pass enhancement_dataset"
                )
            enhancement["dataset"] = enhancement_dataset
    mini = {canonical_dataset(d) for d in mini_datasets}

    lines = [f"# {title}", "", *[line for note in notes if note for line in (note, "")]]
    files: List[str] = []

    def add_table(name: str, heading: str, table: pd.DataFrame, note: str = "") -> None:
        paths = _write_table(out, name, table)
        files.extend(paths.values())
        lines.extend([f"## {heading}", ""])
        if note:
            lines.extend([note, ""])
        links = f"Files: [{paths['md']}]({paths['md']}), [{paths['csv']}]({paths['csv']})"
        lines.extend([markdown_table(table), links, ""])

    if results is not None:
        add_table(
            "summary", "All evaluation sets of this run", separation_summary(results),
            "Aggregated as the released evaluation does: mean over mixtures; MUSIC: mean of "
            "per-instrument means; AudioSet: mean over classes of per-class medians (NaN-aware). "
            "SDR is the released plain SNR (not BSS-eval); SI-SDR is absolute, not an improvement.",
        )
    table3 = benchmark_table(results, enhancement, paper, system_name, query_types)
    if len(table3):
        if results is not None:
            chosen = primary_query_types(results, query_types)
            used = [f"{paper_benchmark(d)}: {q}" for d, q in chosen.items()
                    if paper_benchmark(d) in SEPARATION_BENCHMARKS]
        else:
            used = []
        note = ("This run's query type per benchmark: " + ", ".join(used) + "."
                if used else "This run evaluated none of the paper's separation benchmarks.")
        add_table("table3_benchmarks", "Table III: separation benchmarks (SI-SDR, SDRi in dB)",
                  table3, note)
    if enhancement is not None:
        add_table("table4_enhancement", "Table IV: speech enhancement",
                  enhancement_table(enhancement, paper),
                  'PESQ wide-band (16 kHz), composite CSIG/CBAK/COVL (Hu & Loizou, 2008), '
                  'segmental SNR in dB; "Noisy" is the unprocessed input. The paper\'s rows are '
                  "shown for Voicebank-DEMAND only.")
    if results is not None:
        others = [d for d in dict.fromkeys(results["dataset"]) if canonical_dataset(d) not in mini]
        if others:
            table7 = query_type_table(results[results["dataset"].isin(others)], paper, system_name)
            if len(table7):
                add_table("table7_query_types", "Table VII: query types", table7)
        minis = [d for d in dict.fromkeys(results["dataset"]) if canonical_dataset(d) in mini]
        if minis:
            add_table(
                "mini_query_types", "Mini corpus: query types (Table VII layout)",
                query_type_table(results[results["dataset"].isin(minis)], None, system_name,
                                 datasets=minis),
                "The built-in procedural corpus: not comparable with the paper's numbers. "
                "Paraphrases are held-out captions never seen in training.",
            )
    figure_lines: List[str] = []
    if results is not None and "class" in results.columns:
        for dataset in dict.fromkeys(results["dataset"]):
            rows = results[results["dataset"] == dataset]
            if rows["class"].notna().any():
                name = f"class_sdri_{_slug(dataset)}.png"
                png = plot_class_sdri(results, dataset, out / "figures" / name)
                rel = png.relative_to(out).as_posix()
                figure_lines += [f"![{dataset} per-class SDRi]({rel})", ""]
                files.append(rel)
    for k, example in enumerate(examples):
        name = f"spectrogram_{k:02d}_{_slug(example.dataset)}_{_slug(example.item_id)}.png"
        png = plot_spectrograms(example, out / "figures" / name)
        rel = png.relative_to(out).as_posix()
        figure_lines += [f"![{example.dataset} {example.item_id}]({rel})", ""]
        files.append(rel)
    if figure_lines:
        lines += ["## Figures", ""] + figure_lines
    lines += ["## Files", ""] + [f"- [{f}]({f})" for f in files] + [""]
    return _write_text(out / "report.md", "\n".join(lines))
