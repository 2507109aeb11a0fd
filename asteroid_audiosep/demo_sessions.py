"""The demo page under load: its queue's settings, one output folder per browser session and
its removal when the session ends, and a run's memory released when it ends.

Gradio serves a file to whoever asks for its path under its cache folder, so each session's
outputs go into a folder named by a random 128-bit token (never the session's id, which the
browser chooses) inside Gradio's cache: the URLs a session receives are the only way to its
files, and no other session is ever shown them. The folder is removed when the session ends
(the tab is closed or reloaded, or its connection drops: Gradio's heartbeat notices and runs
the page's ``unload`` event), all folders when the page stops. Gradio is imported only by the
functions that attach this to a page; :mod:`asteroid_audiosep.demo` builds the page.
"""
import argparse
import os
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Union

from .errors import AudioSepError

#: Runs separated at once: one, since a run already uses every core (torch's threads) and a
#: second would only share them while holding a second input and its outputs in memory.
DEFAULT_CONCURRENCY = 1
#: Runs that may wait in the queue; a run asked for while this many wait is refused at once.
DEFAULT_MAX_QUEUE = 8
#: Runs of one session whose outputs are kept (older ones of that session are deleted).
KEEP_RUNS = 8
#: Sessions whose page state (Gradio's per-session copy of the updated components, about 1.5 MB
#: each) stays in memory; beyond it the least recently used is forgotten (Gradio's
#: ``state_session_capacity``, 10000 by default). A session's state also goes when it ends.
STATE_SESSIONS = 200


@dataclass
class QueueSettings:
    """How the page's separation runs are queued (Gradio's queue).

    Attributes:
        concurrency: runs separated at once (the event's ``concurrency_limit``).
        max_queue: runs that may wait; when this many wait, a new run is refused with Gradio's
            "This application is currently busy. Please try again." (HTTP 503 ``queue_full``).
    """

    concurrency: int = DEFAULT_CONCURRENCY
    max_queue: int = DEFAULT_MAX_QUEUE

    def __post_init__(self):
        for name in ("concurrency", "max_queue"):
            if int(getattr(self, name)) < 1:
                raise AudioSepError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """The ``demo`` sub-command's queue options (``--concurrency``, ``--max-queue``)."""
        parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                            help="runs separated at once (default: %(default)s; each uses all --threads)")
        parser.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE,
                            help="runs that may wait; more are refused with 'currently busy' (default: %(default)s)")

    def markdown(self) -> str:
        """The queue's rule and the outputs' lifetime, as Markdown for the page (no user text)."""
        runs = "one run at a time" if self.concurrency == 1 else f"{self.concurrency} runs at a time"
        return (
            f"Runs of all visitors share one queue: {runs} (`--concurrency`), at most **{self.max_queue} "
            "waiting** (`--max-queue`); when that many wait, a new run is refused at once (\"currently "
            f"busy\"): try again a moment later. Your outputs (the last {KEEP_RUNS} runs) are yours only and "
            "stay downloadable until you close or reload this tab; then they are deleted."
        )


def release_memory() -> None:
    """Free a finished run's memory now: its cyclic garbage (matplotlib figures hold their pixels
    in reference cycles) and, with glibc, the heap pages it freed (``malloc_trim``; glibc keeps
    them otherwise, and the server's memory would creep up run after run)."""
    import gc

    from .cpu_memory import trim_freed_memory

    gc.collect()
    trim_freed_memory()


