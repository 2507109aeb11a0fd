"""Table V: the multimodal-supervision ablation (text ratio TR, CLIP vs CLAP), the paper's rows
and this run's beside them."""
import re
from typing import Dict, List, Optional

import pandas as pd

from .tables import paper_benchmark, separation_summary

_SYSTEM = re.compile(r"AudioSep-(?P<encoder>\w+)-TR(?P<tr>[\d.]+)$")


def supervision_table(
    results: pd.DataFrame,
    paper: Optional[pd.DataFrame],
    encoder: str,
    text_ratio: float,
    system_name: str = "This run",
) -> pd.DataFrame:
    """Table V layout: one row per system (the paper's eight: CLIP and CLAP at TR 0, 0.5, 0.75,
    1.0) and one per query type of this run, labelled by its encoder and text ratio.

    Args:
        results: this run's per-item separation results.
        paper: :func:`~.tables.load_paper_results` output (its table ``V`` rows), or None.
        encoder: this run's query encoder (``clip``, ``clap``, ...).
        text_ratio: this run's ``training.use_text_ratio``.
        system_name: this run's label.

    Returns:
        Columns ``System, Encoder, TR, Source, Query type`` then ``<benchmark> SI-SDR`` and
        ``<benchmark> SDRi`` per benchmark (the paper's Voicebank-DEMAND PESQ and SSNR too);
        a system that did not evaluate a benchmark has an empty cell.
    """
    rows: List[Dict[str, object]] = []
    if paper is not None:
        subset = paper[paper["table"] == "V"]
        for system, group in subset.groupby("system", sort=False):
            match = _SYSTEM.match(system)
            row: Dict[str, object] = {"System": system, "Source": "paper", "Query type": "text",
                                      "Encoder": match.group("encoder") if match else "",
                                      "TR": float(match.group("tr")) if match else float("nan")}
            row.update({f"{b} {m}": v for b, m, v in group[["benchmark", "metric", "value"]].values})
            rows.append(row)
    summary = separation_summary(results)
    for query_type, group in summary.groupby("Query type", sort=False):
        row = {"System": f"{system_name} ({query_type})", "Encoder": encoder.upper(), "TR": float(text_ratio),
               "Source": "this run", "Query type": query_type}
        for _, line in group.iterrows():
            bench = paper_benchmark(line["Dataset"]) or line["Dataset"]
            row[f"{bench} SI-SDR"], row[f"{bench} SDRi"] = line["SI-SDR"], line["SDRi"]
        rows.append(row)
    table = pd.DataFrame(rows)
    lead = ["System", "Encoder", "TR", "Source", "Query type"]
    return table[lead + [c for c in table.columns if c not in lead]]
