"""How batches are formed: a resumable, rank-sharded training order that is a function of
(seed, step), and padded validation batches.

Training data is treated as a *stream*: the epochs of the dataset laid end to end, epoch ``e``
in the order the dataset gives after ``set_epoch(e)`` (for :class:`~asteroid_audiosep.data.
LASSTrainDataset` a permutation drawn from ``(seed, epoch)``). With ``W`` ranks and ``B`` items
per rank, step ``s`` consumes the stream positions ``[s*B*W, (s+1)*B*W)`` and rank ``r`` takes
``s*B*W + r*B + j`` for ``j < B``; position ``p`` is item ``p % N`` of epoch ``p // N``. So

- which items a step sees depends only on ``(seed, step)``: a run resumed at step ``s`` reads
  exactly what the uninterrupted run would have read, nothing repeated, nothing skipped;
- ranks never share an item within an epoch and no item is dropped or padded: an epoch's last
  batch simply continues into the next epoch.
"""
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler

from ..errors import AudioSepError

#: (epoch, index within the epoch, stream position) of one training item.
StreamKey = Tuple[int, int, int]


def distributed_rank_and_size() -> Tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def stream_key(position: int, num_items: int) -> StreamKey:
    """The (epoch, index, position) of a stream position over a dataset of ``num_items``."""
    return position // num_items, position % num_items, position


class StepBatchSampler(Sampler):
    """Batches of stream keys for every training step from :attr:`start_step` on (see module doc).

    The sampler is endless unless ``max_steps`` is given (Lightning then sees an infinite
    epoch and stops at ``Trainer(max_steps=...)``). ``start_step`` is read when iteration
    starts: the training system sets it to the restored global step, so resuming needs no
    other state. The rank and world size are read at the same moment (from
    :mod:`torch.distributed`) unless given.

    Args:
        num_items: size of one epoch of the dataset.
        batch_size: items per step on each rank.
        start_step: first step to produce.
        max_steps: stop before this step (None: endless).
        rank: this process's rank (None: from the process group).
        world_size: number of ranks (None: from the process group).
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        start_step: int = 0,
        max_steps: Optional[int] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
    ):
        if num_items <= 0 or batch_size <= 0:
            raise AudioSepError(f"need a non-empty dataset and a positive batch size, got {num_items}, {batch_size}")
        self.num_items = int(num_items)
        self.batch_size = int(batch_size)
        self.start_step = int(start_step)
        self.max_steps = max_steps
        self.rank = rank
        self.world_size = world_size

    def resolved_rank_and_size(self) -> Tuple[int, int]:
        """The (rank, world size) this sampler shards for."""
        rank, size = distributed_rank_and_size()
        return (rank if self.rank is None else self.rank), (size if self.world_size is None else self.world_size)

    def batch_keys(self, step: int, rank: int = 0, world_size: int = 1) -> List[StreamKey]:
        """The stream keys of ``rank``'s batch at ``step``."""
        base = (step * world_size + rank) * self.batch_size
        return [stream_key(p, self.num_items) for p in range(base, base + self.batch_size)]

    def __iter__(self) -> Iterator[List[StreamKey]]:
        rank, size = self.resolved_rank_and_size()
        step = self.start_step
        while self.max_steps is None or step < self.max_steps:
            yield self.batch_keys(step, rank, size)
            step += 1


class StreamDataset(Dataset):
    """Addresses a dataset that has ``set_epoch`` by stream keys ``(epoch, index, position)``.

    Each worker process keeps its own copy of the wrapped dataset and switches its epoch when a
    key of another epoch arrives, so items depend on the key only, whatever the workers.

    Args:
        dataset: a dataset whose items depend on ``(epoch, index)`` (``set_epoch`` method), and
            return dicts.
    """

    def __init__(self, dataset: Dataset):
        if not hasattr(dataset, "set_epoch"):
            raise AudioSepError(f"{type(dataset).__name__} has no set_epoch(epoch): cannot address it by epoch")
        self.dataset = dataset
        self._epoch: Optional[int] = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: StreamKey) -> Dict[str, Any]:
        epoch, index, position = key
        if epoch != self._epoch:
            self.dataset.set_epoch(epoch)
            self._epoch = epoch
        item = dict(self.dataset[index])
        item["position"] = position
        return item


class ShardSampler(Sampler):
    """Indices ``rank, rank + W, rank + 2W, ...`` of a fixed set (validation without padding).

    Rank and world size are read from :mod:`torch.distributed` when iteration starts.

    Args:
        num_items: size of the set.
    """

    def __init__(self, num_items: int):
        self.num_items = int(num_items)

    def __iter__(self) -> Iterator[int]:
        rank, size = distributed_rank_and_size()
        return iter(range(rank, self.num_items, size))

    def __len__(self) -> int:
        rank, size = distributed_rank_and_size()
        return len(range(rank, self.num_items, size))


def collate_eval(items: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Batch evaluation items of different lengths: zero-pad at the end, keep the lengths.

    Args:
        items: dicts with ``mixture`` and ``target`` ((time,) tensors), ``query`` and ``id``.

    Returns:
        dict with ``mixture`` and ``target`` (batch, max_time), ``length`` (batch,) long,
        ``query`` and ``id`` (lists of str).
    """
    lengths = torch.tensor([int(it["mixture"].shape[-1]) for it in items])
    longest = int(lengths.max())

    def pad(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, (0, longest - x.shape[-1]))

    return dict(
        mixture=torch.stack([pad(it["mixture"]) for it in items]),
        target=torch.stack([pad(it["target"]) for it in items]),
        length=lengths,
        query=[it["query"] for it in items],
        id=[it["id"] for it in items],
    )
