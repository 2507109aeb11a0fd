"""Output files of a separation: their names, which ones to (re)write, and writing them atomically.

:class:`OutputPlanner` decides, for each input file, the files to write
(``<stem>__<query slug>.wav`` and/or ``<stem>__<query slug>__residual.wav``), refusing names
that would overwrite an input or another input's output, and leaving out existing ones unless
``overwrite``. :class:`OutputWriter` writes one input's outputs block by block into temporary
files (:func:`~asteroid_audiosep.fileio.atomic_write`) that are renamed into place only when
complete.
"""

import contextlib
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
import soundfile as sf
import torch

from .errors import AudioSepError
from .fileio import atomic_write, full_disk_error, write_error

__all__ = ["FORMATS", "MODES", "OutputFormat", "OutputSpec", "OutputPlanner", "OutputWriter", "choose_format",
           "query_slug", "record_outputs", "read_manifest", "unique_slugs"]

log = logging.getLogger("asteroid_audiosep")

#: What to write per query: the target, the residual (mixture minus target), or both.
MODES = ("target", "remove", "both")
_MAX_SLUG = 60
_MAX_WAV_BYTES = (1 << 32) - (1 << 20)  # beyond this, RIFF/WAV sizes overflow: write RF64


#: ``format=`` choices: the input's container where it can hold the result, or a fixed one.
FORMATS = ("same", "wav", "flac")
_INTEGER = ("PCM_16", "PCM_24")  # lossless integer formats kept as they are
_BYTES = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
MANIFEST = ".asteroid_audiosep_outputs"  # the outputs this tool wrote into a folder, one per line


@dataclass(frozen=True)
class OutputFormat:
    """How an output file is written: container (``WAV``, ``RF64``, ``FLAC``), subtype and
    file extension."""

    container: str
    subtype: str
    extension: str

    @property
    def integer(self) -> bool:
        return self.subtype.startswith("PCM")


