"""Dataset classes for language-queried audio separation: random training segments with a
caption, and fixed evaluation examples."""
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ..audio import audio_info, load_audio, resample
from ..errors import AudioSepError
from .badclips import SILENCE_PEAK, BadClip, check_waveform, encode_events, wav_truncation
from .datafile import datafile_infos, drop_missing, read_datafile, report_missing
from .evallist import EvalItem, read_eval_list

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

_ORDER_STREAM = 0x5EED  # keeps the order draws apart from the per-item draws
_REPLACE_STREAM = 0xBAD  # the draws of replacement clips


def crop_or_pad(wav: torch.Tensor, length: int, rng: Optional[np.random.Generator] = None) -> torch.Tensor:
    """Cut (channels, time) audio to ``length`` samples, or zero-pad it at the end.

    Args:
        wav: (channels, time).
        length: wanted number of samples.
        rng: when given and the audio is longer, the segment starts at a random sample;
            otherwise it starts at 0.
    """
    extra = wav.shape[-1] - length
    if extra > 0:
        start = int(rng.integers(0, extra + 1)) if rng is not None else 0
        return wav[..., start : start + length]
    if extra < 0:
        return torch.nn.functional.pad(wav, (0, -extra))
    return wav


def read_random_segment(
    path: PathLike, sample_rate: int, num_samples: int, rng: np.random.Generator
) -> torch.Tensor:
    """A random segment of a file as (1, num_samples) mono float32 at ``sample_rate``.

    Only the needed frames are read from disk; short files are zero-padded at the end.

    Raises:
        AudioSepError: the file is missing, unreadable or empty; :class:`~.badclips.BadClip`
            (``truncated``) when fewer frames come than its header promises.
    """
    info = audio_info(path)
    native = int(np.ceil(num_samples * info.samplerate / sample_rate))
    start = int(rng.integers(0, info.frames - native + 1)) if info.frames > native else 0
    wav, _ = load_audio(path, mono=True, start=start, frames=native)
    # The header promised more (MP3 frame counts are estimates: not a truncation there).
    if wav.shape[-1] < min(native, info.frames - start) and info.format != "MPEG":
        raise BadClip(path, "truncated", f"read {wav.shape[-1]} of the {min(native, info.frames - start)} "
                      f"frames its header promises from frame {start}")
    return crop_or_pad(resample(wav, info.samplerate, sample_rate), num_samples)


