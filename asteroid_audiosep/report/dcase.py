"""The DCASE 2024 Task 9 validation table: this run beside the challenge baseline's published row."""
from typing import List

import pandas as pd

from ..data.dcase import BASELINE_RESULTS
from ..metrics import canonical_dataset


def is_dcase_dataset(name: str) -> bool:
    """Whether an evaluation set's name marks the DCASE 2024 Task 9 validation (``dcase...``)."""
    return canonical_dataset(name).startswith("dcase")


def dcase_table(results: pd.DataFrame, system_name: str = "This run") -> pd.DataFrame:
    """SDR, SDRi and SI-SDR (plain means over rows, dB) of every DCASE set in ``results``, after
    the published DCASE 2024 baseline row.

    Args:
        results: per-item separation results (columns ``dataset, query_type, sdr, sdri, si_sdr``).
        system_name: this run's label.

    Returns:
        Columns ``Dataset, System, Source, Items, SDR, SDRi, SI-SDR``.
    """
    rows: List[dict] = []
    for dataset in dict.fromkeys(results["dataset"]):
        if not is_dcase_dataset(str(dataset)):
            continue
        rows.append({"Dataset": dataset, "System": "DCASE 2024 Task 9 baseline", "Source": "published",
                     "Items": 3000, **BASELINE_RESULTS})
        subset = results[results["dataset"] == dataset]
        for query_type, group in subset.groupby("query_type", sort=False):
            rows.append({"Dataset": dataset, "System": f"{system_name} ({query_type})", "Source": "this run",
                         "Items": len(group), "SDR": group["sdr"].mean(skipna=False),
                         "SDRi": group["sdri"].mean(skipna=False), "SI-SDR": group["si_sdr"].mean(skipna=False)})
    table = pd.DataFrame(rows, columns=["Dataset", "System", "Source", "Items", "SDR", "SDRi", "SI-SDR"])
    return table.astype({"Items": "Int64"})