def choose_format(in_format: Optional[str], in_subtype: Optional[str], fmt: str = "same",
                  subtype: Optional[str] = None, frames: int = 0, channels: int = 1) -> OutputFormat:
    """The output format for an input of ``in_format``/``in_subtype`` (soundfile's names;
    ``None`` for in-memory audio).

    ``fmt="same"``: WAV stays WAV, FLAC stays FLAC, anything else (OGG, MP3, AIFF, ...) becomes
    FLAC. The sample format is the input's when it is 16- or 24-bit PCM (lossless to keep),
    32-bit float otherwise (24-bit PCM in FLAC, which holds no float). ``subtype`` overrides it.
    A WAV that would pass 4 GiB is written as RF64.

    Raises:
        AudioSepError: an unknown ``fmt`` or a subtype the container cannot hold.
    """
    if fmt not in FORMATS:
        raise AudioSepError(f"format must be one of {FORMATS}, got {fmt!r}")
    in_format = (in_format or "").upper()
    if fmt != "same":
        container = fmt.upper()
    else:
        container = "WAV" if in_format in ("WAV", "RF64", "WAVEX", "") else "FLAC"
    if subtype is None:
        if in_subtype in _INTEGER:
            subtype = in_subtype
        else:
            subtype = "PCM_24" if container == "FLAC" else "FLOAT"
    subtype = str(subtype).upper()
    if not sf.check_format(container, subtype):
        raise AudioSepError(f"a {container} file cannot hold {subtype} samples: choose another --subtype "
                            f"({', '.join(sorted(sf.available_subtypes(container)))})")
    if container == "WAV" and frames * channels * _BYTES.get(subtype, 4) > _MAX_WAV_BYTES:
        container = "RF64"  # a plain WAV cannot hold more than 4 GiB
    return OutputFormat(container, subtype, ".flac" if container == "FLAC" else ".wav")


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
        queries: the queries' labels, in order (their slugs name the files).
        mode: one of :data:`MODES`.
        outdir: output folder; None writes next to each input.
        overwrite: rewrite existing outputs (never an input file).
        inputs: every input file of the run (no output may replace one; inputs whose names
            differ only by extension keep it in their outputs' names: ``clip.ogg__siren.flac``).
        fmt, subtype: see :func:`choose_format`.
    """

    def __init__(
        self,
        queries: Sequence[str],
        mode: str,
        outdir: Optional[Path],
        overwrite: bool,
        inputs: Iterable[Path],
        fmt: str = "same",
        subtype: Optional[str] = None,
    ):
        if mode not in MODES:
            raise AudioSepError(f"mode must be one of {MODES}, got {mode!r}")
        choose_format("WAV", "FLOAT", fmt, subtype if subtype is None or fmt != "same" else None)
        self.slugs = unique_slugs(queries)
        self.mode = mode
        self.outdir = Path(outdir) if outdir is not None else None
        self.overwrite = overwrite
        self.fmt, self.subtype = fmt, subtype
        inputs = [Path(p) for p in inputs]
        self.inputs = {p.resolve() for p in inputs}
        stems: Dict[tuple, int] = {}
        for p in inputs:
            stems[(p.parent.resolve(), p.stem)] = stems.get((p.parent.resolve(), p.stem), 0) + 1
        self._shared_stems = {key for key, n in stems.items() if n > 1}
        self.claimed: Dict[Path, Path] = {}
        self.formats: Dict[Path, OutputFormat] = {}

    def output_stem(self, path: Path) -> str:
        """``clip`` for ``clip.wav``; ``clip.ogg`` when another input is ``clip.mp3``."""
        return path.name if (path.parent.resolve(), path.stem) in self._shared_stems else path.stem

    def names(self, path: Path, folder: Path, extension: str = ".wav") -> List[OutputSpec]:
        """Every output of ``path`` written into ``folder``."""
        specs = []
        stem = self.output_stem(path)
        for q, slug in enumerate(self.slugs):
            if self.mode in ("target", "both"):
                specs.append(OutputSpec("target", q, folder / f"{stem}__{slug}{extension}"))
            if self.mode in ("remove", "both"):
                specs.append(OutputSpec("residual", q, folder / f"{stem}__{slug}__residual{extension}"))
        return specs

    def is_output_name(self, path: Path) -> bool:
        """Whether ``path`` is named like an output of this run's queries."""
        stem = Path(path).stem
        return any(stem.endswith(f"__{slug}") or stem.endswith(f"__{slug}__residual") for slug in self.slugs)

    def plan(self, path: Path, rel: Path = Path(".")) -> List[OutputSpec]:
        """The outputs to write for input ``path`` (empty: all exist, skip it).

        Args:
            path: the input file.
            rel: its folder relative to the searched input folder (kept under ``outdir``).

        Raises:
            AudioSepError: an unreadable input, or an output would overwrite an input file or
                another input's output.
        """
        from .audio import audio_info

        try:
            info = audio_info(path)
        except AudioSepError:
            raise
        except Exception as err:
            raise AudioSepError(f"cannot read {path}: {err}") from err
        out_format = choose_format(info.format, info.subtype, self.fmt, self.subtype, info.frames, info.channels)
        self.formats[Path(path)] = out_format
        folder = (self.outdir / rel) if self.outdir is not None else path.parent
        specs = self.names(path, folder, out_format.extension)
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


def read_manifest(folder: Path) -> set:
    """Names (relative to ``folder``) of the outputs this tool wrote there."""
    path = Path(folder) / MANIFEST
    try:
        return {line for line in path.read_text(encoding="utf-8").splitlines() if line}
    except OSError:
        return set()


def record_outputs(paths: Iterable[Path]) -> None:
    """Add written outputs to their folders' manifests (so that they are never read as inputs)."""
    from .fileio import write_text_atomic

    by_folder: Dict[Path, set] = {}
    for path in paths:
        by_folder.setdefault(Path(path).parent, set()).add(Path(path).name)
    for folder, names in by_folder.items():
        known = read_manifest(folder)
        if not names <= known:
            try:
                write_text_atomic(folder / MANIFEST, "".join(f"{n}\n" for n in sorted(known | names)))
            except OSError as err:  # the outputs are written: say so, do not lose the report
                log.error("%s (the outputs there are complete; they are not listed as outputs, so a later "
                          "run over this folder may take them as inputs)", write_error(folder / MANIFEST, err))


def _check_complete(path: str, frames: int, target: Path) -> None:
    """Raise when the file at ``path`` does not read back ``frames`` frames to its end (a write
    that failed without an error, as libsndfile's FLAC encoder does on a full disk)."""
    try:
        with sf.SoundFile(path) as check:
            complete = check.frames == frames
            if complete and frames:
                check.seek(frames - 1)
                complete = len(check.read(1)) == 1
    except Exception:  # noqa: BLE001 - an unreadable result is an incomplete one
        complete = False
    if not complete:
        raise AudioSepError(write_error(target, OSError(f"the written file does not read back its {frames} frames")))


class OutputWriter:
    """One input's outputs, written block by block, renamed into place when complete.

    Blocks go to temporary 32-bit float files; an output in another format (16/24-bit PCM,
    FLAC) is encoded from it at :meth:`commit`. An integer output whose samples would pass full
    scale is scaled down to fit (peak -0.1 dBFS) with a warning, never clipped.

    Args:
        specs: the files to write.
        rate: their sample rate.
        channels: their channel count.
        frames: their length (RF64 instead of WAV beyond 4 GiB).
        out_format: the final format (default: 32-bit float WAV).

    Raises:
        AudioSepError: an output folder cannot be created or written to.
    """

    def __init__(self, specs: Sequence[OutputSpec], rate: int, channels: int, frames: int,
                 out_format: Optional[OutputFormat] = None):
        self.specs = list(specs)
        self.rate, self.channels = rate, channels
        self.format = out_format or choose_format("WAV", "FLOAT", "wav", None, frames, channels)
        self.peaks = [0.0] * len(self.specs)
        self.warnings: List[str] = []
        self._stack = contextlib.ExitStack()
        self._files: List[sf.SoundFile] = []
        self._tmps: List[str] = []
        self._written = 0  # frames written to each output
        self._direct = self.format.subtype == "FLOAT" and self.format.container in ("WAV", "RF64")
        raw = self.format.container if self._direct else ("RF64" if frames * channels * 4 > _MAX_WAV_BYTES
                                                           else "WAV")
        self._each: List[contextlib.ExitStack] = []  # one per output: discarded alone (see commit)
        try:
            for spec in self.specs:
                self._each.append(self._stack.enter_context(contextlib.ExitStack()))
                tmp = self._each[-1].enter_context(atomic_write(spec.path, mode=None))
                if not self._direct:  # the float data goes beside it (hidden), encoded at commit
                    tmp = tmp + ".f32.wav"
                self._tmps.append(tmp)
                self._files.append(sf.SoundFile(tmp, "w", samplerate=rate, channels=channels,
                                                subtype="FLOAT", format=raw))
        except Exception as err:
            path = self.specs[len(self._files)].path
            message = full_disk_error(path, err) or f"cannot write to {path.parent}: {err}"
            self.abort(err)
            raise AudioSepError(message) from err

    def write(self, targets: torch.Tensor, mixture: torch.Tensor) -> None:
        """Append a block: ``targets`` (queries, channels, time), ``mixture`` (channels, time)."""
        self._written += int(mixture.shape[-1])
        for k, (spec, handle) in enumerate(zip(self.specs, self._files)):
            block = targets[spec.query]
            if spec.kind == "residual":
                block = mixture - block
            data = block.detach().cpu().float().numpy().T
            if data.size:
                self.peaks[k] = max(self.peaks[k], float(abs(data).max()))
            try:
                handle.write(data)
            except Exception as err:
                raise AudioSepError(write_error(spec.path, err)) from err

    def _encode(self, k: int) -> None:
        """Float temporary -> the final temporary in the output format (scaled if it would clip)."""
        spec, source = self.specs[k], self._tmps[k]
        final = source[: -len(".f32.wav")]
        gain = 1.0
        if self.format.integer and self.peaks[k] > 1.0:
            gain = 0.99 / self.peaks[k]
            message = (f"{spec.path}: its peak ({self.peaks[k]:.3f}) exceeds full scale for {self.format.subtype}; "
                       f"scaled by {20 * np.log10(gain):.2f} dB instead of clipping (use --subtype FLOAT to keep "
                       "the level)")
            self.warnings.append(message)
            log.warning(message)
        with sf.SoundFile(source) as src, sf.SoundFile(final, "w", samplerate=self.rate, channels=self.channels,
                                                         subtype=self.format.subtype,
                                                         format=self.format.container) as dst:
            for block in src.blocks(blocksize=1 << 18, dtype="float32", always_2d=True):
                dst.write(block * gain if gain != 1.0 else block)
        os.unlink(source)

    def commit(self, keep: Optional[Callable[[List[OutputSpec], List[str]], List[bool]]] = None) -> List[Path]:
        """Close the files and rename them into place; returns their paths.

        Args:
            keep: given the specs and their complete temporary files (final format, not yet
                renamed), which to keep; the others are removed unwritten (``--min-score``).
        """
        try:
            for handle in self._files:
                handle.close()
            if not self._direct:
                for k in range(len(self.specs)):
                    self._encode(k)
            for spec, tmp in zip(self.specs, self._tmps):  # libsndfile's FLAC writer hides a full disk
                _check_complete(tmp if self._direct else tmp[: -len(".f32.wav")], self._written, spec.path)
            kept = [True] * len(self.specs)
            if keep is not None:
                finals = [t if self._direct else t[: -len(".f32.wav")] for t in self._tmps]
                kept = list(keep(list(self.specs), finals))
                for each, ok in zip(self._each, kept):
                    if not ok:  # the temporary is removed, the target left as it was
                        each.__exit__(AudioSepError, AudioSepError("not kept"), None)
            self._stack.close()
        except AudioSepError as err:
            self.abort(err)
            raise
        except Exception as err:
            message = write_error(self.specs[0].path, err)
            self.abort(err)
            raise AudioSepError(message) from err
        return [spec.path for spec, ok in zip(self.specs, kept) if ok]

    def abort(self, error: Optional[BaseException] = None) -> None:
        """Close and remove the temporary files; the targets are left as they were."""
        for handle in self._files:
            with contextlib.suppress(Exception):
                handle.close()
        if not self._direct:
            for tmp in self._tmps:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        error = error or AudioSepError("aborted")
        self._stack.__exit__(type(error), error, error.__traceback__)
