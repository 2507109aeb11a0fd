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
import dataclasses
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

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
            _check_span(self.start or 0.0, self.end, info.frames / rate, str(path))
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
            _check_span(self.start or 0.0, self.end, wav.shape[-1] / rate, "the example")
            stop = wav.shape[-1] if self.end is None else int(round(self.end * rate))
            wav = wav[int(round((self.start or 0.0) * rate)):stop]
        return wav, rate


def _check_span(start: float, end: Optional[float], duration: float, what: str) -> None:
    if start < 0 or (end is not None and end <= start):
        raise AudioSepError(f"span {start:g}-{end if end is not None else ''}: START must be >= 0 and < END")
    if start >= duration or (end is not None and end > duration + 1e-6):
        raise AudioSepError(f"span {start:g}-{end if end is not None else 'end'} s is outside {what} "
                            f"({duration:.2f} s long)")


@dataclass(frozen=True)
class Query:
    """One query. Build it with the class methods; a plain string is :meth:`Query.text`."""

    kind: str
    text_value: Optional[str] = None
    examples: Tuple[AudioExample, ...] = ()
    span_seconds: Optional[Tuple[float, float]] = None
    image_source: Any = None
    video_at: Optional[float] = None
    parts: Tuple["Query", ...] = ()
    weights: Tuple[float, ...] = ()
    vector: Optional[torch.Tensor] = field(default=None, compare=False)
    name: Optional[str] = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def text(cls, text: str, name: Optional[str] = None) -> "Query":
        if not isinstance(text, str) or not text.strip():
            raise AudioSepError("a text query is an empty string: describe the sound to separate")
        return cls("text", text_value=text, name=name)

    @classmethod
    def audio(cls, *examples, sample_rate: Optional[int] = None, start: Optional[float] = None,
              end: Optional[float] = None, name: Optional[str] = None) -> "Query":
        """Audio example(s): paths, ``(tensor, rate)`` pairs, tensors (with ``sample_rate``) or
        :class:`AudioExample`; ``start``/``end`` apply to every example."""
        if not examples:
            raise AudioSepError("an audio query needs at least one example")
        items = []
        for ex in examples:
            if isinstance(ex, AudioExample):
                items.append(ex)
            elif isinstance(ex, tuple) and len(ex) == 2 and not isinstance(ex[0], (str, os.PathLike)):
                items.append(AudioExample(ex[0], int(ex[1]), start, end))
            else:
                items.append(AudioExample(ex, sample_rate, start, end))
        return cls("audio", examples=tuple(items), name=name)

    @classmethod
    def span(cls, start: float, end: float, name: Optional[str] = None) -> "Query":
        start, end = float(start), float(end)
        if start < 0 or end <= start:
            raise AudioSepError(f"span {start:g}-{end:g}: START must be >= 0 and < END")
        return cls("span", span_seconds=(start, end), name=name)

    @classmethod
    def image(cls, image: Any, name: Optional[str] = None) -> "Query":
        """A picture: a file path, a PIL image or an image tensor."""
        return cls("image", image_source=image, name=name)

    @classmethod
    def video(cls, path: PathLike, at: Optional[float] = None, name: Optional[str] = None) -> "Query":
        """The frame at ``at`` seconds, or (``at=None``) the mean of one frame per second."""
        if at is not None and at < 0:
            raise AudioSepError(f"video time {at} s: must be >= 0")
        return cls("video", image_source=path, video_at=None if at is None else float(at), name=name)

    @classmethod
    def mix(cls, parts: Sequence[Any], weights: Optional[Sequence[float]] = None,
            name: Optional[str] = None) -> "Query":
        parts = tuple(as_query(p) for p in parts)
        if not parts:
            raise AudioSepError("a combined query needs at least one part")
        weights = tuple(float(w) for w in (weights if weights is not None else [1.0] * len(parts)))
        if len(weights) != len(parts):
            raise AudioSepError(f"{len(parts)} parts but {len(weights)} weights")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise AudioSepError(f"weights must be >= 0 with a positive sum, got {list(weights)}")
        return cls("mix", parts=parts, weights=weights, name=name)

    @classmethod
    def embedding(cls, vector, name: Optional[str] = None) -> "Query":
        vector = torch.as_tensor(vector, dtype=torch.float32).flatten()
        if not torch.isfinite(vector).all():
            raise AudioSepError("a query embedding holds NaN or inf")
        return cls("embedding", vector=vector, name=name)

    # ------------------------------------------------------------------ properties
    @property
    def label(self) -> str:
        """A readable name (output files are named after it)."""
        if self.name:
            return self.name
        if self.kind == "text":
            return self.text_value
        if self.kind == "audio":
            first = self.examples[0].source
            stem = Path(first).stem if isinstance(first, (str, os.PathLike)) else "audio"
            return stem + (f"+{len(self.examples) - 1}" if len(self.examples) > 1 else "")
        if self.kind == "span":
            return f"span {self.span_seconds[0]:g}-{self.span_seconds[1]:g}"
        if self.kind in ("image", "video"):
            src = self.image_source
            stem = Path(src).stem if isinstance(src, (str, os.PathLike)) else self.kind
            return stem + (f"@{self.video_at:g}" if self.video_at is not None else "")
        if self.kind == "mix":
            return "+".join(p.label for p in self.parts)
        return "embedding"

    def kinds(self) -> set:
        """Every kind this query needs (a mix needs its parts')."""
        return set().union(*(p.kinds() for p in self.parts)) if self.kind == "mix" else {self.kind}

    @property
    def needs_input(self) -> bool:
        """Whether the embedding depends on the input being separated (a span query)."""
        return "span" in self.kinds()


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
_NEEDS = {"audio": "supports_audio", "span": "supports_audio", "image": "supports_image",
          "video": "supports_image"}


