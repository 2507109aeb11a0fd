"""What a query can be, and how each becomes one embedding.

A plain string is a text query. :class:`Query` objects add what the encoder's shared space allows:

- ``Query.text("a dog barking")``;
- ``Query.audio("bark.wav")``: the embedding of an example of the sound (CLAP audio tower).
  An example longer than CLAP's 10 s window is embedded window by window and averaged; a
  shorter one is repeat-padded as CLAP does (one under :data:`MIN_EXAMPLE_SECONDS` warns).
  Several examples (``Query.audio("a.wav", "b.wav")``) are averaged: the few-shot query of USS.
  An example may be a file, a part of one (``start``/``end`` in seconds) or a
  ``(tensor, sample_rate)`` pair;
- ``Query.span(3.2, 4.0)``: the example is that span of the input being separated;
- ``Query.image("dog.jpg")``, ``Query.video("clip.mp4", at=2.0)``: a picture or a video frame
  (CLIP image tower); a video without ``at`` gives the mean embedding of its frames taken every
  second (how the paper turns a video into a query);
- ``Query.mix([q1, q2], weights=[0.5, 0.5])``: the normalised weighted mean of the parts'
  normalised embeddings;
- ``Query.embedding(tensor)``: an embedding computed elsewhere.

Every query has a :attr:`~Query.label`, used to name output files. :func:`embed_queries` turns a
list of queries into a ``(N, D)`` tensor with one encoder; text queries keep exactly the
embedding the encoder gives (no renormalisation), so text-only use is unchanged.
"""
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .errors import AudioSepError

PathLike = Union[str, os.PathLike]
#: (start, end) seconds -> (mono (time,) tensor, sample rate): the input a span query points at.
SpanReader = Callable[[float, float], Tuple[torch.Tensor, int]]

AUDIO_WINDOW_SECONDS = 10.0  # CLAP's window
SILENCE_RMS = 1e-5
#: Audio examples shorter than this warn. CLAP (HTSAT) embeds 10 s at 48 kHz as 1024 mel frames
#: of 10 ms, and its last stage sees time in cells of 32 frames (0.32 s); a shorter example is
#: repeat-padded to 10 s (``encoders.clap``), so its embedding is that of a loop of less than
#: one cell, not of the sound. 0.5 s keeps a margin above one cell.
MIN_EXAMPLE_SECONDS = 0.5

log = logging.getLogger("asteroid_audiosep")


@dataclass(frozen=True)
class AudioExample:
    """One audio example: a file (optionally ``start``-``end`` seconds of it) or a tensor."""

    source: Any
    sample_rate: Optional[int] = None
    start: Optional[float] = None
    end: Optional[float] = None

    def describe(self) -> str:
        where = str(self.source) if isinstance(self.source, (str, os.PathLike)) else "tensor"
        if self.start is not None or self.end is not None:
            where += f"@{self.start or 0:g}-{'' if self.end is None else f'{self.end:g}'}"
        return where

    def load(self) -> Tuple[torch.Tensor, int]:
        """The example as a mono (time,) float tensor and its rate."""
        if isinstance(self.source, (str, os.PathLike)):
            from .audio import audio_info, load_audio

            path = Path(self.source)
            info = audio_info(path)
            rate = int(info.samplerate)
            start = 0 if self.start is None else int(round(self.start * rate))
            stop = info.frames if self.end is None else int(round(self.end * rate))
            check_span(self.start or 0.0, self.end, info.frames / rate, str(path))
            wav, rate = load_audio(path, mono=True, start=start, frames=stop - start)
            return wav[0], rate
        if self.sample_rate is None:
            raise AudioSepError("an audio example given as a tensor needs its sample_rate")
        wav = torch.as_tensor(self.source, dtype=torch.float32)
        if wav.dim() == 2:
            wav = wav.mean(0)
        if wav.dim() != 1:
            raise AudioSepError(f"an audio example must be (time,) or (channels, time), got {tuple(wav.shape)}")
        rate = int(self.sample_rate)
        if self.start is not None or self.end is not None:
            check_span(self.start or 0.0, self.end, wav.shape[-1] / rate, "the example")
            stop = wav.shape[-1] if self.end is None else int(round(self.end * rate))
            wav = wav[int(round((self.start or 0.0) * rate)):stop]
        return wav, rate


