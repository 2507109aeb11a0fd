"""Sharded tar archives (webdataset) of captioned clips: writing them from a datafile and
streaming random training segments from them."""
import io
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..audio import AUDIO_EXTENSIONS, load_audio, resample
from ..errors import AudioSepError
from ..fileio import atomic_write
from ..progress import progress
from .badclips import BadClip, check_waveform, encode_events
from .datafile import datafile_infos, read_datafile, write_json_atomic
from .datasets import crop_or_pad

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

#: Index file that :func:`write_shards` writes next to the shards.
SHARD_INDEX = "shards.json"
_AUDIO_KEYS = tuple(ext.lstrip(".") for ext in AUDIO_EXTENSIONS)


def _encode_flac(wav: torch.Tensor, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wav.numpy().T, sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def write_shards(
    datafile: PathLike,
    out_dir: PathLike,
    max_count: int = 1000,
    sample_rate: Optional[int] = None,
    prefix: str = "shard",
) -> List[Path]:
    """Pack the clips of a datafile into webdataset tar shards.

    Each sample holds the audio (the original file's bytes under its extension, or, with
    ``sample_rate``, a 16-bit FLAC resampled to that rate, mono) and a ``json`` with
    ``captions``, ``labels``, the original ``wav`` path and the entry ``index``. Missing or
    unreadable clips are logged and left out. Each shard is written to a temporary file
    and renamed; ``shards.json`` (shard names, counts, every caption, provenance) is written
    last. Shards are reproducible (fixed member times).

    Args:
        datafile: the datafile to pack.
        out_dir: folder receiving ``{prefix}-000000.tar``, ... and ``shards.json``.
        max_count: samples per shard.
        sample_rate: re-encode audio at this rate (None: keep the files as they are).
        prefix: file name prefix of the shards.

    Returns:
        Paths of the written shards.

    Raises:
        AudioSepError: ``max_count`` < 1, or no clip could be packed.
    """
    import webdataset as wds  # optional dependency (``data`` extra)

    if max_count < 1:
        raise AudioSepError(f"max_count must be >= 1, got {max_count}")
    entries = read_datafile(datafile)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards: List[Dict[str, Any]] = []
    paths: List[Path] = []
    writer, shard, count, skipped = None, None, 0, 0

    def close_shard():
        nonlocal writer, shard
        if writer is None:
            return
        writer.close()
        shard.__exit__(None, None, None)  # renamed into place
        final = out_dir / f"{prefix}-{len(paths):06d}.tar"
        paths.append(final)
        shards.append({"url": final.name, "count": count})
        writer, shard = None, None

    try:
        for index, entry in enumerate(progress(entries, desc="writing shards", unit="clip")):
            path = Path(entry["wav"])
            try:
                if sample_rate is None:
                    sf.info(str(path))  # fails on missing and corrupt files
                    audio_key, audio = path.suffix.lower().lstrip("."), path.read_bytes()
                    if audio_key not in _AUDIO_KEYS:
                        raise AudioSepError(f"unsupported audio extension {path.suffix}")
                else:
                    wav, _ = load_audio(path, sample_rate=sample_rate, mono=True)
                    audio_key, audio = "flac", _encode_flac(wav, sample_rate)
            except (AudioSepError, OSError, RuntimeError) as err:
                logger.warning("leaving out %s: %s", path, err)
                skipped += 1
                continue
            if writer is None:
                shard = atomic_write(out_dir / f"{prefix}-{len(paths):06d}.tar", "wb")
                writer = wds.TarWriter(shard.__enter__(), encoder=False, mtime=0.0)
                count = 0
            meta = {"captions": entry["captions"], "labels": entry["labels"], "wav": str(path), "index": index}
            writer.write({"__key__": f"{index:09d}", audio_key: audio, "json": json.dumps(meta).encode("utf-8")})
            count += 1
            if count >= max_count:
                close_shard()
        close_shard()
    except BaseException as err:
        if writer is not None:
            writer.close()
            shard.__exit__(type(err), err, err.__traceback__)  # the partial shard is removed
        raise
    if not paths:
        raise AudioSepError(f"no clip of {datafile} could be packed into shards")
    if skipped:
        logger.warning("%d of %d clips of %s were left out of the shards", skipped, len(entries), datafile)
    captions = sorted({c for e in entries for c in e["captions"]})
    write_json_atomic(
        out_dir / SHARD_INDEX,
        {"shards": shards, "num_samples": sum(s["count"] for s in shards), "captions": captions,
         "infos": datafile_infos(datafile), "sample_rate": sample_rate},
    )
    return paths


def _list_shards(shards: Union[PathLike, Sequence[PathLike]]) -> Tuple[List[str], Optional[dict]]:
    """Shard paths from a folder, an index file, a brace pattern, or a list of paths."""
    if isinstance(shards, (list, tuple)):
        return [str(s) for s in shards], None
    path = Path(shards)
    if path.is_dir():
        path = path / SHARD_INDEX if (path / SHARD_INDEX).is_file() else path
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.tar"))
            if not found:
                raise AudioSepError(f"no .tar shard in {path}")
            return found, None
    if path.suffix == ".json":
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            return [str(path.parent / s["url"]) for s in index["shards"]], index
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise AudioSepError(f"cannot read shard index {path}: {err}") from err
    from webdataset.shardlists import expand_urls

    return list(expand_urls(str(shards))), None


def _ends_cleanly(path: str) -> bool:
    """Whether a tar file ends with the end-of-archive blocks (two zero blocks of 512 bytes)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < 1024 or f.tell() % 512:
                return False
            f.seek(-1024, os.SEEK_END)
            return f.read(1024) == bytes(1024)
    except OSError:
        return False


class LASSShardDataset(IterableDataset):
    """Random training segments streamed from webdataset shards (see :func:`write_shards`).

    Yields the same items as :class:`~.datasets.LASSTrainDataset`: ``waveform`` (1, T)
    float32 mono at ``sample_rate``, a random ``caption`` and the clip ``index``. Shards
    are split across distributed ranks and data-loader workers, and shuffled per epoch
    (:meth:`set_epoch`) from ``seed``; samples are further shuffled in a buffer of
    ``shuffle_buffer`` items. Bad samples (unreadable, silent, non-finite audio) and the rest of
    a corrupt or truncated shard are skipped and named in the next item's ``bad`` field (see
    :mod:`.badclips`; the training process counts and logs them).

    With several ranks the shards rarely split into equal sample counts, and ranks that run
    out early stall distributed training; set ``epoch_length`` then: every rank yields exactly
    that many items per epoch, each worker drawing shards at random (with replacement).

    Args:
        shards: a folder of shards (with or without ``shards.json``), an index file, a brace
            pattern (``"out/shard-{000000..000009}.tar"``) or a list of tar paths.
        sample_rate: output sample rate.
        segment_seconds: segment length in seconds.
        seed: seed of every random draw.
        shuffle: shuffle shard order and samples.
        shuffle_buffer: size of the sample shuffle buffer (0: none).
        epoch_length: items per rank per epoch, drawn from randomly resampled shards (None:
            one pass over this rank's share of the shards).

    Attributes:
        shards: the shard paths.
        num_samples: number of samples when the index file is known, else None.
    """

    dataset_name = "LASS (shards)"

    def __init__(
        self,
        shards: Union[PathLike, Sequence[PathLike]],
        sample_rate: int,
        segment_seconds: float = 5.0,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_buffer: int = 256,
        epoch_length: Optional[int] = None,
    ):
        super().__init__()
        self.shards, self._index = _list_shards(shards)
        if not self.shards:
            raise AudioSepError(f"no shard found for {shards}")
        missing = [s for s in self.shards if not os.path.isfile(s)]
        if missing:
            raise AudioSepError(f"{len(missing)} of {len(self.shards)} shards are missing: {missing[:5]}")
        self.sample_rate = int(sample_rate)
        self.segment_seconds = float(segment_seconds)
        self.segment_samples = int(round(self.segment_seconds * self.sample_rate))
        self.seed = int(seed)
        self.shuffle = shuffle
        self.shuffle_buffer = int(shuffle_buffer)
        self.num_samples = self._index.get("num_samples") if self._index else None
        if epoch_length is not None and epoch_length < 1:
            raise AudioSepError(f"epoch_length must be >= 1, got {epoch_length}")
        self.epoch_length = epoch_length
        self.epoch = 0
        self._pending: List[BadClip] = []  # skips not yet reported by an item (this process)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shard order, segments and captions the stream follows."""
        self.epoch = int(epoch)

    def captions(self) -> List[str]:
        """Every caption of the shards (from the index file, else by reading the shards)."""
        if self._index and "captions" in self._index:
            return list(self._index["captions"])
        captions = set()
        for sample in self._samples(self.shards):
            try:
                captions.update(json.loads(sample["json"])["captions"])
            except (KeyError, ValueError):
                continue
        for bad in self._pending:  # no item to carry them here: log them
            logger.warning("bad shard found while listing captions: %s", bad)
        self._pending = []
        return sorted(captions)

    @staticmethod
    def _position() -> Tuple[int, int, int, int]:
        """(rank, world size, worker id, number of workers) of the calling process."""
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        worker = get_worker_info()
        wid, nworkers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        return rank, world, wid, nworkers

    def _my_shards(self) -> List[str]:
        shards = list(self.shards)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(shards))
            shards = [shards[k] for k in order]
        rank, world, wid, nworkers = self._position()
        part = shards[rank * nworkers + wid :: world * nworkers]
        if not part:
            logger.warning("%d shards for %d ranks x %d workers: this one gets none", len(shards), world, nworkers)
        return part

    def _resampled_shards(self, quota: int) -> Iterator[str]:
        """Shards drawn at random, for at most ``quota`` items (a shard yields at least one
        item unless it is unreadable: past ``quota + 10 * len(shards)`` draws, give up)."""
        rank, _, wid, _ = self._position()
        rng = np.random.default_rng([self.seed, self.epoch, rank, wid, 2])
        for _ in range(quota + 10 * len(self.shards)):
            yield self.shards[int(rng.integers(len(self.shards)))]
        raise AudioSepError(f"the shards {self.shards[:3]}... yield no readable sample; see the warnings")

    def _samples(self, shards: Sequence[str]) -> Iterator[Dict[str, Any]]:
        """The raw samples of ``shards``. A corrupt or truncated shard (a read error, fewer samples
        than the index file lists, or no tar end-of-archive blocks) is recorded as one
        ``corrupt_shard`` event weighed by the samples lost (when the index gives its count)."""
        import webdataset as wds

        counts = {str(s.get("url", "")): int(s.get("count", 1)) for s in (self._index or {}).get("shards", [])}
        openings: List[Dict[str, Any]] = []  # per shard opened, in order: url, samples read, reported
        cursor = 0  # the opening whose samples arrive now

        def report(opening: Dict[str, Any], why: str) -> None:
            if not opening["reported"]:
                opening["reported"] = True
                expected = counts.get(Path(opening["url"]).name)
                lost = max(expected - opening["read"], 1) if expected is not None else 1
                self._pending.append(BadClip(opening["url"], "corrupt_shard",
                                             f"{why} after {opening['read']} samples", weight=lost))

        def corrupt(err: Exception) -> bool:
            report(openings[-1], str(err.args[0]) if err.args else type(err).__name__)
            logger.debug("skipping the rest of a corrupt shard: %s", err)
            return True

        def finish(opening: Dict[str, Any]) -> None:
            expected = counts.get(Path(opening["url"]).name)
            if expected is not None and opening["read"] < expected:
                report(opening, f"the index lists {expected} samples, it ended")
            elif expected is None and not _ends_cleanly(opening["url"]):
                report(opening, "no tar end-of-archive blocks (truncated)")

        def opened():
            for url in shards:
                openings.append(dict(url=url, read=0, reported=False))
                yield {"url": url}

        for sample in wds.tarfile_samples(opened(), handler=corrupt):
            while openings[cursor]["url"] != sample.get("__url__") and cursor + 1 < len(openings):
                finish(openings[cursor])
                cursor += 1
            openings[cursor]["read"] += 1
            yield sample
        for opening in openings[cursor:]:
            finish(opening)

    def _decode(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        name = f"{sample.get('__url__', '')}#{sample.get('__key__')}"
        try:
            meta = json.loads(sample["json"])
            captions = meta["captions"]
            key = next(k for k in _AUDIO_KEYS if k in sample)
            data, rate = sf.read(io.BytesIO(sample[key]), dtype="float32", always_2d=True)
            if data.shape[0] == 0 or not captions:
                raise AudioSepError("empty audio or no caption")
        except Exception as err:  # noqa: BLE001 - corrupt audio or json must never stop the epoch
            raise BadClip(name, "unreadable", f"{type(err).__name__}: {err}") from err
        wav = torch.from_numpy(np.ascontiguousarray(data.T)).mean(dim=0, keepdim=True)
        if check_waveform(wav, name):  # the whole clip is here: a silent one is a silent file
            raise BadClip(name, "silent", "every sample is digital silence")
        wav = resample(wav, rate, self.sample_rate)
        seed = zlib.crc32(f"{sample.get('__url__', '')}/{sample['__key__']}".encode())
        rng = np.random.default_rng([self.seed, self.epoch, seed])
        caption = captions[int(rng.integers(len(captions)))]
        return dict(waveform=crop_or_pad(wav, self.segment_samples, rng), caption=caption,
                    index=int(meta.get("index", -1)))

    def _decoded(self, sample: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """The item of a sample; None for a bad sample (kept for the next item to report)."""
        try:
            return self._decode(sample)
        except BadClip as err:
            self._pending.append(err)
            logger.debug("skipping bad sample %s", err)
            return None

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        if self.epoch_length is None:
            yield from self._stream(self._my_shards())
            return
        _, _, wid, nworkers = self._position()
        quota = self.epoch_length // nworkers + (wid < self.epoch_length % nworkers)
        if quota == 0:
            return
        for count, item in enumerate(self._stream(self._resampled_shards(quota)), start=1):
            yield item
            if count >= quota:
                return

    def _stream(self, shards) -> Iterator[Dict[str, Any]]:
        """Items, each carrying (``bad``) the skips met since the previous one. An item is held
        back until the next one is decoded, so that the skips after the last one (the end of a
        truncated shard) still reach the training process with it."""
        held = None
        for item in self._items(shards):
            if held is not None:
                held["bad"], self._pending = encode_events(self._pending), []
                yield held
            held = item
        if held is not None:
            held["bad"], self._pending = encode_events(self._pending), []
            yield held
        for bad in self._pending:  # this worker served no item at all: nothing can carry them
            logger.warning("bad training data (no item of this worker reports it): %s", bad)
        self._pending = []

    def _items(self, shards) -> Iterator[Dict[str, Any]]:
        rank, _, wid, _ = self._position()
        rng = np.random.default_rng([self.seed, self.epoch, rank, wid, 1])
        buffer: List[Dict[str, Any]] = []  # encoded samples: small, decoded when drawn
        for sample in self._samples(shards):
            if self.shuffle and self.shuffle_buffer > 1:
                buffer.append(sample)
                if len(buffer) < self.shuffle_buffer:
                    continue
                sample = buffer.pop(int(rng.integers(len(buffer))))
            item = self._decoded(sample)
            if item is not None:
                yield item
        while buffer:
            item = self._decoded(buffer.pop(int(rng.integers(len(buffer)))))
            if item is not None:
                yield item

    def get_infos(self) -> Dict[str, Any]:
        """Dataset name, task, licences and size (provenance for a published model)."""
        infos = (self._index or {}).get("infos", {})
        return dict(
            dataset=self.dataset_name,
            sources=[infos.get("dataset", "unknown")],
            task="language-queried audio source separation",
            licenses=infos.get("licenses", []),
            num_clips=self.num_samples,
            num_shards=len(self.shards),
            sample_rate=self.sample_rate,
            segment_seconds=self.segment_seconds,
        )
