"""Output files of a separation: their names, which ones to (re)write, and writing them atomically.

:class:`OutputPlanner` decides, for each input file, the files to write
(``<stem>__<query slug>.wav`` and/or ``<stem>__<query slug>__residual.wav``), refusing names
that would overwrite an input or another input's output, and leaving out existing ones unless
``overwrite``. :class:`OutputWriter` writes one input's outputs block by block into temporary
files (:func:`~asteroid_audiosep.fileio.atomic_write`) that are renamed into place only when
complete.
"""

import contextlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import soundfile as sf
import torch

from .errors import AudioSepError
from .fileio import atomic_write

__all__ = ["MODES", "OutputSpec", "OutputPlanner", "OutputWriter", "query_slug", "unique_slugs"]

#: What to write per query: the target, the residual (mixture minus target), or both.
MODES = ("target", "remove", "both")
_MAX_SLUG = 60
_MAX_WAV_BYTES = (1 << 32) - (1 << 20)  # beyond this, RIFF/WAV sizes overflow: write RF64


def query_slug(query: str) -> str:
    """A file-name-safe form of a query: ``"Dog barking!"`` -> ``"dog_barking"``."""
    text = unicodedata.normalize("NFKC", query).lower()
    slug = re.sub(r"[^\w]+", "_", text, flags=re.UNICODE).strip("_")[:_MAX_SLUG].strip("_")
    return slug or "query"


def unique_slugs(queries: Sequence[str]) -> List[str]:
    """:func:`query_slug` of each query, numbered where two would be equal."""
    slugs: List[str] = []
    for query in queries:
        slug = base = query_slug(query)
        n = 2
        while slug in slugs:
            slug, n = f"{base}_{n}", n + 1
        slugs.append(slug)
    return slugs


@dataclass(frozen=True)
class OutputSpec:
    """One output file of one input.

    Attributes:
        kind: ``"target"`` (the described sound) or ``"residual"`` (the mixture minus it).
        query: index of the query.
        path: the file.
    """

    kind: str
    query: int
    path: Path


class OutputPlanner:
    """Names the outputs of each input and decides which to write.

    Args:
        queries: the queries, in order (their slugs name the files).
        mode: one of :data:`MODES`.
        outdir: output folder; None writes next to each input.
        overwrite: rewrite existing outputs (never an input file).
        inputs: every input file of the run (no output may replace one).
    """

    def __init__(
        self,
        queries: Sequence[str],
        mode: str,
        outdir: Optional[Path],
        overwrite: bool,
        inputs: Iterable[Path],
    ):
        if mode not in MODES:
            raise AudioSepError(f"mode must be one of {MODES}, got {mode!r}")
        self.slugs = unique_slugs(queries)
        self.mode = mode
        self.outdir = Path(outdir) if outdir is not None else None
        self.overwrite = overwrite
        self.inputs = {Path(p).resolve() for p in inputs}
        self.claimed: Dict[Path, Path] = {}

    def names(self, path: Path, folder: Path) -> List[OutputSpec]:
        """Every output of ``path`` written into ``folder``."""
        specs = []
        for q, slug in enumerate(self.slugs):
            if self.mode in ("target", "both"):
                specs.append(OutputSpec("target", q, folder / f"{path.stem}__{slug}.wav"))
            if self.mode in ("remove", "both"):
                specs.append(
                    OutputSpec("residual", q, folder / f"{path.stem}__{slug}__residual.wav")
                )
        return specs

    def plan(self, path: Path, rel: Path = Path(".")) -> List[OutputSpec]:
        """The outputs to write for input ``path`` (empty: all exist, skip it).

        Args:
            path: the input file.
            rel: its folder relative to the searched input folder (kept under ``outdir``).

        Raises:
            AudioSepError: an output would overwrite an input file or another input's output.
        """
        folder = (self.outdir / rel) if self.outdir is not None else path.parent
        specs = self.names(path, folder)
        for spec in specs:
            resolved = spec.path.resolve()
            if resolved in self.inputs:
                raise AudioSepError(
                    f"the output {spec.path} would overwrite an input file: "
                    "choose another -o folder"
                )
            if resolved in self.claimed:
                raise AudioSepError(
                    f"the output {spec.path} is also the output of {self.claimed[resolved]}: "
                    "inputs with the same name need separate output folders"
                )
        for spec in specs:
            self.claimed[spec.path.resolve()] = path
        return specs if self.overwrite else [s for s in specs if not s.path.exists()]


class OutputWriter:
    """One input's outputs, written block by block as 32-bit float WAV, renamed when complete.

    Args:
        specs: the files to write.
        rate: their sample rate.
        channels: their channel count.
        frames: their length (RF64 instead of WAV beyond 4 GiB).

    Raises:
        AudioSepError: an output folder cannot be created or written to.
    """

    def __init__(self, specs: Sequence[OutputSpec], rate: int, channels: int, frames: int):
        self.specs = list(specs)
        self._stack = contextlib.ExitStack()
        self._files: List[sf.SoundFile] = []
        fmt = "RF64" if frames * channels * 4 > _MAX_WAV_BYTES else "WAV"
        try:
            for spec in self.specs:
                tmp = self._stack.enter_context(atomic_write(spec.path, mode=None))
                self._files.append(
                    sf.SoundFile(
                        tmp, "w", samplerate=rate, channels=channels, subtype="FLOAT", format=fmt
                    )
                )
        except Exception as err:
            folder = self.specs[len(self._files)].path.parent
            self.abort(err)
            raise AudioSepError(f"cannot write to {folder}: {err}") from err

    def write(self, targets: torch.Tensor, mixture: torch.Tensor) -> None:
        """Append a block: ``targets`` (queries, channels, time), ``mixture`` (channels, time)."""
        for spec, handle in zip(self.specs, self._files):
            block = targets[spec.query]
            if spec.kind == "residual":
                block = mixture - block
            try:
                handle.write(block.detach().cpu().float().numpy().T)
            except Exception as err:
                raise AudioSepError(f"cannot write {spec.path}: {err}") from err

    def commit(self) -> List[Path]:
        """Close the files and rename them into place; returns their paths."""
        try:
            for handle in self._files:
                handle.close()
            self._stack.close()
        except Exception as err:
            self.abort(err)
            raise AudioSepError(f"cannot write the outputs of {self.specs[0].path}: {err}") from err
        return [spec.path for spec in self.specs]

    def abort(self, error: Optional[BaseException] = None) -> None:
        """Close and remove the temporary files; the targets are left as they were."""
        for handle in self._files:
            with contextlib.suppress(Exception):
                handle.close()
        error = error or AudioSepError("aborted")
        self._stack.__exit__(type(error), error, error.__traceback__)
