"""How many CPU threads to compute with: the cores actually free, unless the user says.

On a shared machine torch's default (one thread per core) oversubscribes the cores when other
processes run (measured on a busy 2-core machine: training about 20x slower with 2 threads than
with 1). :func:`choose_threads` takes the cores this process may run on
(``os.sched_getaffinity``) minus the load from other processes (the 1-minute load average),
at least 1; an explicit number, ``AUDIOSEP_NUM_THREADS`` or ``OMP_NUM_THREADS`` wins.
"""

import logging
import math
import os
from typing import Callable, Mapping, Optional, Set, Tuple

__all__ = ["ENV_THREADS", "choose_threads", "set_threads"]

ENV_THREADS = "AUDIOSEP_NUM_THREADS"
log = logging.getLogger("asteroid_audiosep")
_logged = False


def _affinity() -> Set[int]:
    try:
        return os.sched_getaffinity(0)
    except (AttributeError, OSError):  # not Linux
        return set(range(os.cpu_count() or 1))


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def choose_threads(
    requested: Optional[int] = None,
    *,
    environ: Optional[Mapping[str, str]] = None,
    affinity: Callable[[], Set[int]] = _affinity,
    load: Callable[[], float] = _load,
) -> Tuple[int, str]:
    """The thread count and why: ``requested``, the environment, or the free cores.

    Args:
        requested: a thread count the user gave (an option or a config key); None or 0: choose.
        environ: the environment (default ``os.environ``).
        affinity, load: the usable cores and the 1-minute load average (replaceable in tests).

    Returns:
        ``(threads, reason)``, threads >= 1.
    """
    from .errors import AudioSepError

    environ = os.environ if environ is None else environ
    if requested:
        if int(requested) < 1:
            raise AudioSepError(f"the thread count must be >= 1, got {requested}")
        return int(requested), "as requested"
    for name in (ENV_THREADS, "OMP_NUM_THREADS"):
        value = environ.get(name, "").strip()
        if value:
            if not value.isdigit() or int(value) < 1:
                raise AudioSepError(f"{name}={value!r}: set it to a whole number >= 1")
            return int(value), f"from {name}"
    cores = max(1, len(affinity()))
    busy = load()
    free = max(1, min(cores, cores - math.floor(busy + 0.5)))
    return free, f"{cores} usable cores, load average {busy:.1f}"


def set_threads(requested: Optional[int] = None, **kwargs) -> int:
    """:func:`choose_threads`, applied with ``torch.set_num_threads``; logged once per process."""
    import torch

    global _logged
    threads, reason = choose_threads(requested, **kwargs)
    torch.set_num_threads(threads)
    if not _logged:
        log.info("computing with %d CPU thread%s (%s)", threads, "s" * (threads != 1), reason)
        _logged = True
    return threads
