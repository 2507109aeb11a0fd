"""What is in a recording: zero-shot sound tagging with a CLAP-like encoder (``asteroid-audiosep tag``).

Each window of a file (10 s by default, CLAP's window) is embedded by the encoder's audio tower
and compared (cosine similarity) with the text embeddings of a label vocabulary: AudioSet's 527
display names shipped with the package, or one label per line of a file. The label embeddings
are computed once per (encoder, vocabulary) and cached on disk. :func:`auto_queries` picks the
most likely labels of a whole file as text queries (``separate --auto K``: USS's "separate
everything", with CLAP).
"""
import contextlib
import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .errors import AudioSepError
from .queries import SILENCE_RMS, Query, check_supported

PathLike = Union[str, os.PathLike]
log = logging.getLogger(__name__)

DEFAULT_WINDOW_SECONDS = 10.0
DEFAULT_TOP = 5
MIN_LAST_WINDOW_SECONDS = 0.5  # a shorter tail is part of the previous window's neighbourhood, not tagged


def default_cache_dir() -> Path:
    """``$ASTEROID_AUDIOSEP_CACHE`` or ``$XDG_CACHE_HOME/asteroid_audiosep`` (``~/.cache``)."""
    env = os.environ.get("ASTEROID_AUDIOSEP_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "asteroid_audiosep"


def load_labels(path: Optional[PathLike] = None) -> List[str]:
    """The label vocabulary: one label per line of ``path`` (blank lines skipped), or AudioSet's
    527 display names when ``path`` is None.

    Raises:
        AudioSepError: the file is missing or holds no label.
    """
    from .resources import AUDIOSET_LABELS

    source = Path(path) if path is not None else AUDIOSET_LABELS
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as err:
        raise AudioSepError(f"cannot read the label vocabulary {source}: {err}") from err
    labels = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if not labels:
        raise AudioSepError(f"the label vocabulary {source} has no labels: write one label per line")
    return labels


def _encoder_key(encoder) -> Optional[str]:
    try:
        return json.dumps(encoder.spec(), sort_keys=True, default=str)
    except Exception:  # an encoder without a serialisable identity is not cached
        return None


def label_embeddings(encoder, labels: Sequence[str], cache_dir: Optional[PathLike] = None) -> torch.Tensor:
    """``(L, D)`` normalised text embeddings of ``labels``, cached in ``cache_dir`` (an
    :class:`~asteroid_audiosep.embedding_cache.EmbeddingCache` keyed by the encoder's spec and
    the vocabulary)."""
    from .embedding_cache import EmbeddingCache

    labels = list(labels)
    spec = _encoder_key(encoder)

    def compute() -> dict:
        from .progress import progress

        chunks = [labels[i:i + 64] for i in range(0, len(labels), 64)]
        emb = torch.cat([encoder.encode_text(c).float().cpu()
                         for c in progress(chunks, desc="embedding labels", unit="batch", leave=False)])
        return {"labels": labels, "embeddings": F.normalize(emb, dim=-1), "encoder": spec}

    if spec is None:
        return compute()["embeddings"]
    digest = hashlib.sha256((spec + "\n" + "\n".join(labels)).encode()).hexdigest()[:24]
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"labels-{digest}.pt"
    return EmbeddingCache(path, [spec, labels]).get_or_compute(compute)["embeddings"]


def _windows(length: int, sample_rate: int, window_seconds: float) -> List[Tuple[int, int]]:
    window = max(1, int(round(window_seconds * sample_rate)))
    spans = [(s, min(s + window, length)) for s in range(0, length, window)]
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < MIN_LAST_WINDOW_SECONDS * sample_rate:
        spans.pop()
    return spans


def window_embeddings(encoder, wav, sample_rate: Optional[int], window_seconds: float = DEFAULT_WINDOW_SECONDS
                      ) -> Tuple[List[Tuple[float, float]], torch.Tensor, torch.Tensor]:
    """Audio embeddings of consecutive windows of a recording, read one window at a time.

    Args:
        encoder: a query encoder with an audio tower.
        wav: a mono ``(time,)`` signal at ``sample_rate``, or an audio file (the mean of its
            channels, at its own rate; read window by window, never loaded whole).
        sample_rate: the signal's rate (None for a file).
        window_seconds: the window length.

    Returns:
        ``(spans, embeddings, heard)``: ``(start, end)`` seconds per window, ``(W, D)``
        normalised embeddings, and whether each window is not silent (silent windows get
        zero embeddings and no labels).
    """
    if window_seconds <= 0:
        raise AudioSepError(f"--window must be positive, got {window_seconds}")
    with _mono_reader(wav, sample_rate) as (read, length, sample_rate):
        if length == 0:
            raise AudioSepError("the recording is empty")
        spans = _windows(length, sample_rate, window_seconds)
        # The results are written into buffers allocated once: nothing allocated per window
        # outlives it. A small block kept per window (its embedding) would sit above that
        # window's freed buffers and pin them, so that the heap grew by about a window's
        # working set per window once large blocks are kept (cpu_memory.retain_freed_memory).
        heard = torch.zeros(len(spans), dtype=torch.bool)
        emb = None
        for i, (a, b) in enumerate(spans):
            window = read(a, b)
            heard[i] = float(window.pow(2).mean().sqrt()) >= SILENCE_RMS
            if heard[i]:
                e = F.normalize(encoder.encode_audio(window[None], int(sample_rate)).float().cpu()[0], dim=-1)
                if emb is None:
                    emb = torch.zeros(len(spans), e.numel())
                emb[i] = e
            del window
    if emb is None:
        emb = torch.zeros(len(spans), int(getattr(encoder, "embed_dim", 0) or 1))
    return [(a / sample_rate, b / sample_rate) for a, b in spans], emb, heard


@contextlib.contextmanager
def _mono_reader(wav, sample_rate: Optional[int]):
    """``(read(a, b) -> mono (b - a,) tensor, length, rate)`` for a tensor or an audio file."""
    if isinstance(wav, (str, os.PathLike)):
        from .stream import AudioFileSignal

        with AudioFileSignal(wav, 1) as signal:
            yield (lambda a, b: signal.read(a, b).mean(0)), signal.frames, signal.rate
        return
    wav = torch.as_tensor(wav, dtype=torch.float32)
    wav = wav.mean(0) if wav.dim() == 2 else wav.flatten()
    yield (lambda a, b: wav[a:b]), wav.numel(), sample_rate


@dataclass
class WindowTags:
    """The top labels of one window: ``labels`` is ``[(label, cosine score), ...]``, best first."""

    file: str
    start: float
    end: float
    labels: List[Tuple[str, float]]


def _top(scores: torch.Tensor, labels: Sequence[str], k: int) -> List[Tuple[str, float]]:
    values, index = scores.topk(min(k, len(labels)))
    return [(labels[int(i)], float(v)) for v, i in zip(values, index)]


def tag_waveform(encoder, wav, sample_rate: Optional[int], labels: Sequence[str], label_emb: torch.Tensor,
                 top: int = DEFAULT_TOP, window_seconds: float = DEFAULT_WINDOW_SECONDS,
                 name: str = "") -> List[WindowTags]:
    """The ``top`` labels of each window of a mono signal or a file (see :func:`window_embeddings`)."""
    if top < 1:
        raise AudioSepError(f"--top must be >= 1, got {top}")
    spans, emb, heard = window_embeddings(encoder, wav, sample_rate, window_seconds)
    scores = emb @ label_emb.T
    return [WindowTags(name, a, b, _top(scores[i], labels, top) if heard[i] else [])
            for i, (a, b) in enumerate(spans)]


def _check_audio_encoder(encoder) -> None:
    check_supported([Query.span(0, 1, name="tag")], encoder)


def tag_files(encoder, files: Sequence[PathLike], labels: Optional[Sequence[str]] = None, top: int = DEFAULT_TOP,
              window_seconds: float = DEFAULT_WINDOW_SECONDS, cache_dir: Optional[PathLike] = None
              ) -> Tuple[List[WindowTags], Dict[str, str]]:
    """Tag every file (mono mix of its channels, at its own rate).

    Returns:
        ``(tags, errors)``: the windows of every readable file, and ``{file: message}`` for
        those that failed (the others are still tagged).

    Raises:
        AudioSepError: the encoder has no audio tower (naming it and what would work).
    """
    _check_audio_encoder(encoder)
    labels = list(labels) if labels is not None else load_labels()
    label_emb = label_embeddings(encoder, labels, cache_dir)
    tags: List[WindowTags] = []
    errors: Dict[str, str] = {}
    for path in files:
        try:
            tags += tag_waveform(encoder, path, None, labels, label_emb, top, window_seconds, name=str(path))
        except AudioSepError as err:
            errors[str(path)] = str(err)
    return tags, errors


def auto_queries(encoder, wav, sample_rate: Optional[int], k: int, min_score: Optional[float] = None,
                 labels: Optional[Sequence[str]] = None, cache_dir: Optional[PathLike] = None) -> List[Query]:
    """The ``k`` most likely labels of a whole recording as text queries named after them
    (``separate --auto K [--min-score S]``).

    The recording's embedding is the normalised mean of its windows' embeddings (silent windows
    left out); labels are ranked by cosine score; those below ``min_score`` are dropped, so the
    list may hold fewer than ``k`` queries (none when nothing scores high enough).

    Args:
        encoder: a query encoder with an audio tower (CLAP).
        wav: mono ``(time,)`` or ``(channels, time)`` audio, or an audio file (streamed:
            read one window at a time).
        sample_rate: its rate (None for a file).
        k: how many labels.
        min_score: the lowest cosine score kept.
        labels: the vocabulary (default: AudioSet's 527 names).
        cache_dir: where label embeddings are cached.

    Raises:
        AudioSepError: ``k < 1``, an encoder without audio tower, a silent or empty recording.
    """
    if k < 1:
        raise AudioSepError(f"--auto must be >= 1, got {k}")
    _check_audio_encoder(encoder)
    labels = list(labels) if labels is not None else load_labels()
    _, emb, heard = window_embeddings(encoder, wav, sample_rate)
    if not bool(heard.any()):
        raise AudioSepError("the recording is silent: nothing to tag")
    whole = F.normalize(emb[heard].mean(0), dim=-1)
    ranked = _top(whole @ label_embeddings(encoder, labels, cache_dir).T, labels, k)
    threshold = -math.inf if min_score is None else float(min_score)
    return [Query.text(label, name=label) for label, score in ranked if score >= threshold]


# ---------------------------------------------------------------------- output and command line
def tags_table(tags: Sequence[WindowTags]) -> List[Dict[str, object]]:
    """One row per (window, rank): ``file, start, end, rank, label, score``."""
    return [dict(file=t.file, start=round(t.start, 3), end=round(t.end, 3), rank=r + 1, label=label,
                 score=round(score, 4))
            for t in tags for r, (label, score) in enumerate(t.labels)]


def write_tags(tags: Sequence[WindowTags], out: PathLike) -> Path:
    """Write the tags as CSV (``.csv``, see :func:`tags_table`) or JSON (``.json``, one object
    per window), atomically."""
    from .fileio import write_text_atomic

    out = Path(out)
    if out.suffix.lower() == ".json":
        windows = [dict(file=t.file, start=round(t.start, 3), end=round(t.end, 3),
                        labels=[dict(label=label, score=round(s, 4)) for label, s in t.labels]) for t in tags]
        return write_text_atomic(out, json.dumps(windows, indent=1) + "\n")
    if out.suffix.lower() != ".csv":
        raise AudioSepError(f"-o {out}: write .csv or .json")
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["file", "start", "end", "rank", "label", "score"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(tags_table(tags))
    return write_text_atomic(out, buf.getvalue())
