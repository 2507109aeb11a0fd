"""The report document: tables (CSV + Markdown), figures and ``report.md`` linking them, every
file written atomically."""
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import pandas as pd

from ..errors import AudioSepError
from ..fileio import write_text_atomic
from .figures import SpectrogramExample, plot_class_sdri, plot_spectrograms
from .reference_free import (
    REFERENCE_FREE_COLUMNS,
    REFERENCE_FREE_NOTE,
    WITH_REFERENCE_NOTE,
    reference_free_table,
)
from .tables import (
    ENHANCEMENT_COLUMNS,
    SEPARATION_BENCHMARKS,
    SEPARATION_COLUMNS,
    PathLike,
    TableSource,
    benchmark_table,
    canonical_dataset,
    enhancement_table,
    load_paper_results,
    load_results,
    markdown_table,
    paper_benchmark,
    primary_query_types,
    query_type_table,
    separation_summary,
)

# --------------------------------------------------------------------------- the report


def _write_text(path: Path, text: str) -> Path:
    return write_text_atomic(path, text)


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
    supervision: Optional[Tuple[str, float]] = None,
    model_name: str = "",
    seconds_per_step: Optional[float] = None,
    other_runs: Sequence[Tuple[str, str, Optional[float], TableSource]] = (),
    reference_free_results: Optional[TableSource] = None,
    failed: Optional[Mapping[Tuple[str, str], int]] = None,
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
        supervision: ``(encoder, text ratio)`` of this run: adds Table V (the paper's
            multimodal-supervision ablation with this run's rows, ``tables/table5_supervision``).
        model_name: this run's model (e.g. ``AudioSep``, ``AudioSepDP``), the mini table's
            ``Model`` column.
        seconds_per_step: this run's measured training time per step (the mini table's
            ``Train s/step`` column), when known.
        other_runs: ``(system name, model name, seconds per step, separation results)`` of other
            runs whose mini-corpus rows are shown beside this run's (e.g. AudioSep and
            AudioSep-DP trained on the same data).
        reference_free_results: per-item results of sets without references (CLAPScore,
            CLAPScore-i: :mod:`asteroid_audiosep.reference_free`), shown in their own table
            (``tables/reference_free``).
        failed: ``(dataset, query type)`` -> items of a reference-free set that failed (missing or
            unreadable recordings), shown in that table.

    Returns:
        The path of ``report.md``.

    Raises:
        AudioSepError: nothing to report, or an input is missing or malformed.
    """
    if separation_results is None and enhancement_results is None and reference_free_results is None:
        raise AudioSepError("nothing to report: give separation, reference-free and/or enhancement results")
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
        with_clap = "clapscore" in results.columns
        add_table(
            "summary", "All evaluation sets of this run", separation_summary(results),
            "Aggregated as the released evaluation does: mean over mixtures; MUSIC: mean of "
            "per-instrument means; AudioSet: mean over classes of per-class medians (NaN-aware). "
            "SDR is the released plain SNR (not BSS-eval); SI-SDR is absolute, not an improvement."
            + ("\n" + WITH_REFERENCE_NOTE if with_clap else ""),
        )
    if reference_free_results is not None or failed:
        free = (load_results(reference_free_results, REFERENCE_FREE_COLUMNS, "reference-free results")
                if reference_free_results is not None else pd.DataFrame(columns=list(REFERENCE_FREE_COLUMNS)))
        table = reference_free_table(free, failed)
        add_table("reference_free", "Sets without references: CLAPScore", table, REFERENCE_FREE_NOTE)
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
    if results is not None:
        from .dcase import dcase_table

        dcase = dcase_table(results, system_name)
        if len(dcase):
            add_table("dcase2024_validation", "DCASE 2024 Task 9 synthetic validation (dB)", dcase,
                      "Mixtures made and scored as the released dcase_evaluator.py does (noise at the row's "
                      "SNR, 0.9/max declipping, whole 10 s clips at 16 kHz, plain means). The baseline row is "
                      "the challenge's published figure on all 3,000 validation mixtures.")
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
            runs = [(system_name, model_name, seconds_per_step, results)]
            runs += [(n, m, t, load_results(r, SEPARATION_COLUMNS, f"results of {n}")) for n, m, t, r in other_runs]
            tables = []
            for k, (name, model, step_time, run_results) in enumerate(runs):
                table = query_type_table(run_results[run_results["dataset"].isin(minis)], None, name,
                                         datasets=minis)
                table.insert(1, "Model", model)
                if k:
                    table["Source"] = "compared run"
                table["Train s/step"] = step_time
                tables.append(table)
            add_table(
                "mini_query_types", "Mini corpus: query types (Table VII layout)",
                pd.concat(tables, ignore_index=True),
                "The built-in procedural corpus: not comparable with the paper's numbers. "
                "Paraphrases are held-out captions never seen in training. Train s/step: wall time "
                "per training step of each run (train_report.json; machine load included).",
            )
    if results is not None and supervision is not None:
        from .supervision import supervision_table

        add_table("table5_supervision", "Table V: multimodal supervision (text ratio TR)",
                  supervision_table(results, paper, supervision[0], supervision[1], system_name),
                  "TR is the fraction of training items queried by text; the others were queried by "
                  "the clip's video frames (CLIP) or the target's audio (CLAP). The paper's rows are "
                  "queried by text; this run's rows by each evaluated query type.")
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
