"""Separating many files: reading ahead and writing behind the network, one result per file.

:class:`FilePipeline` streams files through a :class:`~asteroid_audiosep.apply.ChunkRunner`
with three threads. A reader opens each file, plans its chunks, opens its outputs and reads and
resamples the chunks ahead of the network; the calling thread runs the network on batches of
equal-shape segments (chunks of one file, or short files in a row, up to ``batch_size`` items);
a writer resamples the results back to each file's rate and writes them. The queues between
them hold a few segments, so memory does not grow with the files' length or number. An
:class:`~asteroid_audiosep.errors.AudioSepError` concerns one file only: that file is reported
as failed, its partial outputs are removed, and the others go on.
"""

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

import torch

from .apply import ChunkRunner, Segment, batches
from .audio import count_by_extension
from .errors import AudioSepError
from .outputs import OutputFormat, OutputSpec, OutputWriter
from .progress import progress as progress_display
from .stream import AudioFileSignal

__all__ = ["FileResult", "SeparationReport", "FileJob", "FilePipeline"]

log = logging.getLogger("asteroid_audiosep")


@dataclass
class FileResult:
    """What happened to one input file.

    Attributes:
        input: the input file.
        status: ``"written"``, ``"skipped"`` (every output existed) or ``"failed"``.
        outputs: the files written.
        error: why it failed.
        warnings: notes for the user (e.g. the input was digital silence).
        duration: seconds of audio.
        seconds: processing time (from reading its first chunk to renaming its outputs).
        scores: one :class:`~asteroid_audiosep.scoring.OutputScore` per output scored.
    """

    input: Path
    status: str = "written"
    outputs: List[Path] = field(default_factory=list)
    error: Optional[str] = None
    warnings: List[str] = field(default_factory=list)
    duration: float = 0.0
    seconds: float = 0.0
    scores: List[Any] = field(default_factory=list)  # OutputScore rows (separate --score)

    def fail(self, error: BaseException) -> None:
        """Record a failure (and log it)."""
        if self.status != "failed":
            self.status, self.error = "failed", str(error)
            log.error("%s: %s", self.input, error)


