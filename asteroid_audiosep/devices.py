"""Device choice, one rule for the CLI, the API and the recipe's evaluation."""
from typing import Optional, Union

import torch

from .errors import AudioSepError


def resolve_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when available, else CPU; a requested CUDA device must exist.

    Raises:
        AudioSepError: CUDA asked for but not available, or an unknown device name.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise AudioSepError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AudioSepError(f"device {str(device)!r} was requested but no CUDA GPU is available: "
                                "use cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise AudioSepError(f"device {str(device)!r}: only {torch.cuda.device_count()} GPU(s) visible")
    return device
