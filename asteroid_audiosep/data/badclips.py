"""Bad training clips: what makes a clip unusable, and the tally that counts, logs and bounds them.

A training dataset (:class:`~.datasets.LASSTrainDataset`, :class:`~.shards.LASSShardDataset`)
never stops an epoch for one bad clip: it replaces the clip by another one (so batches keep
their shape) and records *why* in the item it returns, under the key ``"bad"`` (a JSON string,
so that the default collate keeps it, whatever the number of skipped clips). Items travel from
the data-loader worker processes to the training process with their batch, so the counts made
there add up over every worker. :class:`BadClipTally`, in the training process, reads them from
each batch, logs each bad file once, counts the skips per reason, and stops training with an
error naming the worst files once the bad share passes ``max_bad_fraction``.

The reasons (:data:`REASONS`):

- ``unreadable``: libsndfile cannot open or decode the file (corrupt, not audio, missing).
- ``truncated``: the file holds less audio than its header promises (a WAV cut short by a failed
  copy; libsndfile itself would silently read the part that is left).
- ``silent``: the whole file is digital silence (peak <= :data:`SILENCE_PEAK`). A silent
  *segment* of a file that is not silent is kept, as released (the released recipe has no
  silence test; a quiet part of a good clip is data).
- ``non_finite``: the segment read holds NaN or Inf samples (a float file written by a broken
  tool).
- ``corrupt_shard``: a webdataset tar is truncated or corrupt from some member on.
"""
import json
import logging
import math
import os
import struct
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import torch

from ..errors import AudioSepError

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

REASONS = ("unreadable", "truncated", "silent", "non_finite", "corrupt_shard")

#: Default of ``data.max_bad_fraction``: the share of bad training clips tolerated (1 %).
DEFAULT_MAX_BAD_FRACTION = 0.01

#: A file whose every sample is at most this (about -120 dBFS) is digital silence. 16-bit
#: audio's smallest step is 3e-5, so only files of exact zeros (or float files below the 16-bit
#: floor) count.
SILENCE_PEAK = 1e-6

#: Files named in the error that stops training.
WORST_SHOWN = 10


class BadClip(AudioSepError):
    """A training clip that cannot be used, and why.

    Args:
        path: the clip (or shard, or ``shard#key``).
        reason: one of :data:`REASONS`.
        detail: what was found (for the log).
        weight: training items the fault costs (1 for a clip; a corrupt shard: the samples lost).
    """

    def __init__(self, path: PathLike, reason: str, detail: str = "", weight: int = 1):
        if reason not in REASONS:
            raise ValueError(f"unknown bad-clip reason {reason!r}")
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))
        self.path, self.reason, self.detail, self.weight = str(path), reason, detail, int(weight)

    def event(self) -> Dict[str, Any]:
        """The record an item carries to the training process."""
        return dict(path=self.path, reason=self.reason, detail=self.detail, weight=self.weight)


def encode_events(events: Sequence[BadClip]) -> str:
    """The ``"bad"`` value of an item: "" when nothing was skipped, else a JSON list."""
    return json.dumps([e.event() for e in events]) if events else ""


def decode_events(values: Union[str, Sequence[str], None]) -> List[Dict[str, Any]]:
    """The events of an item's or a collated batch's ``"bad"`` value."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [event for value in values if value for event in json.loads(value)]


def wav_truncation(path: PathLike) -> Optional[str]:
    """Why a RIFF/WAVE file is truncated (its ``data`` chunk promises more bytes than the file
    holds), or None (not truncated, or not a WAV: other formats fail when decoded instead).

    Reads only the chunk headers.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
                return None
            if head[:4] == b"RF64":  # sizes live in the ds64 chunk; libsndfile checks those files
                return None
            position = 12
            while position + 8 <= size:
                f.seek(position)
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if name == b"data":
                    present = size - position - 8
                    if length != 0xFFFFFFFF and length > present:
                        return f"its header promises {length} bytes of audio, the file holds {present}"
                    return None
                position += 8 + length + (length & 1)
    except OSError:
        return None  # the read that follows reports it as unreadable
    return None


def check_waveform(wav: torch.Tensor, path: PathLike) -> bool:
    """Raise :class:`BadClip` (``non_finite``) for NaN/Inf samples; return whether ``wav`` is
    digital silence (the caller decides whether the whole file is)."""
    if wav.numel() == 0:
        return True
    low, high = (float(v) for v in torch.aminmax(wav))  # one pass; NaN and Inf propagate
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int((~torch.isfinite(wav)).sum())
        raise BadClip(path, "non_finite", f"{bad} NaN/Inf samples in the segment read")
    return max(high, -low) <= SILENCE_PEAK


