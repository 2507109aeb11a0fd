"""Scoring the outputs of a separation with CLAPScore (``separate --score``): scores.csv, "not found".

An :class:`OutputJudge` is called by the writer of each input (:meth:`~asteroid_audiosep.outputs.OutputWriter.commit`)
once its outputs are complete but before they are renamed into place: it embeds the input and
the outputs (one batched call of a :class:`~asteroid_audiosep.metrics.clap_score.ClapScorer`),
records a row per output (CLAPScore, CLAPScore-i) and, with ``min_score``, tells the writer to
discard the temporary file of a target whose CLAPScore-i is below it: that output is reported
"not found" and never written, so no input and no earlier output is touched. After the run,
:func:`write_scores` merges the rows into ``OUTDIR/scores.csv`` (atomically) and
:func:`scores_table` gives the one-line-per-output log.
"""
import csv
import io
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .errors import AudioSepError
from .queries import Query, TextQuery

__all__ = ["SCORES_CSV", "COLUMNS", "OutputScore", "OutputJudge", "check_scoring", "finish_scoring", "make_judge",
           "own_scorer", "rank_labels", "score_heading", "waveform_scores",
           "scores_table", "write_scores"]

log = logging.getLogger("asteroid_audiosep")

SCORES_CSV = "scores.csv"
COLUMNS = ["input", "query", "output", "kind", "clapscore", "clapscore_i", "duration", "status"]
FOUND, NOT_FOUND = "written", "not found"


@dataclass
class OutputScore:
    """The score of one output: ``status`` is ``"written"`` or ``"not found"`` (CLAPScore-i
    below ``--min-score``: not written)."""

    input: str
    query: str
    output: str
    kind: str
    clapscore: float
    clapscore_i: float
    duration: float
    status: str = FOUND


class OutputJudge:
    """Scores each input's outputs before they are renamed into place, and says which to keep.

    Args:
        scorer: the :class:`~asteroid_audiosep.metrics.clap_score.ClapScorer`.
        queries: the separation's queries (an output's ``spec.query`` indexes them).
        min_score: targets whose CLAPScore-i is below it (or NaN: silent) are not written.
        texts: ``{label: text}`` for queries scored against a text that is not their own (the
            labels of ``--auto`` turned into embeddings of a table).
    """

    def __init__(self, scorer, queries: Sequence[Query], min_score: Optional[float] = None,
                 texts: Optional[Dict[str, str]] = None):
        self.scorer = scorer
        self.queries = list(queries)
        self.min_score = None if min_score is None else float(min_score)
        self.targets = [self._target(q, (texts or {}).get(q.label)) for q in self.queries]

    def _target(self, query: Query, text: Optional[str]) -> Optional[torch.Tensor]:
        """The unit vector an output of ``query`` is compared with: the text embedding of its
        text (or of ``text``), else the scoring encoder's embedding of the query itself."""
        if text is None and isinstance(query, TextQuery):
            text = query.text_value
        if text is not None:
            return self.scorer.text_embeddings([text])[0]
        if query.needs_input:
            log.warning("query %r takes its example from each input: its outputs are not scored", query.label)
            return None
        from .queries import embed_queries

        try:
            return F.normalize(embed_queries(self.scorer.encoder, [query])[0].float(), dim=-1)
        except AudioSepError as err:
            log.warning("query %r cannot be scored with the scoring encoder (%s)", query.label, err)
            return None

    def scores(self, items: Sequence, query_indices: Sequence[int]) -> List[Tuple[float, float]]:
        """``(CLAPScore, CLAPScore-i)`` of each output ``items[1:]`` (files or ``(tensor, rate)``)
        for the query of the same position in ``query_indices``, ``items[0]`` being their input;
        NaNs for a query that cannot be scored.

        Raises:
            AudioSepError: an item cannot be read or embedded.
        """
        emb = self.scorer.audio_embeddings(list(items)).double()
        out = []
        for k, row in zip(query_indices, emb[1:]):
            target = self.targets[k]
            if target is None:
                out.append((math.nan, math.nan))
            else:
                score = float(row @ target.double())
                out.append((score, score - float(emb[0] @ target.double())))
        return out

    def judge(self, result, specs, temporaries: Sequence[str]) -> List[bool]:
        """Score ``result.input``'s complete outputs (``temporaries``, not yet renamed); record
        the rows in ``result.scores``; return which outputs to keep."""
        try:
            pairs = self.scores([result.input, *temporaries], [spec.query for spec in specs])
        except AudioSepError as err:  # scoring never costs an output
            message = f"{result.input}: its outputs could not be scored ({err})"
            result.warnings.append(message)
            log.warning(message)
            return [True] * len(specs)
        keep = []
        for spec, (score, improvement) in zip(specs, pairs):
            found = spec.kind != "target" or self.min_score is None or improvement >= self.min_score
            keep.append(found)
            result.scores.append(OutputScore(str(result.input), self.queries[spec.query].label, str(spec.path),
                                             spec.kind, score, improvement, result.duration,
                                             FOUND if found else NOT_FOUND))
            if not found:
                log.info("%s: %r not found (CLAPScore-i %.3f < %g): %s not written", result.input,
                         self.queries[spec.query].label, improvement, self.min_score, spec.path)
        return keep

    def bind(self, result):
        """``keep(specs, temporaries)`` for one input's :class:`~asteroid_audiosep.outputs.OutputWriter`."""
        return lambda specs, temporaries: self.judge(result, specs, temporaries)