def check_span(start: float, end: Optional[float], duration: Optional[float] = None, what: str = "",
               slack: float = 1e-6) -> None:
    """The one span check: ``0 <= start < end``, and (given the ``duration`` of ``what``) inside it,
    ``end`` up to ``slack`` seconds past the end.

    Raises:
        AudioSepError: naming the span and, when outside, what it is outside of.
    """
    if start < 0 or (end is not None and end <= start):
        raise AudioSepError(f"span {start:g}-{end if end is not None else ''}: START must be >= 0 and < END")
    if duration is not None and (start >= duration or (end is not None and end > duration + slack)):
        raise AudioSepError(f"span {start:g}-{end if end is not None else 'end'} s is outside {what} "
                            f"({duration:.2f} s long)")


@dataclass
class _Embedding:
    """What embedding a list of queries shares: the encoder, the text rows (embedded in one
    batch), the input of span queries, the expected size."""

    encoder: Any
    texts: Dict[str, torch.Tensor]
    span_reader: Optional[SpanReader] = None
    dim: Optional[int] = None


def _unit(emb: torch.Tensor, normalise: bool) -> torch.Tensor:
    return F.normalize(emb, dim=-1) if normalise else emb


@dataclass(frozen=True)
class Query:
    """One query. Build it with the class methods (a plain string is :meth:`Query.text`); each
    kind is a subclass that owns its label, its checks and its embedding.

    Attributes:
        kind: ``"text"``, ``"audio"``, ``"span"``, ``"image"``, ``"video"``, ``"mix"`` or
            ``"embedding"``.
        name: the label given by the user (outputs are named after it), or None.
    """

    kind: ClassVar[str] = ""
    #: The encoder capability this kind needs (``supports_audio`` / ``supports_image``), if any.
    needs: ClassVar[Optional[str]] = None
    name: Optional[str] = field(default=None, kw_only=True)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def text(cls, text: str, name: Optional[str] = None) -> "TextQuery":
        """A description of the sound."""
        return TextQuery(text, name=name)

    @classmethod
    def audio(cls, *examples, sample_rate: Optional[int] = None, start: Optional[float] = None,
              end: Optional[float] = None, name: Optional[str] = None) -> "AudioQuery":
        """Audio example(s): paths, ``(tensor, rate)`` pairs, tensors (with ``sample_rate``) or
        :class:`AudioExample`; ``start``/``end`` apply to every example."""
        items = []
        for ex in examples:
            if isinstance(ex, AudioExample):
                items.append(ex)
            elif isinstance(ex, tuple) and len(ex) == 2 and not isinstance(ex[0], (str, os.PathLike)):
                items.append(AudioExample(ex[0], int(ex[1]), start, end))
            else:
                items.append(AudioExample(ex, sample_rate, start, end))
        return AudioQuery(tuple(items), name=name)

    @classmethod
    def span(cls, start: float, end: float, name: Optional[str] = None) -> "SpanQuery":
        """The sound heard at ``start``-``end`` seconds of the input being separated."""
        return SpanQuery((float(start), float(end)), name=name)

    @classmethod
    def image(cls, image: Any, name: Optional[str] = None) -> "ImageQuery":
        """A picture: a file path, a PIL image or an image tensor."""
        return ImageQuery(image, name=name)

    @classmethod
    def video(cls, path: PathLike, at: Optional[float] = None, name: Optional[str] = None) -> "VideoQuery":
        """The frame at ``at`` seconds, or (``at=None``) the mean of one frame per second."""
        return VideoQuery(path, None if at is None else float(at), name=name)

    @classmethod
    def mix(cls, parts: Sequence[Any], weights: Optional[Sequence[float]] = None,
            name: Optional[str] = None) -> "MixQuery":
        """The normalised weighted mean of the parts' normalised embeddings."""
        parts = tuple(as_query(p) for p in parts)
        weights = tuple(float(w) for w in (weights if weights is not None else [1.0] * len(parts)))
        return MixQuery(parts, weights, name=name)

    @classmethod
    def embedding(cls, vector, name: Optional[str] = None) -> "EmbeddingQuery":
        """A condition computed elsewhere."""
        return EmbeddingQuery(torch.as_tensor(vector, dtype=torch.float32).flatten(), name=name)

    # ------------------------------------------------------------------ per kind
    def _default_label(self) -> str:
        return self.kind

    def leaves(self) -> Iterator["Query"]:
        """The queries that are embedded by the encoder (a mix's parts, recursively)."""
        yield self

    def _embed(self, ctx: _Embedding, normalise: bool) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    @property
    def label(self) -> str:
        """A readable name (output files are named after it)."""
        return self.name or self._default_label()

    def kinds(self) -> set:
        """Every kind this query needs (a mix needs its parts')."""
        return {leaf.kind for leaf in self.leaves()}

    @property
    def needs_input(self) -> bool:
        """Whether the embedding depends on the input being separated (a span query)."""
        return "span" in self.kinds()


