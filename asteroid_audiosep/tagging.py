"""What is in a recording: zero-shot sound tagging with a CLAP-like encoder (``asteroid-audiosep tag``).

Each window of a file (10 s by default, CLAP's window) is embedded by the encoder's audio tower
and compared (cosine similarity) with the text embeddings of a label vocabulary: AudioSet's 527
display names shipped with the package, or one label per line of a file. The label embeddings
are computed once per (encoder, vocabulary) and cached on disk. :func:`auto_queries` picks the
most likely labels of a whole file as text queries (``separate --auto K``: USS's "separate
everything", with CLAP).
"""
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
    """``(L, D)`` normalised text embeddings of ``labels``, cached in ``cache_dir`` under a name
    made of the encoder's spec and the vocabulary (written atomically; recomputed when absent
    or unreadable)."""
    labels = list(labels)
    spec = _encoder_key(encoder)
    path = None
    if spec is not None:
        digest = hashlib.sha256((spec + "\n" + "\n".join(labels)).encode()).hexdigest()[:24]
        path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"labels-{digest}.pt"
        if path.is_file():
            try:
                data = torch.load(path, map_location="cpu", weights_only=True)
                if data["labels"] == labels:
                    return data["embeddings"]
            except Exception as err:  # a damaged file is recomputed
                log.warning("ignoring the label-embedding cache %s: %s", path, err)
    from .progress import progress

    chunks = [labels[i:i + 64] for i in range(0, len(labels), 64)]
    emb = torch.cat([encoder.encode_text(c).float().cpu()
                     for c in progress(chunks, desc="embedding labels", unit="batch", leave=False)])
    emb = F.normalize(emb, dim=-1)
    if path is not None:
        from .fileio import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, mode=None) as tmp:
            torch.save({"labels": labels, "embeddings": emb, "encoder": spec}, tmp)
    return emb


def _windows(length: int, sample_rate: int, window_seconds: float) -> List[Tuple[int, int]]:
    window = max(1, int(round(window_seconds * sample_rate)))
    spans = [(s, min(s + window, length)) for s in range(0, length, window)]
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < MIN_LAST_WINDOW_SECONDS * sample_rate:
        spans.pop()
    return spans


def window_embeddings(encoder, wav: torch.Tensor, sample_rate: int, window_seconds: float = DEFAULT_WINDOW_SECONDS
                      ) -> Tuple[List[Tuple[float, float]], torch.Tensor, torch.Tensor]:
    """Audio embeddings of consecutive windows of a mono ``(time,)`` signal.

    Returns:
        ``(spans, embeddings, heard)``: ``(start, end)`` seconds per window, ``(W, D)``
        normalised embeddings, and whether each window is not silent (silent windows get
        zero embeddings and no labels).
    """
    if window_seconds <= 0:
        raise AudioSepError(f"--window must be positive, got {window_seconds}")
    wav = torch.as_tensor(wav, dtype=torch.float32).flatten()
    if wav.numel() == 0:
        raise AudioSepError("the recording is empty")
    spans = _windows(wav.numel(), sample_rate, window_seconds)
    heard = torch.tensor([float(wav[a:b].pow(2).mean().sqrt()) >= SILENCE_RMS for a, b in spans])
    found = {i: F.normalize(encoder.encode_audio(wav[a:b][None], int(sample_rate)).float().cpu()[0], dim=-1)
             for i, (a, b) in enumerate(spans) if heard[i]}
    dim = next(iter(found.values())).numel() if found else int(getattr(encoder, "embed_dim", 0) or 1)
    emb = torch.zeros(len(spans), dim)
    for i, e in found.items():
        emb[i] = e
    return [(a / sample_rate, b / sample_rate) for a, b in spans], emb, heard


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


