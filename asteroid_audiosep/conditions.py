"""Queries -> conditions: the vectors the network is conditioned on, one per query.

A *condition* is a query's vector (``condition_dim`` floats) as the mask network takes it.
:func:`resolve_conditions` is the one place where a list of queries becomes ``(labels,
conditions)`` for separation; a span query's row depends on the input being separated, so it
is filled per input by :meth:`QueryConditions.for_input`.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import torch

from .errors import AudioSepError
from .queries import Query, QueryLike, TextQuery, as_queries, check_span, check_supported, embed_queries

__all__ = ["QueryConditions", "resolve_conditions", "unique_queries", "encode"]


def unique_queries(queries) -> List[Query]:
    """The queries, text stripped, each identical text query once (in order)."""
    items = [Query.text(q.text_value.strip(), name=q.name) if isinstance(q, TextQuery) else q
             for q in as_queries(queries)]
    return list({(q.text_value, q.name) if isinstance(q, TextQuery) else id(q): q for q in items}.values())


def encode(encoder, items: Sequence[Query], device: torch.device, dim: int, span_reader=None) -> torch.Tensor:
    """``(len(items), dim)`` float32 conditions on ``device``: text-only lists exactly as the
    encoder's text tower gives them; span queries get zero rows when there is no
    ``span_reader`` (they are filled per input)."""
    if all(isinstance(q, TextQuery) for q in items):
        return encoder.encode_text([q.text_value for q in items]).to(device, torch.float32)
    if span_reader is None and any(q.needs_input for q in items):
        check_supported(items, encoder)
        out = torch.zeros(len(items), dim)
        fixed = [k for k, q in enumerate(items) if not q.needs_input]
        if fixed:
            out[fixed] = embed_queries(encoder, [items[k] for k in fixed], dim=dim)
    else:
        out = embed_queries(encoder, items, span_reader=span_reader, dim=dim)
    return out.to(device, torch.float32)


@dataclass
class QueryConditions:
    """The queries of one separation, their output labels and their conditions.

    Attributes:
        queries: the queries (duplicates of a text query dropped, unless the conditions were given).
        labels: their labels (outputs are named after them).
        conditions: (queries, condition_dim) float32 on the model's device; the rows of span
            queries are zeros until :meth:`for_input` fills them.
        encoder: the query encoder (embeds the span queries per input).
    """

    queries: List[Query]
    labels: List[str]
    conditions: torch.Tensor
    encoder: object = None

    @property
    def spans(self) -> List[int]:
        """Rows that depend on the input (span queries; none when the conditions were given)."""
        if self.encoder is None:
            return []
        return [k for k, q in enumerate(self.queries) if q.needs_input]

    def for_input(self, signal) -> Optional[torch.Tensor]:
        """This input's own conditions (span rows embedded from ``signal``), or None when no
        row depends on the input.

        Raises:
            AudioSepError: a span outside the input, or silent there.
        """
        spans = self.spans
        if not spans:
            return None

        def read(start: float, end: float):
            check_span(start, end, signal.frames / signal.rate, "the input", slack=1.5 / signal.rate)
            a, b = int(round(start * signal.rate)), int(round(end * signal.rate))
            return signal.read(a, min(b, signal.frames)).mean(0), signal.rate

        out = self.conditions.clone()
        out[spans] = encode(self.encoder, [self.queries[k] for k in spans], out.device, out.shape[1], read)
        return out


def resolve_conditions(model, queries: Union[QueryLike, Sequence[QueryLike]],
                       given: Optional[torch.Tensor] = None) -> QueryConditions:
    """Queries -> :class:`QueryConditions` with ``model``'s query encoder.

    Args:
        model: an :class:`~asteroid_audiosep.models.AudioSep`.
        queries: strings (text queries) or :class:`~asteroid_audiosep.Query` objects. Duplicate
            text queries are dropped unless ``given``.
        given: (queries, condition_dim) conditions computed elsewhere; the queries then only
            name the outputs.

    Raises:
        AudioSepError: a query the encoder cannot embed, or ``given`` of the wrong shape.
    """
    device = model.window.device
    if given is None:
        items = unique_queries(queries)
        encoder = model.query_encoder
        return QueryConditions(items, [q.label for q in items],
                               encode(encoder, items, device, model.condition_dim), encoder)
    items = as_queries(queries)
    given = torch.as_tensor(given, dtype=torch.float32)
    if given.dim() == 1:
        given = given[None]
    if given.shape != (len(items), model.condition_dim):
        raise AudioSepError(
            f"query embeddings must be ({len(items)}, {model.condition_dim}), got {tuple(given.shape)}"
        )
    return QueryConditions(items, [q.label for q in items], given)
