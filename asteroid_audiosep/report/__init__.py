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

Layout: :mod:`.tables` (reading, aggregation, the paper's table layouts), :mod:`.figures`
(spectrograms, per-class bars), :mod:`.document` (``report.md`` and the files it links).
"""
from .document import write_report
from .figures import SpectrogramExample, plot_class_sdri, plot_spectrograms
from .tables import (
    ENHANCEMENT_COLUMNS,
    NOISY,
    PAPER_BENCHMARKS,
    SEPARATION_BENCHMARKS,
    SEPARATION_COLUMNS,
    benchmark_table,
    enhancement_table,
    load_paper_results,
    load_results,
    markdown_table,
    paper_benchmark,
    primary_query_types,
    query_type_table,
    separation_summary,
)

__all__ = [
    "ENHANCEMENT_COLUMNS",
    "NOISY",
    "PAPER_BENCHMARKS",
    "SEPARATION_BENCHMARKS",
    "SEPARATION_COLUMNS",
    "SpectrogramExample",
    "benchmark_table",
    "enhancement_table",
    "load_paper_results",
    "load_results",
    "markdown_table",
    "paper_benchmark",
    "plot_class_sdri",
    "plot_spectrograms",
    "primary_query_types",
    "query_type_table",
    "separation_summary",
    "write_report",
]
