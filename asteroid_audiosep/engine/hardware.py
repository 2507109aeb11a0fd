"""Which processes and devices a training run uses: the ``training`` section's hardware keys
turned into Lightning Trainer arguments, and this process's rank before the process group exists."""
import os
from typing import Any, Dict

import torch

from ..errors import AudioSepError

PRECISIONS = ("auto", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")

_RANK_VARIABLES = ("RANK", "SLURM_PROCID")


def process_rank() -> int:
    """This process's global rank, read from the launcher's environment before the process group
    exists: torchrun's ``RANK``, SLURM's ``SLURM_PROCID``, or for Lightning's own launcher
    ``NODE_RANK * LOCAL_WORLD_SIZE + LOCAL_RANK`` (0 when launched alone)."""
    for var in _RANK_VARIABLES:
        value = os.environ.get(var, "")
        if value.strip().isdigit():
            return int(value)
    node = int(os.environ["NODE_RANK"]) if os.environ.get("NODE_RANK", "").isdigit() else 0
    local = int(os.environ["LOCAL_RANK"]) if os.environ.get("LOCAL_RANK", "").isdigit() else 0
    per_node = os.environ.get("LOCAL_WORLD_SIZE", "")
    per_node = int(per_node) if per_node.isdigit() else max(torch.cuda.device_count(), 1)
    return node * per_node + local


def is_main_process() -> bool:
    """Whether this process is global rank 0 (the one that writes files)."""
    return process_rank() == 0


class Hardware(dict):
    """Resolved ``accelerator``, ``devices``, ``num_nodes``, ``strategy``, ``precision``,
    ``sync_batchnorm`` and ``world_size`` (a dict with attribute access)."""

    __getattr__ = dict.__getitem__


def resolve_hardware(training: Dict[str, Any]) -> Hardware:
    """Turn the training section's hardware keys into Trainer arguments.

    Raises:
        AudioSepError: GPUs asked for but none is visible, or an impossible combination.
    """
    accelerator = str(training["accelerator"]).lower()
    devices, num_nodes = training["devices"], int(training["num_nodes"])
    if not isinstance(devices, int) or devices < 0:
        raise AudioSepError(f"training.devices must be a number of GPUs per node (0: CPU), got {devices!r}")
    if num_nodes < 1:
        raise AudioSepError(f"training.num_nodes must be >= 1, got {num_nodes}")
    cuda = torch.cuda.is_available()
    if accelerator == "auto":
        accelerator = "gpu" if devices > 0 else "cpu"
    if accelerator in ("gpu", "cuda"):
        accelerator = "gpu"
        if not cuda:
            raise AudioSepError(
                f"training.devices={devices} asks for GPUs but no GPU is visible: use --ngpu 0 to train "
                "on the CPU (or training.accelerator: cpu with training.devices: N for N CPU processes)"
            )
        devices = max(devices, 1)
        if devices > torch.cuda.device_count():
            raise AudioSepError(f"training.devices={devices} but only {torch.cuda.device_count()} GPU(s) "
                                "are visible: lower --ngpu")
    elif accelerator == "cpu":
        devices = max(devices, 1)
    else:
        raise AudioSepError(f"training.accelerator must be auto, gpu or cpu, got {training['accelerator']!r}")
    world_size = devices * num_nodes
    strategy = training["strategy"]
    if strategy == "auto" and world_size > 1:
        strategy = "ddp"
    sync = training["sync_batchnorm"]
    if sync == "auto":
        sync = accelerator == "gpu" and world_size > 1
    elif sync and accelerator != "gpu":
        raise AudioSepError(
            "training.sync_batchnorm: true needs GPUs (PyTorch's SyncBatchNorm has no CPU kernel): "
            "set it to auto or false"
        )
    precision = str(training["precision"])
    if precision not in PRECISIONS:
        raise AudioSepError(f"training.precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if accelerator == "gpu":
            precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        else:
            precision = "32-true"
    elif accelerator == "cpu" and precision in ("16-mixed", "16-true"):
        raise AudioSepError(f"training.precision {precision} needs a GPU: use 32-true or bf16-mixed on the CPU")
    return Hardware(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                    precision=precision, sync_batchnorm=bool(sync), world_size=world_size)
