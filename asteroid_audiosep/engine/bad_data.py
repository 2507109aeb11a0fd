"""The training side of bad-clip handling: a Lightning callback that feeds every training batch
to a :class:`~asteroid_audiosep.data.badclips.BadClipTally` (counts, one log line per bad file,
the ``data.max_bad_fraction`` budget) and keeps the counts in checkpoints."""
from typing import Any, Dict

import pytorch_lightning as pl
import torch.distributed as dist

from ..data.badclips import DEFAULT_MAX_BAD_FRACTION, BadClipTally


class BadClipMonitor(pl.Callback):
    """Counts the clips the training set skipped, from the ``bad`` field of each batch.

    The data-loader workers put what they skipped into the items of the batch, so the counts
    add up over every worker; each rank counts its own batches and :meth:`report` adds the
    ranks up. The counts are saved with each checkpoint, so a resumed run goes on counting.

    Args:
        num_clips: size of the training set.
        max_bad_fraction: tolerated share of bad clips (``data.max_bad_fraction``); past it,
            the batch that crosses it stops training with an error naming the worst files.
    """

    def __init__(self, num_clips: int, max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION):
        self.tally = BadClipTally(num_clips, max_bad_fraction)

    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any,
                             batch_idx: int) -> None:
        self.tally.update(batch)

    def state_dict(self) -> Dict[str, Any]:
        return self.tally.state_dict()

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.tally.load_state_dict(state_dict)

    def report(self) -> Dict[str, Any]:
        """The counts of every rank (a collective call when distributed: call it on every rank)."""
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return self.tally.summary()
        states = [None] * dist.get_world_size()
        dist.all_gather_object(states, self.tally.state_dict())
        total = BadClipTally(self.tally.num_clips, self.tally.max_bad_fraction)
        total.merge(states)
        return total.summary()
