"""Reference-free evaluation: separate real recordings and score each output with CLAPScore.

A recording list (:mod:`asteroid_audiosep.data.recordings`) has no reference signal, so SDR cannot
be computed; each item gets instead (Xiao et al. 2024, arXiv 2407.04936):

* ``clapscore``: the CLAPScore of the separated output against the text query (how well the
  output matches the query, as judged by the CLAP encoder);
* ``input_clapscore``: the CLAPScore of the unprocessed recording (the "mixture" is the recording
  itself, at the model's rate, so it is what the model was given);
* ``clapscore_i``: ``clapscore - input_clapscore``, the improvement: how much closer to the query
  the separation moved the audio. Negative means the output matches the query worse than the
  recording did (e.g. the query's sound was not found).

Rows are appended as items finish (:class:`~asteroid_audiosep.evaluation.ResultCSV`), so an
interrupted run resumes. A recording that is missing or unreadable fails its item only: the
failure (item and file) is returned and logged, nothing is written for it, and a later run tries
it again.
"""
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import torch

from .apply import _autocast
from .errors import AudioSepError
from .evaluation import ResultCSV, _progress, clap_columns
from .fileio import write_text_atomic
from .precision import resolve_precision

PathLike = Union[str, os.PathLike]

log = logging.getLogger(__name__)

#: Per-item columns of a reference-free result CSV.
REFERENCE_FREE_COLUMNS = ("id", "dataset", "query_type", "query", "file",
                          "clapscore", "clapscore_i", "input_clapscore")
#: The metric names ``evaluation.metrics`` may hold (the SDR family is always computed).
EVALUATION_METRICS = ("sdr", "clapscore")


@dataclass
class ItemFailure:
    """An item that could not be evaluated: its id, the file at fault and the reason."""

    id: str
    file: str
    reason: str


@dataclass
class RecordingResults:
    """What :func:`evaluate_recordings` did: the per-item CSV and the items that failed."""

    csv: Path
    failures: List[ItemFailure] = field(default_factory=list)


def check_metrics(metrics: Sequence[str]) -> List[str]:
    """``evaluation.metrics`` checked against :data:`EVALUATION_METRICS`.

    Raises:
        AudioSepError: an unknown metric name.
    """
    metrics = [str(m).lower() for m in (metrics or ())]
    unknown = [m for m in metrics if m not in EVALUATION_METRICS]
    if unknown:
        raise AudioSepError(f"unknown evaluation metric(s) {unknown}; choose from {list(EVALUATION_METRICS)}")
    return metrics


def write_failures(path: PathLike, failures: Sequence[ItemFailure]) -> Optional[Path]:
    """Record the failed items (``id<TAB>file<TAB>reason`` lines) in ``path``; remove it when
    none failed. Returns the path, or None."""
    path = Path(path)
    if not failures:
        if path.is_file():
            path.unlink()
        return None
    lines = ["id\tfile\treason"] + [f"{f.id}\t{f.file}\t{f.reason}".replace("\n", " ") for f in failures]
    return write_text_atomic(path, "\n".join(lines) + "\n")


def read_failures(path: PathLike) -> List[ItemFailure]:
    """The failures recorded by :func:`write_failures` (none when the file is absent)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = [line.split("\t", 2) for line in path.read_text(encoding="utf-8").splitlines()[1:] if line]
    return [ItemFailure(*row) for row in rows if len(row) == 3]


@torch.no_grad()
def evaluate_recordings(
    model,
    dataset,
    out_csv: PathLike,
    dataset_name: str,
    query_type: str,
    scorer,
    embed: Optional[Callable[[List[str]], torch.Tensor]] = None,
    progress: bool = True,
    precision: str = "fp32",
) -> RecordingResults:
    """Separate every recording of a list with its query and score the outputs (resumable).

    Args:
        model: an :class:`~asteroid_audiosep.models.AudioSep` (eval mode is set here).
        dataset: a :class:`~asteroid_audiosep.data.recordings.RecordingSet` read at the model's
            rate.
        out_csv: the per-item CSV (:data:`REFERENCE_FREE_COLUMNS`); rows already in it are not
            recomputed.
        dataset_name: value of the ``dataset`` column.
        query_type: value of the ``query_type`` column.
        scorer: the CLAPScore scorer (:class:`~asteroid_audiosep.metrics.clap_score.ClapScorer`).
        embed: texts -> (N, D) query embeddings; default: the model's query encoder.
        progress: show a progress bar.
        precision: the network's precision (fp32 by default).

    Returns:
        The CSV and the items that failed (a missing or unreadable recording), in list order.
    """
    if getattr(dataset, "sample_rate", None) not in (None, model.sample_rate):
        raise AudioSepError(f"the recordings are read at {dataset.sample_rate} Hz but the model runs at "
                            f"{model.sample_rate} Hz")
    results = ResultCSV(out_csv, REFERENCE_FREE_COLUMNS)
    todo = [i for i, item in enumerate(dataset.items) if not results.done(item.id)]
    embed = embed or model.embed_queries
    model.eval()
    device = next(model.parameters()).device
    autocast = resolve_precision(precision, device)
    rate = int(model.sample_rate)
    failures: List[ItemFailure] = []
    for i in _progress(todo, len(todo), f"eval {dataset_name}/{query_type} (reference-free)", progress):
        entry = dataset.items[i]
        try:
            item = dataset[i]
        except AudioSepError as err:
            log.warning("%s: item %s failed: %s", dataset_name, entry.id, err)
            failures.append(ItemFailure(entry.id, str(entry.audio), str(err)))
            continue
        mix = item["mixture"].to(device)
        cond = embed([item["query"]]).to(device)
        with _autocast(device, autocast):
            est = model(mix[None, None], cond)[:, 0]
        scores = clap_columns(scorer, est.float().cpu(), mix[None].float().cpu(), rate, [item["query"]])[0]
        results.append({"id": item["id"], "dataset": dataset_name, "query_type": query_type,
                        "query": item["query"], "file": item["file"], **scores})
    return RecordingResults(Path(out_csv), failures)