@dataclass(frozen=True)
class TextQuery(Query):
    """A description of the sound; embedded as the encoder's text tower gives it."""

    kind: ClassVar[str] = "text"
    text_value: str = ""

    def __post_init__(self):
        if not isinstance(self.text_value, str) or not self.text_value.strip():
            raise AudioSepError("a text query is an empty string: describe the sound to separate")

    def _default_label(self) -> str:
        return self.text_value

    def _embed(self, ctx: _Embedding, normalise: bool) -> torch.Tensor:
        return _unit(ctx.texts[self.text_value], normalise)


@dataclass(frozen=True)
class AudioQuery(Query):
    """Examples of the sound (CLAP audio tower): 10 s windows embedded, examples averaged."""

    kind: ClassVar[str] = "audio"
    needs: ClassVar[Optional[str]] = "supports_audio"
    examples: Tuple[AudioExample, ...] = ()

    def __post_init__(self):
        if not self.examples:
            raise AudioSepError("an audio query needs at least one example")

    def _default_label(self) -> str:
        first = self.examples[0].source
        stem = Path(first).stem if isinstance(first, (str, os.PathLike)) else "audio"
        return stem + (f"+{len(self.examples) - 1}" if len(self.examples) > 1 else "")

    def _embed(self, ctx: _Embedding, normalise: bool) -> torch.Tensor:
        embs = [audio_embedding(ctx.encoder, *_warn_if_short(ex.load(), ex), what=f"audio example {ex.describe()}")
                for ex in self.examples]
        return F.normalize(torch.stack(embs).mean(0), dim=-1).cpu()


@dataclass(frozen=True)
class SpanQuery(Query):
    """The sound heard at ``span_seconds`` of the input being separated (CLAP audio tower)."""

    kind: ClassVar[str] = "span"
    needs: ClassVar[Optional[str]] = "supports_audio"
    span_seconds: Tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        check_span(*self.span_seconds)

    def _default_label(self) -> str:
        return f"span {self.span_seconds[0]:g}-{self.span_seconds[1]:g}"

    def _embed(self, ctx: _Embedding, normalise: bool) -> torch.Tensor:
        if ctx.span_reader is None:
            raise AudioSepError(f"query {self.label!r}: a span query needs an input to take the span from")
        wav, rate = ctx.span_reader(*self.span_seconds)
        return audio_embedding(ctx.encoder, wav, rate, what=f"span {self.label}").cpu()


@dataclass(frozen=True)
class ImageQuery(Query):
    """A picture of the sound's source (CLIP image tower)."""

    kind: ClassVar[str] = "image"
    needs: ClassVar[Optional[str]] = "supports_image"
    image_source: Any = None

    def _default_label(self) -> str:
        src = self.image_source
        return Path(src).stem if isinstance(src, (str, os.PathLike)) else self.kind

    def _embed(self, ctx: _Embedding, normalise: bool) -> torch.Tensor:
        return F.normalize(ctx.encoder.encode_image([self.image_source]).float()[0], dim=-1).cpu()