class LASSTrainDataset(Dataset):
    """Random fixed-length segments of captioned clips, for on-the-fly mixing.

    Each item is one clip of the datafiles: a random ``segment_seconds`` window (mono,
    resampled to ``sample_rate``, zero-padded at the end when the clip is shorter) and one of
    its captions drawn at random. The draws depend only on ``(seed, epoch, index)``, so an
    epoch is reproducible whatever the number of workers, and differs from the next epoch.
    With ``shuffle=True`` the dataset also permutes its clips per epoch (use it with a
    sequential sampler, or a ``DistributedSampler(shuffle=False)``, to get a reproducible
    order); call :meth:`set_epoch` at the start of every epoch (with non-persistent
    workers, which copy the dataset at each epoch).

    A bad clip (unreadable, truncated, silent or non-finite; see :mod:`.badclips`) is replaced
    by another clip drawn at random, and named in the item's ``bad`` field (the training process
    counts and logs those, see :class:`~.badclips.BadClipTally`); a datafile entry whose file is
    missing is reported when the dataset is built.

    Args:
        datafiles: JSON datafiles in the released format (see :mod:`.datafile`).
        sample_rate: output sample rate in Hz.
        segment_seconds: segment length in seconds.
        seed: seed of every random draw.
        shuffle: permute the clips per epoch (see above).
        skip_missing: drop entries whose file is missing (with a warning) instead of raising.
        max_retries: bad clips tolerated in a row for one item before giving up with an error.
        check_files: check at build time that every file exists (turn off for millions of
            clips on a slow file system; a missing file is then handled as unreadable).

    Attributes:
        sample_rate: the output sample rate.
        segment_samples: samples per segment.
        entries: the normalised datafile entries (``wav``, ``captions``, ``labels``).

    References:
        X. Liu et al., "Separate Anything You Describe", 2023 (training data, Sec. IV-A).
    """

    dataset_name = "LASS"

    def __init__(
        self,
        datafiles: Sequence[PathLike],
        sample_rate: int,
        segment_seconds: float = 5.0,
        seed: int = 0,
        shuffle: bool = True,
        skip_missing: bool = False,
        max_retries: int = 20,
        check_files: bool = True,
    ):
        super().__init__()
        if isinstance(datafiles, (str, os.PathLike)):
            datafiles = [datafiles]
        if not datafiles:
            raise AudioSepError("LASSTrainDataset needs at least one datafile")
        if sample_rate <= 0 or segment_seconds <= 0:
            raise AudioSepError(
                f"sample_rate and segment_seconds must be positive, got {sample_rate}, {segment_seconds}")
        self.datafiles = [str(d) for d in datafiles]
        self.sample_rate = int(sample_rate)
        self.segment_seconds = float(segment_seconds)
        self.segment_samples = int(round(self.segment_seconds * self.sample_rate))
        self.seed = int(seed)
        self.shuffle = shuffle
        self.max_retries = int(max_retries)
        entries: List[Dict[str, Any]] = []
        self._infos: List[Dict[str, Any]] = []
        for datafile in self.datafiles:
            entries += read_datafile(datafile)
            self._infos.append(datafile_infos(datafile))
        if not entries:
            raise AudioSepError(f"the datafiles {self.datafiles} list no clip")
        self.entries = drop_missing(entries, skip_missing, source=", ".join(self.datafiles)) if check_files else entries
        self._bad: Dict[int, BadClip] = {}  # clips found bad (per worker process)
        self._checked: Set[int] = set()  # clips read once without a clip-level fault
        self.epoch = 0
        self._order: Optional[np.ndarray] = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order, segments and captions the items follow."""
        self.epoch = int(epoch)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, _ORDER_STREAM])
            self._order = rng.permutation(len(self.entries))
        else:
            self._order = None

    def __len__(self) -> int:
        return len(self.entries)

    def captions(self) -> List[str]:
        """Every distinct caption of the datafiles, sorted (to pre-compute query embeddings)."""
        return sorted({c for e in self.entries for c in e["captions"]})

    def clip_index(self, i: int) -> int:
        """The position in :attr:`entries` of the clip that item ``i`` reads this epoch."""
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} clips")
        return int(self._order[i]) if self._order is not None else i

    def __getitem__(self, i: int) -> Dict[str, Any]:
        """Item ``i`` of the current epoch.

        A bad clip (see :mod:`.badclips`: unreadable, truncated, silent, non-finite) is replaced
        by another clip drawn from ``(seed, epoch, i, attempt)``, so the item does not depend on
        which worker met the bad clip first. With good data the item is what the released
        recipe reads.

        Returns:
            dict with ``waveform`` (1, segment_samples) float32, ``caption`` (str), ``index``
            (int, the clip's position in :attr:`entries`; it differs from ``i`` when the clip
            was replaced, or when shuffling) and ``bad`` (the skipped clips, see
            :func:`~.badclips.encode_events`; "" when none).
        """
        index = self.clip_index(i)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        skipped: List[BadClip] = []
        for attempt in range(self.max_retries + 1):
            if attempt:
                pick = np.random.default_rng([self.seed, self.epoch, i, attempt, _REPLACE_STREAM])
                index = int(pick.integers(len(self.entries)))
                rng = np.random.default_rng([self.seed, self.epoch, i, attempt])
            entry = self.entries[index]
            known = self._bad.get(index)
            if known is None:
                try:
                    waveform = self._read(index, entry["wav"], rng)
                except BadClip as err:
                    known = err
                    logger.debug("replacing bad clip %s", err)
                else:
                    caption = entry["captions"][int(rng.integers(len(entry["captions"])))]
                    return dict(waveform=waveform, caption=caption, index=index, bad=encode_events(skipped))
            skipped.append(known)
            if len(self._bad) >= len(self.entries):
                break
        raise AudioSepError(
            f"{len(self._bad)} clips of {self.datafiles} could not be read or are bad, and item {i} found no "
            f"usable replacement in {len(skipped)} tries (the last: {skipped[-1] if skipped else '-'}): check the "
            "audio files"
        )

    def _read(self, index: int, path: str, rng: np.random.Generator) -> torch.Tensor:
        """A random segment of clip ``index``, or :class:`BadClip`.

        Faults of the whole file (no readable header, a WAV shorter than its header says, all
        silent) are remembered, so such a file is opened once per worker process; faults of a
        segment (a decoding error, a short read, NaN/Inf) are not, so that whether another
        segment of the file is used never depends on what a worker met before (determinism).
        """
        if index not in self._checked:  # first read here: the file-level checks
            try:
                audio_info(path)
            except AudioSepError as err:
                self._bad[index] = BadClip(path, "unreadable", str(err))
                raise self._bad[index] from err
            truncation = wav_truncation(path)
            if truncation:
                self._bad[index] = BadClip(path, "truncated", truncation)
                raise self._bad[index]
        try:
            waveform = read_random_segment(path, self.sample_rate, self.segment_samples, rng)
        except BadClip:
            raise
        except AudioSepError as err:
            raise BadClip(path, "unreadable", str(err)) from err
        if check_waveform(waveform, path) and index not in self._checked:
            whole, _ = load_audio(path, mono=True)  # a silent segment: is the whole file silent?
            if float(whole.abs().amax()) <= SILENCE_PEAK:  # (NaN elsewhere: not silent; NaN segments fail)
                self._bad[index] = BadClip(path, "silent", f"every sample is within +-{SILENCE_PEAK:g}")
                raise self._bad[index]
        self._checked.add(index)
        return waveform

    def get_infos(self) -> Dict[str, Any]:
        """Dataset name, task, licences and size (provenance for a published model)."""
        names = [info.get("dataset", Path(d).stem) for info, d in zip(self._infos, self.datafiles)]
        licenses = [lic for info in self._infos for lic in info.get("licenses", [])]
        return dict(
            dataset=self.dataset_name,
            sources=names,
            task="language-queried audio source separation",
            licenses=licenses,
            num_clips=len(self),
            sample_rate=self.sample_rate,
            segment_seconds=self.segment_seconds,
        )


class LASSEvalDataset(Dataset):
    """Fixed (mixture, target, query) evaluation examples.

    Reads an evaluation list in the common format (see :mod:`.evallist`): ``mixture-{idx}.wav``
    and ``segment-{idx}.wav`` next to a CSV with at least ``idx`` and ``caption``. The
    released benchmark is read into the same class by
    :func:`asteroid_audiosep.data.benchmark.released_benchmark_dataset`.

    Args:
        csv_path: the evaluation list's CSV.
        query_column: the CSV column used as the text query (see :attr:`query_columns`).
        sample_rate: resample to this rate (None: keep the files' rate).
        skip_missing: drop examples whose files are missing (with a warning) instead of raising.
        aggregation: how the evaluation combines per-example scores: ``"mean"`` over
            examples, ``"class_mean"`` (mean per class, then over classes) or
            ``"class_median"`` (median per class, then mean over classes).

    Attributes:
        query_columns: the text columns available as queries.
        items: the :class:`~.evallist.EvalItem` examples.
    """

    AGGREGATIONS = ("mean", "class_mean", "class_median")

    def __init__(
        self,
        csv_path: PathLike,
        query_column: str = "caption",
        sample_rate: Optional[int] = None,
        skip_missing: bool = False,
        aggregation: str = "mean",
    ):
        super().__init__()
        self._setup(read_eval_list(csv_path), query_column, sample_rate, skip_missing, aggregation, str(csv_path))

    @classmethod
    def from_items(
        cls,
        items: Sequence[EvalItem],
        query_column: str = "caption",
        sample_rate: Optional[int] = None,
        skip_missing: bool = False,
        aggregation: str = "mean",
        name: str = "LASS evaluation",
    ) -> "LASSEvalDataset":
        """Build the dataset from already parsed items (used by the released-benchmark reader)."""
        dataset = cls.__new__(cls)
        Dataset.__init__(dataset)
        dataset._setup(list(items), query_column, sample_rate, skip_missing, aggregation, name)
        return dataset

    def _setup(self, items, query_column, sample_rate, skip_missing, aggregation, name):
        if aggregation not in self.AGGREGATIONS:
            raise AudioSepError(f"unknown aggregation {aggregation!r}; choose one of {self.AGGREGATIONS}")
        if not items:
            raise AudioSepError(f"the evaluation list {name} has no example")
        columns = [c for c in items[0].queries]
        if query_column not in columns:
            raise AudioSepError(f"{name} has no query column {query_column!r}; available: {columns}")
        self.name = name
        self.query_column = query_column
        self.query_columns = columns
        self.sample_rate = sample_rate
        self.aggregation = aggregation
        missing = [str(p) for it in items for p in (it.mixture, it.target) if not p.is_file()]
        if missing:
            report_missing(missing, 2 * len(items), name, skip_missing)
            items = [it for it in items if it.mixture.is_file() and it.target.is_file()]
            if not items:
                raise AudioSepError(f"no example of {name} has its audio files")
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, path: Path) -> torch.Tensor:
        wav, _ = load_audio(path, sample_rate=self.sample_rate, mono=True)
        return wav[0]

    def __getitem__(self, i: int) -> Dict[str, Any]:
        """Example ``i``.

        Returns:
            dict with ``mixture`` and ``target`` ((time,) float32, mono, cut to the shorter of
            the two), ``query`` (str), ``id`` (str) and ``class`` (str, "" when none).
        """
        item = self.items[i]
        mixture, target = self._load(item.mixture), self._load(item.target)
        if mixture.shape[-1] != target.shape[-1]:
            length = min(mixture.shape[-1], target.shape[-1])
            mixture, target = mixture[:length], target[:length]
        return {"mixture": mixture, "target": target, "query": item.queries[self.query_column],
                "id": item.id, "class": item.group}

    def queries(self) -> List[str]:
        """Every distinct query text of the chosen column, sorted (to pre-compute embeddings)."""
        return sorted({it.queries[self.query_column] for it in self.items})

    def get_infos(self) -> Dict[str, Any]:
        """Name, task, size, query column and aggregation rule."""
        return dict(
            dataset=self.name,
            task="language-queried audio source separation",
            licenses=[],
            num_examples=len(self),
            query_column=self.query_column,
            aggregation=self.aggregation,
        )
