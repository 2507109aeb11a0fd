"""The dtype the separation network computes in, from a precision name and the hardware.

``precision`` is ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``:

- ``auto``: on a CUDA GPU bf16 where the GPU supports it, else fp32; on a CPU bf16 when it
  computes bf16 natively (AVX512_BF16 or AMX-BF16), else fp32; fp32 on other devices.
- ``bf16`` on a CPU without native bf16 runs (emulated), with one warning that it is slower
  than fp32.
- ``fp16`` on a CPU is refused unless the CPU has AMX-FP16: AVX512-FP16 alone does not make
  oneDNN's fp16 convolutions fast (measured on an Intel Sapphire Rapids with avx512_fp16: a 3x3
  convolution at 0.5x its fp32 speed, bf16 at 6x), so the error names the faster choice.

The environment overrides the detection: ``AUDIOSEP_CPU_BF16=0/1``, ``AUDIOSEP_CPU_FP16=0/1``.
Only the network runs in the chosen dtype (under autocast, see
:func:`~asteroid_audiosep.apply.separate_segments`); the STFT, the mask arithmetic and the ISTFT
stay fp32. ``None`` (fp32) means autocast is off, so fp32 results are bit-identical to a run
without any precision setting.
"""

import os
import warnings
from functools import lru_cache
from typing import FrozenSet, Optional, Union

import torch

from .errors import AudioSepError

__all__ = [
    "PRECISIONS",
    "resolve_precision",
    "precision_name",
    "cpu_native_bf16",
    "cpu_native_fp16",
    "cpu_capability",
    "add_precision_arguments",
]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Legacy ``half`` values and spelled-out names.
_ALIASES = {
    False: "fp32", True: "fp16", "float32": "fp32", "bfloat16": "bf16", "float16": "fp16",
}
ENV_BF16 = "AUDIOSEP_CPU_BF16"
ENV_FP16 = "AUDIOSEP_CPU_FP16"
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_FP16_FLAGS = ("amx_fp16",)