def check_supported(queries: Sequence[Query], encoder) -> None:
    """Fail before any work when the encoder cannot embed one of the queries' kinds, naming the
    encoder and what would work."""
    for query in queries:
        for kind in sorted(query.kinds()):
            if kind in _NEEDS and not getattr(encoder, _NEEDS[kind], False):
                name = getattr(encoder, "name", type(encoder).__name__)
                if _NEEDS[kind] == "supports_audio":
                    need = "audio-example and span queries need a model whose encoder has an audio tower (clap)"
                else:
                    need = "image and video queries need a model whose encoder has an image tower (clip)"
                raise AudioSepError(f"query {query.label!r}: the {name} query encoder cannot embed {kind} "
                                    f"queries; {need}")


# ---------------------------------------------------------------------- embedding
def audio_embedding(encoder, wav: torch.Tensor, sample_rate: int, what: str = "the example") -> torch.Tensor:
    """One normalised embedding of a mono example: 10 s windows embedded and averaged."""
    wav = torch.as_tensor(wav, dtype=torch.float32).flatten()
    if wav.numel() == 0:
        raise AudioSepError(f"{what} is empty")
    if float(wav.pow(2).mean().sqrt()) < SILENCE_RMS:
        raise AudioSepError(f"{what} is silent: give an example in which the sound is heard")
    window = int(round(AUDIO_WINDOW_SECONDS * sample_rate))
    count = max(1, math.ceil(wav.numel() / window))
    if count == 1:
        windows = wav[None]
    else:  # equal windows of one CLAP window each, the last one ending at the end
        starts = [round(i * (wav.numel() - window) / (count - 1)) for i in range(count)]
        windows = torch.stack([wav[s:s + window] for s in starts])
    emb = encoder.encode_audio(windows, int(sample_rate)).float()
    return F.normalize(F.normalize(emb, dim=-1).mean(0), dim=-1)


def _warn_if_short(loaded: Tuple[torch.Tensor, int], example: AudioExample) -> Tuple[torch.Tensor, int]:
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


def _image_embedding(encoder, query: Query) -> torch.Tensor:
    if query.kind == "image":
        return F.normalize(encoder.encode_image([query.image_source]).float()[0], dim=-1)
    from .video import read_frames, video_duration

    duration = video_duration(query.image_source)
    if query.video_at is not None:
        if query.video_at > duration:
            raise AudioSepError(f"{query.image_source}: time {query.video_at:g} s is past the video's end "
                                f"({duration:.2f} s)")
        times = [query.video_at]
    else:
        times = [t + 0.5 for t in range(max(1, int(duration)))] if duration >= 1 else [duration / 2]
    emb = encoder.encode_image(read_frames(query.image_source, times)).float()
    return F.normalize(F.normalize(emb, dim=-1).mean(0), dim=-1)


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
    texts = sorted({q.text_value for q in _leaves(queries) if q.kind == "text"})
    table: Dict[str, torch.Tensor] = {}
    if texts:
        table = dict(zip(texts, encoder.encode_text(texts).float().cpu()))

    def one(query: Query, normalise: bool) -> torch.Tensor:
        if query.kind == "text":
            emb = table[query.text_value]
            return F.normalize(emb, dim=-1) if normalise else emb
        if query.kind == "embedding":
            emb = query.vector
            if dim is not None and emb.numel() != dim:
                raise AudioSepError(f"query embedding of size {emb.numel()}, the model takes {dim}")
            return F.normalize(emb, dim=-1) if normalise else emb
        if query.kind == "audio":
            embs = [audio_embedding(encoder, *_warn_if_short(ex.load(), ex), what=f"audio example {ex.describe()}")
                    for ex in query.examples]
            return F.normalize(torch.stack(embs).mean(0), dim=-1).cpu()
        if query.kind == "span":
            if span_reader is None:
                raise AudioSepError(f"query {query.label!r}: a span query needs an input to take the span from")
            wav, rate = span_reader(*query.span_seconds)
            return audio_embedding(encoder, wav, rate, what=f"span {query.label}").cpu()
        if query.kind in ("image", "video"):
            return _image_embedding(encoder, query).cpu()
        parts = torch.stack([one(p, True) for p in query.parts])
        weights = torch.tensor(query.weights, dtype=parts.dtype)[:, None]
        return F.normalize((weights * parts).sum(0) / weights.sum(), dim=-1)

    return torch.stack([one(q, False).float().cpu() for q in queries])


