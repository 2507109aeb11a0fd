"""Progress display for every long job of the package and the recipe.

On a terminal: tqdm bars. Anywhere else (log files, SLURM, CI, ``./run.sh`` which tees to
``exp/*/log``): plain timestamped lines, one every ``PLAIN_PERCENT`` % of the work or
``PLAIN_SECONDS`` seconds, whichever comes first, never a carriage return. Set
``ASTEROID_AUDIOSEP_PROGRESS=bars|lines|off`` to force a style.
"""
import os
import sys
import time
from typing import Iterable, Optional, TextIO

PLAIN_PERCENT = 10
PLAIN_SECONDS = 60.0


def progress_style(stream: Optional[TextIO] = None) -> str:
    """``"bars"`` on a terminal, ``"lines"`` otherwise (or what the environment forces)."""
    forced = os.environ.get("ASTEROID_AUDIOSEP_PROGRESS", "").strip().lower()
    if forced in ("bars", "lines", "off"):
        return forced
    stream = sys.stderr if stream is None else stream
    try:
        return "bars" if stream.isatty() else "lines"
    except (AttributeError, ValueError):
        return "lines"


def _format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class LineProgress:
    """A tqdm-like counter that prints plain lines (the subset of tqdm's interface used here)."""

    def __init__(
        self,
        iterable: Optional[Iterable] = None,
        total: Optional[float] = None,
        desc: str = "",
        unit: str = "it",
        initial: float = 0,
        disable: bool = False,
        file: Optional[TextIO] = None,
        percent: float = PLAIN_PERCENT,
        seconds: float = PLAIN_SECONDS,
        **_ignored,
    ):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total = total
        self.desc, self.unit = desc, unit
        self.n = initial
        self.disable = disable
        self.file = file
        self.percent, self.seconds = percent, seconds
        self.postfix = ""
        self._start = self._last_time = time.monotonic()
        self._start_n = initial
        self._last_step = self._bucket(initial)
        self._closed = False
        self._emitted_n = None

    # tqdm-compatible interface -------------------------------------------------------------
    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __len__(self):
        return int(self.total) if self.total is not None else len(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        bucket = self._bucket(self.n)
        if bucket > self._last_step or now - self._last_time >= self.seconds:
            self._last_step, self._last_time = bucket, now
            self._emit()

    def reset(self, total: Optional[float] = None) -> None:
        self.n = self._start_n = 0
        self.total = total
        self._start = self._last_time = time.monotonic()
        self._last_step = 0

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def write(self, s: str) -> None:
        self._print(s)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.n != self._start_n and self.n != self._emitted_n:
            self._emit()

    # ---------------------------------------------------------------------------------------
    def _bucket(self, n: float) -> int:
        if not self.total:
            return 0
        return int(100.0 * min(n, self.total) / self.total // self.percent)

    def line(self) -> str:
        elapsed = time.monotonic() - self._start
        done = self.n - self._start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.desc}:" if self.desc else ""]
        if self.total:
            parts.append(f"{self.n:g}/{self.total:g} {self.unit} ({100.0 * self.n / self.total:.0f}%)")
        else:
            parts.append(f"{self.n:g} {self.unit}")
        parts.append(f"elapsed {_format_duration(elapsed)}")
        if self.total and rate > 0 and self.n < self.total:
            parts.append(f"eta {_format_duration((self.total - self.n) / rate)}")
        if rate > 0:
            parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 else f"{1 / rate:.3g} s/{self.unit}")
        if self.postfix:
            parts.append(f"[{self.postfix}]")
        return " ".join(p for p in parts if p)

    def _emit(self) -> None:
        self._emitted_n = self.n
        if not self.disable:
            self._print(self.line())

    def _print(self, text: str) -> None:
        stream = self.file if self.file is not None else sys.stderr
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} {text}", file=stream, flush=True)


def progress(iterable: Optional[Iterable] = None, *, total: Optional[float] = None, desc: str = "",
             unit: str = "it", disable: bool = False, leave: bool = True, **kwargs):
    """A progress display over ``iterable`` (or a manual counter with ``total``): a tqdm bar on a
    terminal, :class:`LineProgress` lines otherwise. Accepts tqdm's common arguments."""
    style = progress_style(kwargs.get("file"))
    if style == "off":
        disable = True
    if style == "bars":
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, leave=leave,
                    dynamic_ncols=True, **kwargs)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, disable=disable, **kwargs)
