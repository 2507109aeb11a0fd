"""Keep large freed CPU blocks mapped for reuse, so inference does not page-fault on every tensor.

glibc serves every allocation above 32 MB with a fresh ``mmap`` and unmaps it when freed. A
separator's feature maps are hundreds of MB each and are freed and re-allocated for every
layer and every chunk, so the kernel zero-fills them page by page each time: on a small CPU
that costs as much as the convolutions themselves. :func:`retain_freed_memory` raises glibc's
mmap and trim thresholds so that such blocks come from the heap and stay mapped once freed.
Resident memory then stays at the peak working set (it does not grow with the input length).
Set ``ASTEROID_AUDIOSEP_RETAIN_MEMORY=0`` to leave the allocator alone.

The flip side: freed memory is never given back, and the heap is only reused where a freed
hole is large enough. A loop that frees its large buffers every step but keeps one small
block per step (a result appended to a list) leaves each step's holes pinned below that block,
so the heap grows with the number of steps. Loops over a file's windows or chunks therefore
write their results into buffers allocated once (see ``tagging.window_embeddings``).

This is a process-wide choice, so the library never makes it by itself: the entry points do
(the ``asteroid-audiosep`` command, the recipe's training/evaluation/enhancement steps, the
benchmarks). A Python program that separates long files calls it once at start-up.
"""

import ctypes
import os
import platform

__all__ = ["retain_freed_memory", "trim_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = (1 << 31) - 1  # the largest value mallopt accepts (an int)

_state = {"done": False, "active": False}


def retain_freed_memory() -> bool:
    """Raise glibc's mmap/trim thresholds once per process (Linux with glibc only).

    Returns:
        Whether the allocator now keeps large freed blocks (False where unsupported or
        disabled by ``ASTEROID_AUDIOSEP_RETAIN_MEMORY=0``).
    """
    if _state["done"]:
        return _state["active"]
    _state["done"] = True
    if os.environ.get("ASTEROID_AUDIOSEP_RETAIN_MEMORY", "1").strip().lower() in (
        "0",
        "false",
        "no",
    ):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _state["active"] = bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)
    )
    return _state["active"]


def trim_freed_memory() -> bool:
    """Give the heap pages freed so far back to the system now (glibc's ``malloc_trim(0)``,
    which trims whatever :func:`retain_freed_memory` set): for a long-lived server, after each
    request, so that its memory does not creep up request after request.

    Returns:
        Whether anything could be trimmed (False where the C library is not glibc).
    """
    trim = _glibc_function("malloc_trim")
    return bool(trim(0)) if trim is not None else False


def _glibc_function(name: str):
    """A function of glibc through ctypes, or None where the C library is not glibc."""
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):  # macOS, musl, Windows
        return None
