"""Query ensembling: separate with several phrasings of one query, keep the best-scoring output.

A separator is deterministic, so the only way to get several candidates for one sound is to ask
in several ways. ``separate --query-variants N`` phrases each text query with the first N of
:data:`TEMPLATES` (``--query-variants FILE.yaml``: ``name: [phrasing, phrasing, ...]``), separates
with every phrasing in the same pass, and keeps, per name, the output whose CLAPScore against one
common reference is highest: the normalised mean of all the phrasings' text embeddings, so that
no phrasing is judged by its own words (a best-of-N chooser in the manner of SAM-Audio's
re-ranking). The alternative, conditioning once on that mean embedding, is
``Query.mix(phrasings)`` (:func:`mean_query`). ``benchmarks/bench_query_variants.py`` measures
both against a single caption on the mini corpus.
"""
import logging
import math
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from .errors import AudioSepError
from .outputs import OutputSpec
from .queries import Query, TextQuery, as_queries
from .scoring import FOUND, NOT_FOUND, OutputJudge, OutputScore

__all__ = ["TEMPLATES", "phrasings", "load_phrasings", "variant_groups", "common_reference", "mean_query",
           "VariantPlan", "VariantJudge", "best_of_n"]

log = logging.getLogger("asteroid_audiosep")

#: Neutral rephrasings of a sound description (the first is the query itself).
TEMPLATES = (
    "{}",
    "the sound of {}",
    "a recording of {}",
    "{} can be heard",
    "this is the sound of {}",
    "an audio clip of {}",
    "a sound recording of {}",
    "we hear {}",
)


def phrasings(text: str, n: int) -> List[str]:
    """The first ``n`` phrasings of ``text`` (:data:`TEMPLATES`; the first is ``text``)."""
    if not 1 <= int(n) <= len(TEMPLATES):
        raise AudioSepError(f"--query-variants N takes 1 to {len(TEMPLATES)} phrasings, got {n}; "
                            "give a YAML file of phrasings for more")
    text = text.strip()
    return list(dict.fromkeys(t.format(text) for t in TEMPLATES[: int(n)]))


def load_phrasings(path) -> Dict[str, List[str]]:
    """``{name: [phrasing, ...]}`` from a YAML mapping of names to lists of phrasings.

    Raises:
        AudioSepError: unreadable, not a mapping of non-empty lists of non-empty strings.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise AudioSepError(f"cannot read the phrasings file {path}: {err}") from err
    if not isinstance(data, dict) or not data:
        raise AudioSepError(f"{path}: write a mapping of names to lists of phrasings, e.g. "
                            "dog: [a dog barking, barking of a dog]")
    out = {}
    for name, items in data.items():
        items = [items] if isinstance(items, str) else items
        if not isinstance(items, list) or not items or not all(isinstance(t, str) and t.strip() for t in items):
            raise AudioSepError(f"{path}: {name!r} needs a list of non-empty phrasings")
        out[str(name)] = list(dict.fromkeys(t.strip() for t in items))
    return out


def variant_groups(queries, variants) -> Tuple[List[str], List[List[str]]]:
    """``(names, phrasings per name)``: ``variants`` is N (each text query phrased N ways) or
    a ``{name: phrasings}`` mapping (added to ``queries`` phrased once each)."""
    names: List[str] = []
    groups: List[List[str]] = []
    items = [] if queries is None or (isinstance(queries, (list, tuple)) and not queries) else as_queries(queries)
    for q in items:
        if not isinstance(q, TextQuery):
            raise AudioSepError(f"query {q.label!r}: query variants apply to text queries only")
        names.append(q.label)
        groups.append(phrasings(q.text_value, variants) if isinstance(variants, int) else [q.text_value])
    if isinstance(variants, dict):
        for name, texts in variants.items():
            names.append(name)
            groups.append(list(texts))
    if not names:
        raise AudioSepError("no query to phrase: give -q TEXT or a phrasings file")
    return names, groups


def common_reference(scorer, texts: Sequence[str]) -> torch.Tensor:
    """The normalised mean of the phrasings' unit text embeddings (the scoring encoder's)."""
    return F.normalize(scorer.text_embeddings(list(texts)).mean(0), dim=-1)


def mean_query(texts: Sequence[str], name: str) -> Query:
    """One query conditioned on the normalised mean of the phrasings' embeddings."""
    return Query.mix([Query.text(t) for t in texts], name=name)