@lru_cache(maxsize=1)
def _proc_cpu_flags() -> FrozenSet[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _torch_reports(name: str) -> bool:
    check = getattr(torch.cpu, name, None)  # private, but what torch's own dispatch uses
    try:
        return bool(check()) if check is not None else False
    except Exception:  # noqa: BLE001 - a probe must not fail the run
        return False


def _env_switch(name: str) -> Optional[bool]:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise AudioSepError(f"{name}={value!r}: set it to 1 or 0 (or unset it to detect the CPU)")


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512_BF16 or AMX-BF16); ``AUDIOSEP_CPU_BF16``
    overrides the detection."""
    forced = _env_switch(ENV_BF16)
    if forced is not None:
        return forced
    return (
        _torch_reports("_is_avx512_bf16_supported")
        or _torch_reports("_is_amx_tile_supported") and "amx_bf16" in _proc_cpu_flags()
        or any(flag in _proc_cpu_flags() for flag in _BF16_FLAGS)
    )


def cpu_native_fp16() -> bool:
    """Whether fp16 is fast on this CPU (AMX-FP16); ``AUDIOSEP_CPU_FP16`` overrides it."""
    forced = _env_switch(ENV_FP16)
    if forced is not None:
        return forced
    return _torch_reports("_is_amx_fp16_supported") or any(
        flag in _proc_cpu_flags() for flag in _FP16_FLAGS
    )


def cpu_capability() -> str:
    """One line on what this CPU offers, e.g. ``"AVX512, native bf16 (avx512_bf16 amx_bf16)"``."""
    try:
        vector = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001
        vector = "unknown"
    flags = [f for f in _BF16_FLAGS + ("avx512_fp16",) + _FP16_FLAGS if f in _proc_cpu_flags()]
    bf16 = "native bf16" if cpu_native_bf16() else "no native bf16"
    fp16 = ", fast fp16" if cpu_native_fp16() else ""
    forced = [n for n in (ENV_BF16, ENV_FP16) if os.environ.get(n, "").strip()]
    note = f" ({' '.join(flags)})" if flags else ""
    return f"{vector}, {bf16}{fp16}{note}" + (f" [{', '.join(forced)} set]" if forced else "")


def precision_name(precision: Union[str, bool, None], half: Union[str, bool, None] = None) -> str:
    """The canonical name (one of :data:`PRECISIONS`) of a precision and a legacy ``half`` value.

    Raises:
        AudioSepError: an unknown name, or ``half`` contradicting an explicit ``precision``.
    """
    name = _canonical(precision if precision is not None else "auto", "precision")
    if half is None:
        return name
    legacy = _canonical(half, "half")
    if name != "auto" and legacy != name:
        raise AudioSepError(f"half={half!r} contradicts precision={precision!r}: give only precision")
    return legacy


def _canonical(value, what: str) -> str:
    key = value.strip().lower() if isinstance(value, str) else value
    try:
        key = _ALIASES.get(key, key)
    except TypeError:  # unhashable
        pass
    if key not in PRECISIONS or (what == "half" and key == "auto"):
        choices = "True, False, 'fp16' or 'bf16'" if what == "half" else ", ".join(PRECISIONS)
        raise AudioSepError(f"unknown {what} {value!r}: use {choices}")
    return key


def resolve_precision(
    precision: Union[str, bool, None] = "auto",
    device: Union[str, torch.device] = "cpu",
    *,
    half: Union[str, bool, None] = None,
) -> Optional[torch.dtype]:
    """The autocast dtype for the separation network, or None for fp32 (autocast off).

    Args:
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (see the module docstring).
        device: where the network runs.
        half: the legacy setting (``False`` = fp32, ``True``/``"fp16"``, ``"bf16"``); it decides
            when ``precision`` is ``"auto"`` and must agree with any other ``precision``.

    Raises:
        AudioSepError: an unknown name, or fp16 on a CPU where it is slow (the message names
            the faster choice).
    """
    name = precision_name(precision, half)
    device = torch.device(device)
    if device.type == "cuda":
        if name == "auto":
            try:
                name = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
            except (RuntimeError, AssertionError):  # no usable GPU: fp32, the device check reports it
                name = "fp32"
        return _DTYPES[name]
    if device.type != "cpu":
        if name in ("bf16", "fp16"):
            warnings.warn(f"{name} is only used on CUDA GPUs and CPUs; running in fp32 on "
                          f"{device.type}", stacklevel=2)
        return None
    if name == "auto":
        name = "bf16" if cpu_native_bf16() else "fp32"
    elif name == "fp16" and not cpu_native_fp16():
        faster = "bf16 (native on this CPU)" if cpu_native_bf16() else "fp32 (the fastest here)"
        raise AudioSepError(
            f"fp16 is slower than fp32 on this CPU (no AMX-FP16; {cpu_capability()}): use "
            f"precision {faster} (or set {ENV_FP16}=1 to force fp16)"
        )
    elif name == "bf16" and not cpu_native_bf16():
        warnings.warn(
            f"bf16 requested on a CPU without native bf16 ({cpu_capability()}): it is emulated and "
            "slower than fp32 (use --precision fp32 or auto)",
            stacklevel=2,
        )
    return _DTYPES[name]


def add_precision_arguments(parser) -> None:
    """``--precision`` and its legacy alias ``--half`` on an argparse parser (separate, demo)."""
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="the network's precision: auto (bf16 on GPUs that support it and on "
                        "CPUs with native bf16, AVX512_BF16/AMX; else fp32), fp32, bf16 or fp16 "
                        "(default: %(default)s)")
    parser.add_argument("--half", nargs="?", const="fp16", choices=["fp16", "bf16"],
                        help="legacy alias: --half is --precision fp16, --half bf16 is --precision bf16")
