"""Training engine: the Lightning system, batch formation, optimiser, callbacks, packaging."""
from .batching import ShardSampler, StepBatchSampler, StreamDataset, collate_eval
from .callbacks import (
    BatchTrace,
    StepLineProgress,
    StepProgressBar,
    StepRateLogger,
    ValidatedCheckpoint,
    ValidationLog,
)
from .faults import AtomicCheckpointIO, NonFiniteGuard
from .optim import WarmupSchedule, make_optimizer, make_scheduler
from .package import (
    export_model_package,
    load_training_checkpoint,
    model_state_from_checkpoint,
)
from .preemption import PreemptionCheckpoint, TrainingInterrupted
from .system import AudioSepSystem

__all__ = [
    "AtomicCheckpointIO",
    "AudioSepSystem",
    "BatchTrace",
    "NonFiniteGuard",
    "PreemptionCheckpoint",
    "ShardSampler",
    "StepBatchSampler",
    "StepLineProgress",
    "StepProgressBar",
    "StepRateLogger",
    "StreamDataset",
    "TrainingInterrupted",
    "ValidatedCheckpoint",
    "ValidationLog",
    "WarmupSchedule",
    "collate_eval",
    "export_model_package",
    "load_training_checkpoint",
    "make_optimizer",
    "make_scheduler",
    "model_state_from_checkpoint",
]
