"""The reference-free table: CLAPScore and CLAPScore-i of sets without references (recordings)."""
from typing import Dict, List, Mapping, Optional, Tuple

import pandas as pd

#: Columns every reference-free result row must have.
REFERENCE_FREE_COLUMNS = ("id", "dataset", "query_type", "clapscore", "clapscore_i", "input_clapscore")
#: Display names of the CLAPScore columns (in the reference-free table and beside SDR).
CLAP_HEADERS = {"input_clapscore": "Recording CLAPScore", "clapscore": "CLAPScore", "clapscore_i": "CLAPScore-i"}

#: The sentences under the reference-free table (one Markdown paragraph, short lines).
REFERENCE_FREE_NOTE = "\n".join([
    "Sets without references (real recordings; the mixture is the recording itself): no SDR can be computed.",
    "CLAPScore is the cosine similarity of the CLAP audio embedding of the separated output and the CLAP",
    "text embedding of the query (Xiao et al. 2024; -1 to 1, higher: the output sounds more like the query).",
    "Recording CLAPScore is that of the unprocessed recording, and CLAPScore-i the output's minus the",
    "recording's: how much the separation moved the audio towards the query (negative: the output matches",
    "the query worse than the recording did). Means over items; Silent: outputs with nothing in them (no",
    "embedding), left out of the means; Failed: items whose recording was missing or unreadable (not",
    "scored; listed in eval/<set>/<query type>.failed.tsv).",
])
#: The sentence added under the summary table when sets with references carry CLAPScore columns.
WITH_REFERENCE_NOTE = "\n".join([
    "CLAPScore / CLAPScore-i beside SDR: the reference-free scores of the same outputs (cosine of the",
    "output's CLAP audio embedding with the query's text embedding, and its gain over the mixture's),",
    "what a real recording without a reference would be judged by.",
])


def reference_free_table(results: pd.DataFrame,
                         failed: Optional[Mapping[Tuple[str, str], int]] = None) -> pd.DataFrame:
    """One row per reference-free set and query type: item counts and mean CLAPScores.

    Args:
        results: per-item reference-free results (:data:`REFERENCE_FREE_COLUMNS`).
        failed: ``(dataset, query type)`` -> number of items that failed (missing or unreadable
            recordings), shown in the ``Failed`` column.

    Returns:
        Columns ``Dataset, Query type, Items, Silent, Failed, Recording CLAPScore,
        CLAPScore, CLAPScore-i``: ``Items`` counts the scored items, ``Silent`` those whose
        output was silent (NaN scores), left out of all three means.
    """
    failed = dict(failed or {})
    rows: List[Dict[str, object]] = []
    for (dataset, query_type), group in results.groupby(["dataset", "query_type"], sort=False):
        scores = group[list(CLAP_HEADERS)].astype(float)
        row = {"Dataset": dataset, "Query type": query_type, "Items": len(group),
               "Silent": int(scores["clapscore"].isna().sum()),
               "Failed": int(failed.get((str(dataset), str(query_type)), 0))}
        scored = scores[scores["clapscore"].notna()]  # the same items in every mean: they subtract
        row.update({header: scored[column].mean() for column, header in CLAP_HEADERS.items()})
        rows.append(row)
    for (dataset, query_type), count in failed.items():  # sets whose every item failed
        if not any(r["Dataset"] == dataset and r["Query type"] == query_type for r in rows):
            rows.append({"Dataset": dataset, "Query type": query_type, "Items": 0, "Silent": 0,
                         "Failed": int(count)})
    table = pd.DataFrame(rows, columns=["Dataset", "Query type", "Items", "Silent", "Failed",
                                        *CLAP_HEADERS.values()])
    return table.astype({"Items": "Int64", "Silent": "Int64", "Failed": "Int64"})