@dataclass(frozen=True)
class VideoQuery(ImageQuery):
    """A video frame (``video_at`` seconds), or the mean of one frame per second (CLIP)."""

    kind: ClassVar[str] = "video"
    video_at: Optional[float] = None

    def __post_init__(self):
        if self.video_at is not None and self.video_at < 0:
            raise AudioSepError(f"video time {self.video_at} s: must be >= 0")

    def _default_label(self) -> str:
        return super()._default_label() + (f"@{self.video_at:g}" if self.video_at is not None else "")

    def _embed(self, ctx: _Embedding, normalise: bool) -> torch.Tensor:
        from .video import read_frames, video_duration

        duration = video_duration(self.image_source)
        if self.video_at is not None:
            if self.video_at > duration:
                raise AudioSepError(f"{self.image_source}: time {self.video_at:g} s is past the video's end "
                                    f"({duration:.2f} s)")
            times = [self.video_at]
        else:
            times = [t + 0.5 for t in range(max(1, int(duration)))] if duration >= 1 else [duration / 2]
        emb = ctx.encoder.encode_image(read_frames(self.image_source, times)).float()
        return F.normalize(F.normalize(emb, dim=-1).mean(0), dim=-1).cpu()


@dataclass(frozen=True)
class MixQuery(Query):
    """The normalised weighted mean of the parts' normalised embeddings."""

    kind: ClassVar[str] = "mix"
    parts: Tuple[Query, ...] = ()
    weights: Tuple[float, ...] = ()

    def __post_init__(self):
        if not self.parts:
            raise AudioSepError("a combined query needs at least one part")
        if len(self.weights) != len(self.parts):
            raise AudioSepError(f"{len(self.parts)} parts but {len(self.weights)} weights")
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise AudioSepError(f"weights must be >= 0 with a positive sum, got {list(self.weights)}")

    def _default_label(self) -> str:
        return "+".join(p.label for p in self.parts)

    def leaves(self) -> Iterator[Query]:
        for part in self.parts:
            yield from part.leaves()

    def _embed(self, ctx: _Embedding, normalise: bool) -> torch.Tensor:
        parts = torch.stack([p._embed(ctx, True) for p in self.parts])
        weights = torch.tensor(self.weights, dtype=parts.dtype)[:, None]
        return F.normalize((weights * parts).sum(0) / weights.sum(), dim=-1)


@dataclass(frozen=True)
class EmbeddingQuery(Query):
    """A condition computed elsewhere, used as it is."""

    kind: ClassVar[str] = "embedding"
    vector: Optional[torch.Tensor] = field(default=None, compare=False)

    def __post_init__(self):
        if not torch.isfinite(self.vector).all():
            raise AudioSepError("a query embedding holds NaN or inf")

    def _embed(self, ctx: _Embedding, normalise: bool) -> torch.Tensor:
        if ctx.dim is not None and self.vector.numel() != ctx.dim:
            raise AudioSepError(f"query embedding of size {self.vector.numel()}, the model takes {ctx.dim}")
        return _unit(self.vector, normalise)


QueryLike = Union[str, Query]


def as_query(query: Union[str, Query]) -> Query:
    """A :class:`Query` from a query or a plain string (a text query)."""
    if isinstance(query, Query):
        return query
    if isinstance(query, str):
        return Query.text(query)
    raise AudioSepError(f"a query must be a string or an asteroid_audiosep.Query, got {type(query).__name__}")


def as_queries(queries: Union[str, Query, Sequence[Union[str, Query]]]) -> List[Query]:
    """A list of queries from one query or a list (strings are text queries)."""
    if isinstance(queries, (str, Query)):
        queries = [queries]
    queries = [as_query(q) for q in queries]
    if not queries:
        raise AudioSepError("no query given")
    return queries