def tag_waveform(encoder, wav: torch.Tensor, sample_rate: int, labels: Sequence[str], label_emb: torch.Tensor,
                 top: int = DEFAULT_TOP, window_seconds: float = DEFAULT_WINDOW_SECONDS,
                 name: str = "") -> List[WindowTags]:
    """The ``top`` labels of each window of a mono signal (see :func:`window_embeddings`)."""
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
    from .audio import load_audio

    _check_audio_encoder(encoder)
    labels = list(labels) if labels is not None else load_labels()
    label_emb = label_embeddings(encoder, labels, cache_dir)
    tags: List[WindowTags] = []
    errors: Dict[str, str] = {}
    for path in files:
        try:
            wav, rate = load_audio(path, mono=True)
            tags += tag_waveform(encoder, wav[0], rate, labels, label_emb, top, window_seconds, name=str(path))
        except AudioSepError as err:
            errors[str(path)] = str(err)
    return tags, errors


def auto_queries(encoder, wav: torch.Tensor, sample_rate: int, k: int, min_score: Optional[float] = None,
                 labels: Optional[Sequence[str]] = None, cache_dir: Optional[PathLike] = None) -> List[Query]:
    """The ``k`` most likely labels of a whole recording as text queries named after them
    (``separate --auto K [--min-score S]``).

    The recording's embedding is the normalised mean of its windows' embeddings (silent windows
    left out); labels are ranked by cosine score; those below ``min_score`` are dropped, so the
    list may hold fewer than ``k`` queries (none when nothing scores high enough).

    Args:
        encoder: a query encoder with an audio tower (CLAP).
        wav: mono ``(time,)`` or ``(channels, time)`` audio.
        sample_rate: its rate.
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
    wav = torch.as_tensor(wav, dtype=torch.float32)
    if wav.dim() == 2:
        wav = wav.mean(0)
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


def _tag_command(args) -> int:
    import sys

    from .pretrained import load_model

    if args.output and Path(args.output).suffix.lower() not in (".csv", ".json"):
        raise AudioSepError(f"-o {args.output}: write .csv or .json")
    labels = load_labels(args.labels) if args.labels else None
    encoder = load_model(args.model).query_encoder
    tags, errors = tag_files(encoder, args.files, labels, args.top, args.window, args.cache_dir)
    for t in tags:
        shown = ", ".join(f"{label} {score:.3f}" for label, score in t.labels) or "(silent)"
        print(f"{t.file} {t.start:7.2f}-{t.end:7.2f} s: {shown}")
    for path, message in errors.items():
        print(f"failed: {path}: {message}", file=sys.stderr)
    if args.output:
        print(f"wrote {write_tags(tags, args.output)}")
    return 1 if errors else 0


def add_tag_parser(subparsers) -> None:
    """The ``tag`` sub-command (registered in :data:`asteroid_audiosep.cli.SUBCOMMANDS`)."""
    p = subparsers.add_parser(
        "tag", help="list the most likely sound labels of each window of audio files",
        description="Zero-shot tagging with the model's CLAP encoder: each window's audio embedding is "
        "compared with the text embeddings of a label vocabulary (AudioSet's 527 names by default). "
        "Prints the top labels per window with their cosine scores. Exit status 1 when a file failed "
        "(the others are tagged), 2 for errors that concern every file.")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    p.add_argument("-m", "--model", default="audiosep-base",
                   help="model package (.pth) or released model name; its encoder needs an audio tower "
                   "(default: %(default)s)")
    p.add_argument("--labels", metavar="FILE", help="label vocabulary, one label per line (default: AudioSet's 527)")
    p.add_argument("--top", type=int, default=DEFAULT_TOP, help="labels per window (default: %(default)s)")
    p.add_argument("--window", type=float, default=DEFAULT_WINDOW_SECONDS,
                   help="window length in seconds (default: %(default)s, CLAP's)")
    p.add_argument("-o", "--output", metavar="OUT", help="also write the tags to OUT.csv or OUT.json")
    p.add_argument("--cache-dir", help="where label embeddings are cached (default: ~/.cache/asteroid_audiosep)")
    p.set_defaults(func=_tag_command)