@dataclass
class SeparationReport:
    """Per-file results of :func:`~asteroid_audiosep.api.separate`, and the files of input
    folders that were not audio (``not_audio``)."""

    files: List[FileResult]
    seconds: float = 0.0
    not_audio: List[Path] = field(default_factory=list)

    @property
    def failed(self) -> List[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed

    def summary(self) -> str:
        """One line: files written, skipped, failed, outputs, speed, files that were not audio."""
        written = [f for f in self.files if f.status == "written"]
        skipped = [f for f in self.files if f.status == "skipped"]
        audio = sum(f.duration for f in written)
        speed = (
            f" ({audio / self.seconds:.2f}x real time)" if self.seconds > 0 and audio > 0 else ""
        )
        return (
            f"separated {len(written)} file(s) into "
            f"{sum(len(f.outputs) for f in written)} output(s), "
            f"{len(skipped)} skipped, {len(self.failed)} failed; "
            f"{audio:.1f} s of audio in {self.seconds:.1f} s{speed}"
            + (f"; {count_by_extension(self.not_audio)} (not audio)" if self.not_audio else "")
            + (f"; {len(self.not_found)} output(s) not found (CLAPScore-i below --min-score, not written)"
               if self.not_found else "")
        )

    @property
    def not_found(self) -> list:
        """The scores of outputs left unwritten by ``--min-score``."""
        return [s for f in self.files for s in f.scores if s.status == "not found"]


@dataclass(eq=False)
class FileJob:
    """One input file to separate and the outputs to write for it.

    Attributes:
        result: where what happens is recorded (``result.input`` is the file).
        outputs: the files to write.
        writer: its open outputs (set by the reader thread).
        silent: whether every chunk so far was digital silence.
        started: when its reading began (``time.perf_counter``).
        conditions: given the opened input, its own (queries, condition_dim) embeddings (span
            queries: the example is a part of the input itself); None: the runner.s.
    """

    result: FileResult
    outputs: List[OutputSpec]
    conditions: Optional[Callable[[Any], torch.Tensor]] = None
    out_format: Optional[OutputFormat] = None
    writer: Optional[OutputWriter] = None
    keep: Optional[Callable] = None  # which complete outputs to rename into place (separate --score)
    silent: bool = True
    started: float = 0.0

    @property
    def failed(self) -> bool:
        return self.result.status == "failed"


_DONE = object()  # end of a queue's stream


@dataclass(eq=False)
class SegmentRead:
    """Reader -> network: one segment of a file, read and resampled."""

    job: FileJob
    segment: Segment


@dataclass(eq=False)
class BlockSeparated:
    """Network -> writer: the network's output for one segment."""

    job: FileJob
    segment: Segment
    output: torch.Tensor


@dataclass(eq=False)
class FileFailed:
    """A file failed (reading it, or separating one of its segments)."""

    job: FileJob
    error: AudioSepError


@dataclass(eq=False)
class FileEnd:
    """Every segment of a file has been passed on: its outputs can be committed."""

    job: FileJob


class _Stop(Exception):
    """The pipeline is shutting down (another stage failed)."""


class FilePipeline:
    """Reader thread -> network (calling thread) -> writer thread, for a list of files.

    Args:
        runner: the chunked runner (model, conditions, chunking, batch size).
        prefetch: segments read ahead of the network (and blocks queued for the writer).
        progress: show progress (files, or the chunks of a lone file).
    """

    def __init__(self, runner: ChunkRunner, prefetch: int = 2, progress: bool = True):
        self.runner = runner
        self.prefetch = max(1, int(prefetch))
        self.progress = progress
        self._stop = threading.Event()  # set when a stage fails: every stage stops
        self._errors: List[BaseException] = []  # fatal errors of any stage (re-raised by run)
        self._bar = None  # the progress display of a run

    def run(self, jobs: Sequence[FileJob]) -> None:
        """Separate every job's file into its outputs; each job's ``result`` says how it went."""
        if not jobs:
            return
        self._stop.clear()
        self._errors.clear()
        self._bar = progress_display(
            total=len(jobs) if len(jobs) > 1 else None,
            desc="files" if len(jobs) > 1 else jobs[0].result.input.name,
            unit="file" if len(jobs) > 1 else "chunk",
            disable=not self.progress,
            leave=False,
        )
        read_q: queue.Queue = queue.Queue(self.prefetch)
        write_q: queue.Queue = queue.Queue(self.prefetch)
        threads = [
            threading.Thread(target=self._guard, args=(self._read, jobs, read_q), daemon=True),
            threading.Thread(target=self._guard, args=(self._write, write_q, len(jobs) == 1),
                             daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            self._network(read_q, write_q)
        except BaseException as err:
            self._errors.append(err)
        finally:
            if self._errors:
                self._stop.set()
            self._put(write_q, _DONE, force=True)
            for thread in threads:
                thread.join()
            self._bar.close()
            for job in jobs:  # after a fatal error: no half-written output stays behind
                if job.writer is not None:
                    job.writer.abort()
                    job.writer = None
        if self._errors:
            raise self._errors[0]

    # ------------------------------------------------------------------ plumbing
    def _guard(self, target, *args) -> None:
        try:
            target(*args)
        except _Stop:
            pass
        except BaseException as err:  # a bug or an interrupt: stop everything, re-raised by run
            self._errors.append(err)
            self._stop.set()

    def _put(self, q: queue.Queue, item, force: bool = False) -> None:
        while True:
            if self._stop.is_set() and not force:
                raise _Stop
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if force and self._stop.is_set():
                    try:  # make room: the consumer is shutting down anyway
                        q.get_nowait()
                    except queue.Empty:
                        pass

    def _get(self, q: queue.Queue):
        while True:
            if self._stop.is_set():
                raise _Stop
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                pass

    # ------------------------------------------------------------------ stages
    def _read(self, jobs: Sequence[FileJob], out: queue.Queue) -> None:
        """Reader thread: open, plan and read every file, in order."""
        runner = self.runner
        for job in jobs:
            job.started = time.perf_counter()
            try:
                with AudioFileSignal(job.result.input, runner.model.sample_rate) as signal:
                    runner.check(signal)
                    job.result.duration = signal.frames / signal.rate
                    plan = runner.plan(signal)
                    if len(jobs) == 1:
                        self._bar.reset(total=len(plan))
                    own = job.conditions(signal) if job.conditions is not None else None
                    job.writer = OutputWriter(
                        job.outputs, signal.rate, signal.channels, signal.frames, job.out_format
                    )
                    for chunk in plan:
                        segment = runner.read(signal, plan, chunk)
                        segment.conditions = own
                        self._put(out, SegmentRead(job, segment))
            except AudioSepError as err:
                self._put(out, FileFailed(job, err))
            else:
                self._put(out, FileEnd(job))
        self._put(out, _DONE)

    def _network(self, source: queue.Queue, sink: queue.Queue) -> None:
        """Calling thread: batch equal-shape segments, run the network, pass results on in order."""
        runner = self.runner
        failed: set = set()

        def events():
            while True:
                event = self._get(source)
                if event is _DONE:
                    return
                if event.job not in failed:
                    yield event

        def is_segment(event) -> bool:
            return isinstance(event, SegmentRead)

        for group in batches(events(), lambda e: runner.batch_key(e.segment),
                             lambda e: runner.segments_per_call(e.segment), carried=lambda e: not is_segment(e)):
            batch = [e.segment for e in group if is_segment(e)]
            outs: Optional[dict] = {}
            if batch:
                try:
                    outs = dict(zip(map(id, batch), runner.separate(batch)))
                except AudioSepError as err:  # concerns the files of this batch only
                    for event in filter(is_segment, group):
                        if event.job not in failed:
                            failed.add(event.job)
                            self._put(sink, FileFailed(event.job, err))
                    outs = None
            for event in group:
                if not is_segment(event):
                    self._put(sink, event)
                elif outs is not None:
                    self._put(sink, BlockSeparated(event.job, event.segment, outs[id(event.segment)]))

    def _write(self, source: queue.Queue, chunk_progress: bool) -> None:
        """Writer thread: resample back, write, and commit or discard each file's outputs."""
        while True:
            event = source.get()
            if event is _DONE:
                return
            job = event.job
            if job.failed:
                continue
            try:
                if isinstance(event, BlockSeparated):
                    block = self.runner.finish(event.segment, event.output)
                    job.silent = job.silent and block.silent
                    job.writer.write(block.targets, block.mixture)
                    if chunk_progress:
                        self._bar.update(1)
                    continue
                if isinstance(event, FileFailed):
                    raise event.error
                self._commit(job)
            except AudioSepError as err:
                job.result.fail(err)
                if job.writer is not None:
                    job.writer.abort(err)
                    job.writer = None
            if not chunk_progress:
                self._bar.update(1)  # one more file done

    def _commit(self, job: FileJob) -> None:
        result = job.result
        writer, job.writer = job.writer, None
        result.outputs = writer.commit(job.keep)
        result.warnings.extend(writer.warnings)
        result.seconds = time.perf_counter() - job.started
        log.info("%s -> %s", result.input, ", ".join(str(p) for p in result.outputs))
        if job.silent:
            message = (
                f"{result.input} is digital silence (all samples are zero): wrote silent outputs"
            )
            result.warnings.append(message)
            log.warning(message)