def _leaves(queries: Sequence[Query]):
    for q in queries:
        if q.kind == "mix":
            yield from _leaves(q.parts)
        else:
            yield q


# ---------------------------------------------------------------------- command-line forms
_SPAN = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*$")


def parse_span(text: str) -> Tuple[float, float]:
    """``"3.2-4.0"`` -> ``(3.2, 4.0)``."""
    match = _SPAN.match(str(text))
    if not match:
        raise AudioSepError(f"span {text!r}: write START-END in seconds, e.g. 3.2-4.0")
    start, end = float(match[1]), float(match[2])
    if end <= start:
        raise AudioSepError(f"span {text!r}: START must be < END")
    return start, end


def parse_audio_argument(text: str) -> Query:
    """``FILE[@START-END]`` or ``FILE1,FILE2,...`` (a few-shot query) -> an audio query."""
    examples = []
    for item in str(text).split(","):
        path, _, span = item.strip().partition("@")
        if not path:
            raise AudioSepError(f"--query-audio {text!r}: an empty file name")
        start, end = parse_span(span) if span else (None, None)
        if not Path(path).is_file():
            raise AudioSepError(f"--query-audio: {path} not found")
        examples.append(AudioExample(path, None, start, end))
    return Query.audio(*examples)


def parse_video_argument(text: str) -> Query:
    """``FILE[@SECONDS]`` -> a video query (default: the middle frame)."""
    path, _, at = str(text).rpartition("@") if "@" in str(text) else (str(text), "", "")
    if not Path(path).is_file():
        raise AudioSepError(f"--query-video: {path} not found")
    if at:
        try:
            seconds = float(at)
        except ValueError:
            raise AudioSepError(f"--query-video {text!r}: write FILE@SECONDS") from None
    else:
        from .video import video_duration

        seconds = video_duration(path) / 2
    return Query.video(path, at=seconds)


def load_queries_file(path: PathLike) -> List[Query]:
    """Named, possibly combined queries from YAML::

        dog: {text: "a dog barking", audio: [bark.wav], weights: [0.5, 0.5]}
        siren: "an emergency siren"
        bell: {audio: [bell1.wav, bell2.wav@0-2]}

    Each entry's parts (``text``, ``audio``, ``image``, ``video``, ``span``) are combined with
    ``weights`` (default equal). Relative file names are read from the YAML file's folder.

    Raises:
        AudioSepError: unreadable YAML (with the line), an entry with no part, an unknown key.
    """
    import yaml

    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as err:
        raise AudioSepError(f"cannot read the queries file {path}: {err}") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise AudioSepError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(content, dict) or not content:
        raise AudioSepError(f"{path}: expected a mapping of query names to queries")
    base = path.parent

    def local(p: str) -> str:
        return str(p) if Path(p).is_absolute() else str(base / p)

    queries = []
    for name, entry in content.items():
        if isinstance(entry, str):
            queries.append(Query.text(entry, name=str(name)))
            continue
        if not isinstance(entry, dict):
            raise AudioSepError(f"{path}: query {name!r} must be a string or a mapping")
        unknown = set(entry) - {"text", "audio", "image", "video", "span", "weights"}
        if unknown:
            raise AudioSepError(f"{path}: query {name!r} has unknown keys {sorted(unknown)}; "
                                "use text, audio, image, video, span, weights")
        parts = []
        if entry.get("text"):
            parts.append(Query.text(str(entry["text"])))
        if entry.get("audio"):
            files = entry["audio"] if isinstance(entry["audio"], list) else [entry["audio"]]
            parts.append(parse_audio_argument(",".join(local(str(f)) for f in files)))
        if entry.get("image"):
            parts.append(Query.image(local(str(entry["image"]))))
        if entry.get("video"):
            parts.append(parse_video_argument(local(str(entry["video"]))))
        if entry.get("span"):
            parts.append(Query.span(*parse_span(str(entry["span"]))))
        if not parts:
            raise AudioSepError(f"{path}: query {name!r} has no text, audio, image, video or span")
        weights = entry.get("weights")
        if weights is not None and len(weights) != len(parts):
            raise AudioSepError(f"{path}: query {name!r} has {len(parts)} parts but {len(weights)} weights")
        if len(parts) == 1 and weights is None:
            queries.append(dataclasses.replace(parts[0], name=str(name)))
        else:
            queries.append(Query.mix(parts, weights, name=str(name)))
    return queries