class BadClipTally:
    """Counts of the clips a training run skipped, per reason, with a budget.

    Feed it every training batch (:meth:`update`) in the training process. Each bad file is
    logged once (the first time a batch reports it), with its reason; the counts are
    :meth:`summary` (written to ``train_report.json``). When the bad share (:meth:`bad_fraction`)
    exceeds ``max_bad_fraction``,
    :meth:`update` raises an error naming the worst files.

    Args:
        num_clips: size of the training set (None when unknown: the items seen are used).
        max_bad_fraction: tolerated share of bad clips, in [0, 1].
        what: how the error names the setting (``data.max_bad_fraction``).
    """

    def __init__(self, num_clips: Optional[int], max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
                 what: str = "data.max_bad_fraction"):
        fraction = float(max_bad_fraction)
        if not 0.0 <= fraction <= 1.0:
            raise AudioSepError(f"{what} must be within [0, 1], got {max_bad_fraction!r}")
        self.num_clips = int(num_clips) if num_clips else None
        self.max_bad_fraction = fraction
        self.what = what
        self.items = 0  # items served to training (good ones)
        self.files: Dict[str, Dict[str, Any]] = {}  # path -> reason, detail, skips, weight

    # ------------------------------------------------------------------ counting
    def update(self, batch: Any) -> None:
        """Count a training batch (a dict with ``"bad"`` and ``"caption"``) and check the budget."""
        if not isinstance(batch, dict):
            return
        self.add(decode_events(batch.get("bad")), len(batch.get("caption", ())))

    def add(self, events: Iterable[Dict[str, Any]], items: int = 0) -> None:
        """Count ``items`` served items and the skip ``events`` behind them; check the budget."""
        self.items += int(items)
        for event in events:
            record = self.files.get(event["path"])
            if record is None:
                record = self.files[event["path"]] = dict(reason=event["reason"], detail=event.get("detail", ""),
                                                          skips=0, weight=0)
                logger.warning("skipping bad training clip %s: %s%s (replaced by another clip; logged once "
                               "per file, counted in train_report.json)", event["path"], event["reason"],
                               f", {event['detail']}" if event.get("detail") else "")
            record["skips"] += 1
            record["weight"] = max(record["weight"], int(event.get("weight", 1)))
        if events:
            self.check()

    def bad_fraction(self) -> float:
        """The bad share: the items the bad files stand for over ``num_clips`` (when unknown: over
        the items seen, good and bad)."""
        bad = sum(r["weight"] for r in self.files.values())
        return bad / max(self.num_clips or (self.items + bad), bad, 1)

    def worst(self, count: int = WORST_SHOWN) -> List[Dict[str, Any]]:
        """The bad files, most skipped first."""
        ranked = sorted(self.files.items(), key=lambda kv: (-kv[1]["skips"], -kv[1]["weight"], kv[0]))
        return [dict(path=path, **record) for path, record in ranked[:count]]

    def check(self) -> None:
        """Raise when the bad share exceeds the budget.

        Raises:
            AudioSepError: naming the share, the setting and the worst files.
        """
        fraction = self.bad_fraction()
        if fraction <= self.max_bad_fraction:
            return
        worst = "; ".join(f"{w['path']} ({w['reason']}, skipped {w['skips']}x)" for w in self.worst())
        raise AudioSepError(
            f"training stopped: {len(self.files)} bad training file(s) make {fraction:.2%} of the data, more than "
            f"{self.what}={self.max_bad_fraction} allows. Worst: {worst}. Fix or remove them from the datafiles "
            f"(or raise {self.what}); the last checkpoint is kept and a rerun resumes from it"
        )

    def summary(self) -> Dict[str, Any]:
        """The counts for ``train_report.json``: per reason (files and skipped reads), the share,
        the budget and the worst files."""
        by_reason = {r: dict(files=0, skips=0) for r in REASONS}
        for record in self.files.values():
            by_reason[record["reason"]]["files"] += 1
            by_reason[record["reason"]]["skips"] += record["skips"]
        return dict(bad_files=len(self.files), skipped=sum(r["skips"] for r in self.files.values()),
                    items=self.items, bad_fraction=self.bad_fraction(), max_bad_fraction=self.max_bad_fraction,
                    by_reason=by_reason, worst=self.worst())

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> Dict[str, Any]:
        """Plain types only (kept in checkpoints: a resumed run goes on counting)."""
        return dict(items=self.items, files={p: dict(r) for p, r in self.files.items()})

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.items = int(state.get("items", 0))
        self.files = {str(p): dict(r) for p, r in state.get("files", {}).items()}

    def merge(self, states: Iterable[Dict[str, Any]]) -> None:
        """Add the :meth:`state_dict` of other processes (distributed ranks) to this tally."""
        for state in states:
            self.items += int(state.get("items", 0))
            for path, record in state.get("files", {}).items():
                mine = self.files.setdefault(path, dict(record, skips=0, weight=0))
                mine["skips"] += int(record["skips"])
                mine["weight"] = max(mine["weight"], int(record["weight"]))