# ---------------------------------------------------------------------- capabilities
def check_supported(queries: Sequence[Query], encoder) -> None:
    """Fail before any work when the encoder cannot embed one of the queries' kinds, naming the
    encoder and what would work."""
    for query in queries:
        for leaf in sorted({type(q): q for q in query.leaves()}.values(), key=lambda q: q.kind):
            if leaf.needs and not getattr(encoder, leaf.needs, False):
                name = getattr(encoder, "name", type(encoder).__name__)
                if leaf.needs == "supports_audio":
                    need = "audio-example and span queries need a model whose encoder has an audio tower (clap)"
                else:
                    need = "image and video queries need a model whose encoder has an image tower (clip)"
                raise AudioSepError(f"query {query.label!r}: the {name} query encoder cannot embed {leaf.kind} "
                                    f"queries; {need}")


# ---------------------------------------------------------------------- embedding
def audio_embedding(encoder, wav: torch.Tensor, sample_rate: int, what: str = "the example") -> torch.Tensor:
    """One normalised embedding of a mono example: 10 s windows embedded and averaged."""
    wav = torch.as_tensor(wav, dtype=torch.float32).flatten()
    if wav.numel() == 0:
        raise AudioSepError(f"{what} is empty")
    if float(wav.pow(2).mean().sqrt()) < SILENCE_RMS:
        raise AudioSepError(f"{what} is silent: give an example in which the sound is heard")
    emb = encoder.encode_audio(audio_windows(wav, sample_rate), int(sample_rate)).float()
    return F.normalize(F.normalize(emb, dim=-1).mean(0), dim=-1)


def audio_windows(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``(count, window)`` CLAP windows of a mono ``(time,)`` signal: the whole signal when it is
    at most 10 s long, else equal 10 s windows spread evenly, the last one ending at its end."""
    window = int(round(AUDIO_WINDOW_SECONDS * sample_rate))
    count = max(1, math.ceil(wav.numel() / window))
    if count == 1:
        return wav[None]
    starts = [round(i * (wav.numel() - window) / (count - 1)) for i in range(count)]
    return torch.stack([wav[s:s + window] for s in starts])


def _warn_if_short(loaded: Tuple[torch.Tensor, int], example: "AudioExample") -> Tuple[torch.Tensor, int]:
    """``loaded`` unchanged; a warning naming the example and its length when it is shorter than
    :data:`MIN_EXAMPLE_SECONDS` and not silent (silent examples are refused by
    :func:`audio_embedding`)."""
    wav, rate = loaded
    seconds = wav.shape[-1] / rate
    if 0 < seconds < MIN_EXAMPLE_SECONDS and float(wav.float().pow(2).mean().sqrt()) >= SILENCE_RMS:
        log.warning("audio example %s is %.3g s long, under %g s: CLAP repeats it to fill 10 s, so its "
                    "embedding may not describe the sound; give a longer example",
                    example.describe(), seconds, MIN_EXAMPLE_SECONDS)
    return wav, rate


def embed_queries(encoder, queries: Sequence[Union[str, Query]], span_reader: Optional[SpanReader] = None,
                  dim: Optional[int] = None) -> torch.Tensor:
    """``(N, D)`` float32 embeddings of ``queries`` with ``encoder`` (text queries in one batch).

    Args:
        encoder: a :class:`~asteroid_audiosep.encoders.QueryEncoder`.
        queries: strings or :class:`Query` objects.
        span_reader: reads a span of the input (needed by span queries).
        dim: the expected embedding size (checked for ``Query.embedding``).

    Raises:
        AudioSepError: a query kind the encoder cannot embed (naming the encoder and what would
            work), an empty/silent example, a span outside the input.
    """
    queries = as_queries(queries)
    check_supported(queries, encoder)
    texts = sorted({q.text_value for query in queries for q in query.leaves() if isinstance(q, TextQuery)})
    table: Dict[str, torch.Tensor] = {}
    if texts:
        table = dict(zip(texts, encoder.encode_text(texts).float().cpu()))
    ctx = _Embedding(encoder, table, span_reader, dim)
    return torch.stack([q._embed(ctx, False).float().cpu() for q in queries])