class SessionFolders:
    """One output folder per browser session, removed when the session ends.

    Thread-safe: Gradio runs the page's events in worker threads.

    Args:
        root: the folder that holds the sessions' folders (made if missing; removed by
            :meth:`close`). The page puts it inside Gradio's cache, which Gradio serves.
        keep_runs: runs of one session kept; older ones of that session are deleted.
    """

    def __init__(self, root: Union[str, Path], keep_runs: int = KEEP_RUNS):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep_runs = int(keep_runs)
        self._folders: Dict[str, Path] = {}
        self._runs: Dict[str, List[Path]] = {}
        self._lock = threading.Lock()
        self._ended: Dict[str, None] = {}  # sessions ended, newest last (a run may finish after its end)
        self._forget: List[Set[str]] = []  # sets of served paths that must forget a deleted file
        #: Paths Gradio's age-based cache cleaning must leave alone (live sessions' outputs).
        self.keep: Set[str] = set()
        #: Runs dropped because their session ended while they waited.
        self.dropped = 0

    @classmethod
    def in_gradio_cache(cls, keep_runs: int = KEEP_RUNS) -> "SessionFolders":
        """Session folders in a new folder of Gradio's cache (``GRADIO_TEMP_DIR``), which Gradio
        serves without copying; the page's other folders stay unreachable by URL."""
        from gradio.utils import get_upload_folder

        Path(get_upload_folder()).mkdir(parents=True, exist_ok=True)
        return cls(tempfile.mkdtemp(prefix="audiosep-sessions-", dir=get_upload_folder()), keep_runs)

    def track(self, *path_sets: Set[str]) -> None:
        """Sets of file paths (Gradio's temporary-file sets) from which a session's files are
        dropped when it ends, so that they do not grow with every run served."""
        self._forget.extend(path_sets)

    def served(self, session: Optional[str], folder: Path) -> bool:
        """A run's outputs in ``folder`` were written: True, and they are kept (:attr:`keep`)
        until ``session`` ends; False when it ended during the run (they are removed now, and
        the page must not send them)."""
        with self._lock:
            ended = session in self._ended
        if ended:
            self.end(session)
        else:
            self.keep.update(_files(folder))
        return not ended

    def new_run(self, session: Optional[str]) -> Optional[Path]:
        """A new, empty folder for one run of ``session`` (a session id; None: a session of its
        own), or None when the session has ended (its tab was closed while the run waited: the
        run is dropped). The session's runs beyond :attr:`keep_runs` are deleted, oldest first."""
        session = session or f"anonymous-{secrets.token_hex(8)}"
        with self._lock:
            if session in self._ended:
                self.dropped += 1
                return None
            folder = self._folders.get(session)
            if folder is None:
                folder = self._folders[session] = self.root / secrets.token_hex(16)
                folder.mkdir()
                self._runs[session] = []
            runs = self._runs[session]
            run = Path(tempfile.mkdtemp(prefix=time.strftime("%H%M%S-"), dir=folder))
            runs.append(run)
            old, runs[:] = runs[: -self.keep_runs], runs[-self.keep_runs:]
        for path in old:
            self._remove(path)
        return run

    def folder(self, session: str) -> Optional[Path]:
        """The folder of ``session``'s outputs, or None (no run yet, or the session ended)."""
        with self._lock:
            return self._folders.get(session)

    @property
    def sessions(self) -> List[str]:
        """The sessions that have a folder now."""
        with self._lock:
            return list(self._folders)

    def end(self, session: Optional[str]) -> None:
        """Remove ``session``'s folder and everything in it (its tab was closed or reloaded)."""
        with self._lock:
            folder = self._folders.pop(session, None) if session else None
            self._runs.pop(session, None)
            if session:
                self._ended[session] = None
                while len(self._ended) > 10000:
                    self._ended.pop(next(iter(self._ended)))
        if folder is not None:
            self._remove(folder)

    def _remove(self, folder: Path) -> None:
        files = set(_files(folder))
        shutil.rmtree(folder, ignore_errors=True)
        for paths in (*self._forget, self.keep):
            paths.difference_update(files)

    def close(self) -> None:
        """Remove every session's folder and the root (the page stops)."""
        with self._lock:
            self._folders.clear()
            self._runs.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def _files(folder: Path) -> Iterable[str]:
    """The files under ``folder``, as Gradio writes their paths (absolute, links kept)."""
    return (os.path.abspath(p) for p in folder.rglob("*") if p.is_file())


def wire_sessions(app, sessions: SessionFolders, keep: Set[str]) -> None:
    """Connect ``sessions`` to a Gradio page: its folders end with their browser sessions
    (``app.unload``), and Gradio's periodic cache cleaning (``delete_cache``, which removes
    uploads by age) leaves the outputs of live sessions alone (``keep``: a component's
    ``keep_in_cache`` set, read by that cleaning) and forgets those of ended ones."""
    import gradio as gr

    def session_ended(request: gr.Request):
        sessions.end(request.session_hash)
        holder = app.state_holder  # Gradio keeps a closed session's state for an hour: not needed here
        with holder.lock:
            holder.session_data.pop(request.session_hash, None)
            holder.time_last_used.pop(request.session_hash, None)

    keep.update(sessions.keep)
    sessions.keep = keep
    sessions.track(*app.temp_file_sets)
    app.unload(session_ended)
    weakref.finalize(app, sessions.close)  # every session's folder goes when the page does (or at exit)