class VariantPlan:
    """The separation of :meth:`~asteroid_audiosep.Separator.separate_files` with ``query_variants``.

    Args:
        scorer: the scorer that chooses (``separate --score``; required).
        queries: the text queries (may be empty with a mapping).
        variants: N, a ``{name: phrasings}`` mapping, or a YAML file of one.
        mode: only ``"target"``: the residual of a candidate is not chosen.

    Attributes:
        names: the output labels (one per name), as text queries (they name the files).
        queries: every phrasing of every name, in order: the rows the network separates.
        rows: ``rows[g]``: the rows of name ``g``.
    """

    def __init__(self, scorer, queries, variants, mode: str = "target"):
        if scorer is None:
            raise AudioSepError("--query-variants chooses by CLAPScore: it needs --score (Separator(score=True))")
        if mode != "target":
            raise AudioSepError("--query-variants writes the chosen sound only: drop --remove/--keep-both")
        if isinstance(variants, (str, Path)):
            variants = load_phrasings(variants)
        names, self.groups = variant_groups(queries, variants)
        self.names = [Query.text(n) for n in names]
        self.queries = [Query.text(t, name=f"{n}#{i}") for n, g in zip(names, self.groups) for i, t in enumerate(g)]
        starts = [sum(len(g) for g in self.groups[:k]) for k in range(len(self.groups))]
        self.rows = [list(range(a, a + len(g))) for a, g in zip(starts, self.groups)]
        self.scorer = scorer

    def expand(self, specs: Sequence[OutputSpec]) -> List[OutputSpec]:
        """Each target of name ``g`` becomes one candidate per phrasing row, all aimed at the
        same file (the judge keeps one)."""
        return [OutputSpec(s.kind, r, s.path) for s in specs for r in self.rows[s.query]]

    def judge(self, min_score=None) -> "VariantJudge":
        return VariantJudge(self.scorer, [q.label for q in self.names], self.groups, min_score)


class VariantJudge(OutputJudge):
    """Keeps, per output file, the candidate with the highest CLAPScore against its name's
    common reference (and drops it too when its CLAPScore-i is below ``min_score``).

    Args:
        scorer: the :class:`~asteroid_audiosep.metrics.clap_score.ClapScorer`.
        names: the names (output labels).
        groups: the phrasings of each name; the separation's queries are their concatenation.
        min_score: as for :class:`~asteroid_audiosep.scoring.OutputJudge`.
    """

    def __init__(self, scorer, names: Sequence[str], groups: Sequence[Sequence[str]], min_score=None):
        self.scorer = scorer
        self.min_score = None if min_score is None else float(min_score)
        self.names, self.texts, self.targets = [], [], []
        for name, texts in zip(names, groups):
            ref = common_reference(scorer, texts)
            for text in texts:
                self.names.append(name)
                self.texts.append(text)
                self.targets.append(ref)

    def judge(self, result, specs, temporaries) -> List[bool]:
        emb = self.scorer.audio_embeddings([result.input, *temporaries]).double()
        scores = [float(row @ self.targets[s.query].double()) for s, row in zip(specs, emb[1:])]
        keep = [False] * len(specs)
        for path in dict.fromkeys(s.path for s in specs):
            members = [k for k, s in enumerate(specs) if s.path == path]
            best = max(members, key=lambda k: -math.inf if math.isnan(scores[k]) else scores[k])
            spec = specs[best]
            improvement = scores[best] - float(emb[0] @ self.targets[spec.query].double())
            found = self.min_score is None or improvement >= self.min_score
            keep[best] = found
            result.scores.append(OutputScore(str(result.input), self.names[spec.query], str(path), spec.kind,
                                             scores[best], improvement, result.duration,
                                             FOUND if found else NOT_FOUND))
            log.info("%s: %r: best of %d phrasings is %r (CLAPScore %.3f; others %s)", result.input,
                     self.names[spec.query], len(members), self.texts[spec.query], scores[best],
                     ", ".join(f"{scores[k]:.3f}" for k in members if k != best) or "none")
        return keep


def best_of_n(separator, wav: torch.Tensor, sample_rate: int, texts: Sequence[str], scorer) -> dict:
    """Best-of-N in memory: separate ``wav`` with each phrasing, score every output against the
    common reference, keep the highest.

    Returns:
        ``{"output": (channels, time), "index": chosen phrasing, "scores": [CLAPScore per phrasing],
        "outputs": (N, channels, time)}``.
    """
    texts = list(texts)
    outputs = separator.separate_waveform(wav, sample_rate, [Query.text(t, name=f"v{i}") for i, t in enumerate(texts)])
    emb = scorer.audio_embeddings([(o, sample_rate) for o in outputs]).double()
    scores = (emb @ common_reference(scorer, texts).double()).tolist()
    index = max(range(len(texts)), key=lambda k: -math.inf if math.isnan(scores[k]) else scores[k])
    return {"output": outputs[index], "index": index, "scores": scores, "outputs": outputs}