def make_judge(scorer, queries: Sequence[Query], min_score: Optional[float] = None,
               texts: Optional[Dict[str, str]] = None, variants=None):
    """The judge of a separation's outputs: None without a scorer; a
    :class:`~asteroid_audiosep.query_variants.VariantJudge` for ``variants`` (a
    :class:`~asteroid_audiosep.query_variants.VariantPlan`); else an :class:`OutputJudge`."""
    if scorer is None:
        return None
    return variants.judge(min_score) if variants is not None else OutputJudge(scorer, queries, min_score, texts)


def own_scorer(model):
    """A scorer with the model's own query encoder when it has an audio tower, else None (the
    demo page shows scores only then, building nothing)."""
    if not getattr(model.query_encoder, "has_audio_tower", False):
        return None
    from .metrics.clap_score import ClapScorer

    return ClapScorer(model.query_encoder)


def score_heading(query: str, score: Optional[tuple]) -> str:
    """``query`` and its output's ``(CLAPScore, CLAPScore-i)``, as the demo page shows them."""
    return query if score is None else f"{query}  (CLAPScore {score[0]:.3f}, CLAPScore-i {score[1]:+.3f})"


def waveform_scores(scorer, queries: Sequence[Query], targets: torch.Tensor, mixture: torch.Tensor,
                    sample_rate: int) -> List[Optional[tuple]]:
    """``(CLAPScore, CLAPScore-i)`` of each in-memory output ``targets[k]`` (channels, time) for
    ``queries[k]``, the input being ``mixture`` (the demo page's scores); Nones without a scorer."""
    if scorer is None:
        return [None] * len(queries)
    items = [(mixture, sample_rate)] + [(t, sample_rate) for t in targets]
    return OutputJudge(scorer, queries).scores(items, range(len(queries)))


def rank_labels(scorer, path, labels: Sequence[str], k: int, cache_dir=None) -> List[Query]:
    """The ``k`` labels with the highest CLAPScore for a recording, as text queries named after
    them (``separate --auto K --score``: ranked with the score that ``scores.csv`` reports)."""
    from .tagging import label_embeddings

    if k < 1:
        raise AudioSepError(f"--auto must be >= 1, got {k}")
    labels = list(labels)
    emb = scorer.audio_embeddings([path])[0]
    if torch.isnan(emb).any():
        raise AudioSepError("the recording is silent: nothing to tag")
    scores = label_embeddings(scorer.encoder, labels, cache_dir) @ emb
    order = scores.topk(min(k, len(labels))).indices
    return [Query.text(labels[int(i)], name=labels[int(i)]) for i in order]


def _relative(path: str, outdir: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(outdir.resolve()))
    except ValueError:
        return str(path)


def scores_table(rows: Sequence[OutputScore]) -> str:
    """One line per output: CLAPScore, CLAPScore-i, status, output, query."""
    lines = [f"{'CLAPScore':>9} {'CLAPScore-i':>11}  {'status':<9}  output  (query)"]
    for r in rows:
        lines.append(f"{r.clapscore:9.3f} {r.clapscore_i:11.3f}  {r.status:<9}  {r.output}  ({r.query})")
    return "\n".join(lines)


def _format(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def write_scores(outdir, rows: Sequence[OutputScore]) -> Path:
    """Merge ``rows`` into ``OUTDIR/scores.csv`` atomically: rows of an earlier run for other
    outputs are kept, those of the same (input, query, output) replaced. Output paths are
    written relative to ``outdir``."""
    from .fileio import write_text_atomic

    outdir = Path(outdir)
    path = outdir / SCORES_CSV
    new = [{k: _format(v) for k, v in asdict(r).items()} for r in rows]
    for row in new:
        row["output"] = _relative(row["output"], outdir)
    keys = {(r["input"], r["query"], r["output"]) for r in new}
    old: List[dict] = []
    if path.is_file():
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                old = [r for r in csv.DictReader(handle)
                       if (r.get("input"), r.get("query"), r.get("output")) not in keys]
        except (OSError, csv.Error, UnicodeDecodeError) as err:
            raise AudioSepError(f"cannot read the earlier {path} ({err}): move it away") from err
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(old + new)
    os.makedirs(outdir, exist_ok=True)
    return write_text_atomic(path, buf.getvalue())


def check_scoring(scorer, outdir, min_score: Optional[float], auto: Optional[int]) -> None:
    """Fail before any work: scoring without an output folder, ``min_score`` without scoring
    (nor ``auto``, where it is the tagging threshold)."""
    if scorer is not None and outdir is None:
        raise AudioSepError("scoring writes OUTDIR/scores.csv: give an output folder (-o)")
    if scorer is None and min_score is not None and auto is None:
        raise AudioSepError("--min-score needs --score (it is a CLAPScore-i threshold) or --auto")


def finish_scoring(scorer, outdir, results) -> Optional[Path]:
    """After a scored run (``scorer`` not None): log the table of every output scored and write
    ``OUTDIR/scores.csv``."""
    if scorer is None:
        return None
    rows = [row for result in results for row in result.scores]
    if not rows:
        return None
    log.info("scores (CLAPScore-i: the gain over the input):\n%s", scores_table(rows))
    path = write_scores(outdir, rows)
    log.info("wrote %s", path)
    return path
