"""Public inference API: separate what queries describe from audio files, folders or waveforms.

:func:`separate` is what ``asteroid-audiosep separate`` runs: every input file is streamed
through :class:`~asteroid_audiosep.apply.ChunkedSeparator` (any length, rate and channel
count; all queries in one pass) and one file per query is written as
``<stem>__<query slug>.wav`` (and/or the residual ``<stem>__<query slug>__residual.wav``).
A file that fails is reported and skipped; the others are still processed.
:func:`separate_waveform` does the same for an in-memory tensor.
"""

import logging
import os
import re
import tempfile
import time
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import soundfile as sf
import torch

from .apply import DEFAULT_CHUNK_SECONDS, DEFAULT_CONTEXT_SECONDS, ChunkedSeparator
from .audio import AUDIO_EXTENSIONS
from .encoders import PrecomputedQueryEncoder, check_texts
from .errors import AudioSepError
from .models import AudioSep
from .stream import AudioFileSignal, TensorSignal

__all__ = [
    "MODES",
    "FileResult",
    "SeparationReport",
    "separate",
    "separate_waveform",
    "load_separator",
    "query_slug",
    "resolve_device",
]

log = logging.getLogger("asteroid_audiosep")

PathLike = Union[str, os.PathLike]

#: What to write per query: the target, the residual (mixture minus target), or both.
MODES = ("target", "remove", "both")
_MAX_SLUG = 60
_MAX_WAV_BYTES = (1 << 32) - (1 << 20)  # beyond this, RIFF/WAV sizes overflow: write RF64


def query_slug(query: str) -> str:
    """A file-name-safe form of a query: ``"Dog barking!"`` -> ``"dog_barking"``."""
    text = unicodedata.normalize("NFKC", query).lower()
    slug = re.sub(r"[^\w]+", "_", text, flags=re.UNICODE).strip("_")[:_MAX_SLUG].strip("_")
    return slug or "query"


def resolve_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; checks that a requested CUDA device exists."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AudioSepError(
            "--device cuda was requested but no CUDA GPU is available: use --device cpu"
        )
    return device


def _half_dtype(half: Union[bool, str, None], device: torch.device) -> Optional[torch.dtype]:
    if not half:
        return None
    names = {
        True: torch.float16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
    }
    if half not in names:
        raise AudioSepError(f"half must be True, 'fp16' or 'bf16', got {half!r}")
    if device.type != "cuda":
        warnings.warn(
            "half precision is only used on GPU; running in float32 on the CPU", stacklevel=3
        )
        return None
    return names[half]


def load_separator(
    model: Union[str, PathLike, AudioSep],
    device: Optional[Union[str, torch.device]] = None,
    query_embeddings: Optional[PathLike] = None,
) -> AudioSep:
    """An :class:`AudioSep` in eval mode on ``device``.

    Args:
        model: a model package, a released checkpoint, a released model name
            (``"audiosep-base"``) or URL (see :func:`asteroid_audiosep.pretrained.package_path`),
            or a model.
        device: see :func:`resolve_device`.
        query_embeddings: a precomputed embedding table (see
            :class:`~asteroid_audiosep.encoders.PrecomputedQueryEncoder`) used as the query
            encoder instead of the package's own (offline use).
    """
    if not isinstance(model, AudioSep):
        from .pretrained import load_model

        try:
            model = load_model(model)
        except AudioSepError:
            raise
        except Exception as err:  # torch.load / state-dict errors of a broken package
            raise AudioSepError(f"cannot load the model {model}: {err}") from err
    model = model.eval().to(resolve_device(device))
    if query_embeddings is not None:
        model.set_query_encoder(PrecomputedQueryEncoder(path=query_embeddings), update_spec=False)
    return model


def _conditions(
    model: AudioSep, queries: Sequence[str], embeddings: Optional[torch.Tensor]
) -> torch.Tensor:
    if embeddings is None:
        return model.embed_queries(list(queries))
    embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
    if embeddings.dim() == 1:
        embeddings = embeddings[None]
    if embeddings.shape != (len(queries), model.condition_dim):
        raise AudioSepError(
            f"query embeddings must be ({len(queries)}, {model.condition_dim}), "
            f"got {tuple(embeddings.shape)}"
        )
    return embeddings


def _check_queries(queries: Union[str, Sequence[str]], unique: bool = True) -> List[str]:
    """Validated queries (non-empty strings, stripped; duplicates dropped when ``unique``)."""
    queries = [queries] if isinstance(queries, str) else list(queries)
    queries = [q.strip() for q in check_texts(queries)]
    return list(dict.fromkeys(queries)) if unique else queries


def separate_waveform(
    model: Union[str, PathLike, AudioSep],
    wav: torch.Tensor,
    sample_rate: int,
    queries: Union[str, Sequence[str]],
    *,
    condition: Optional[torch.Tensor] = None,
    device: Optional[Union[str, torch.device]] = None,
    half: Union[bool, str] = False,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    context_seconds: float = DEFAULT_CONTEXT_SECONDS,
    batch_size: Optional[int] = None,
) -> torch.Tensor:
    """Separate every query from an in-memory waveform (chunked, like the file API).

    Args:
        model: a model, a package path or a released model name.
        wav: (channels, time) or (time,) audio at ``sample_rate``.
        sample_rate: its rate (any; it is resampled to the model's and back).
        queries: one text query or several (only used for their number when ``condition``
            is given).
        condition: (queries, condition_dim) precomputed embeddings instead of the encoder.
        device, half, chunk_seconds, context_seconds, batch_size: see :func:`separate`.

    Returns:
        (queries, channels, time) at ``sample_rate``; ``wav - result[q]`` is the residual.
    """
    queries = _check_queries(queries, unique=condition is None)
    model = load_separator(model, device)
    conditions = _conditions(model, queries, condition)
    dtype = _half_dtype(half, model.window.device)
    separator = ChunkedSeparator(
        model, conditions, chunk_seconds, context_seconds, batch_size, dtype
    )
    signal = TensorSignal(wav, sample_rate, model.sample_rate)
    if signal.frames == 0:
        raise AudioSepError("the waveform is empty (0 samples)")
    blocks = [block.targets for block in separator.run(signal)]
    return torch.cat(blocks, dim=-1)


# ---------------------------------------------------------------------------- files
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
        seconds: processing time.
    """

    input: Path
    status: str = "written"
    outputs: List[Path] = field(default_factory=list)
    error: Optional[str] = None
    warnings: List[str] = field(default_factory=list)
    duration: float = 0.0
    seconds: float = 0.0


@dataclass
class SeparationReport:
    """Per-file results of :func:`separate`."""

    files: List[FileResult]
    seconds: float = 0.0

    @property
    def failed(self) -> List[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed

    def summary(self) -> str:
        """One line: files written, skipped, failed, outputs, speed."""
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
        )


def _collect_inputs(
    inputs: Sequence[PathLike], outdir: Optional[Path]
) -> List[Tuple[Path, Path, Optional[str]]]:
    """``(file, relative output folder, error)`` per input; folders are searched recursively."""
    found: List[Tuple[Path, Path, Optional[str]]] = []
    out_resolved = outdir.resolve() if outdir is not None else None
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            files = sorted(
                p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
            for path in files:
                if out_resolved is not None and out_resolved in path.resolve().parents:
                    continue  # earlier outputs inside the searched folder are not inputs
                found.append((path, path.parent.relative_to(item), None))
            if not files:
                log.warning("no audio files found in folder %s", item)
        elif item.exists():
            found.append((item, Path("."), None))
        else:
            found.append((item, Path("."), f"no such file or folder: {item}"))
    return found


class _Outputs:
    """Output files written block by block into temporary files, renamed when complete."""

    def __init__(self, paths: List[Path], rate: int, channels: int, frames: int):
        self.final = paths
        self.tmp: List[str] = []
        self.files: List[sf.SoundFile] = []
        fmt = "RF64" if frames * channels * 4 > _MAX_WAV_BYTES else "WAV"
        try:
            for path in paths:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part", dir=path.parent)
                os.close(fd)
                self.tmp.append(tmp)
                self.files.append(
                    sf.SoundFile(
                        tmp, "w", samplerate=rate, channels=channels, subtype="FLOAT", format=fmt
                    )
                )
        except Exception as err:
            self.abort()
            raise AudioSepError(f"cannot write to {paths[len(self.files)].parent}: {err}") from err

    def write(self, index: int, block: torch.Tensor) -> None:
        try:
            self.files[index].write(block.detach().cpu().float().numpy().T)
        except Exception as err:
            raise AudioSepError(f"cannot write {self.final[index]}: {err}") from err

    def commit(self) -> None:
        for f in self.files:
            f.close()
        for tmp, path in zip(self.tmp, self.final):
            try:
                os.replace(tmp, path)
            except OSError as err:
                raise AudioSepError(f"cannot write {path}: {err}") from err
        self.tmp = []

    def abort(self) -> None:
        for f in self.files:
            try:
                f.close()
            except Exception:
                pass
        for tmp in self.tmp:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.tmp = []


def _separate_file(
    separator: ChunkedSeparator,
    result: FileResult,
    outputs: List[Tuple[str, int, Path]],
    progress: bool,
) -> None:
    """Stream one file through the separator into ``outputs`` ((kind, query index, path))."""
    from tqdm.auto import tqdm

    with AudioFileSignal(result.input, separator.model.sample_rate) as signal:
        result.duration = signal.frames / signal.rate
        plan = separator.plan(signal)
        sink = _Outputs([p for _, _, p in outputs], signal.rate, signal.channels, signal.frames)
        try:
            silent = True
            bar = tqdm(
                total=len(plan),
                desc=result.input.name,
                unit="chunk",
                leave=False,
                disable=not progress,
            )
            with bar:
                for block in separator.run(signal, plan):
                    silent = silent and block.silent
                    for k, (kind, q, _) in enumerate(outputs):
                        target = block.targets[q]
                        sink.write(k, target if kind == "target" else block.mixture - target)
                    bar.update(1)
            sink.commit()
        except BaseException:
            sink.abort()
            raise
    result.outputs = [p for _, _, p in outputs]
    if silent:
        message = f"{result.input} is digital silence (all samples are zero): wrote silent outputs"
        result.warnings.append(message)
        log.warning(message)


def separate(
    inputs: Union[PathLike, Sequence[PathLike]],
    queries: Union[str, Sequence[str]],
    model: Union[str, PathLike, AudioSep] = "audiosep-base",
    outdir: Optional[PathLike] = "separated",
    *,
    mode: str = "target",
    overwrite: bool = False,
    device: Optional[Union[str, torch.device]] = None,
    half: Union[bool, str] = False,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    context_seconds: float = DEFAULT_CONTEXT_SECONDS,
    batch_size: Optional[int] = None,
    query_embeddings: Optional[Union[PathLike, torch.Tensor]] = None,
    progress: bool = True,
) -> SeparationReport:
    """Separate the sounds that text queries describe from audio files and folders.

    Every file is streamed chunk by chunk (memory does not grow with its length), resampled to
    the model's rate and back, each channel separated (batched); the outputs have the input's
    length, rate and channels and are written atomically as 32-bit float WAV.

    Args:
        inputs: audio files and/or folders (searched recursively for files soundfile reads).
        queries: one or more text queries; all run in one pass over each file.
        model: a model package path, a released model name, or an :class:`AudioSep`.
        outdir: output folder (folder inputs keep their sub-folder layout); None writes next
            to each input.
        mode: ``"target"`` (the described sound), ``"remove"`` (the residual: the mixture
            minus the described sound) or ``"both"``.
        overwrite: rewrite existing outputs (an input file is never overwritten).
        device: ``"cpu"``, ``"cuda"``... (default: CUDA when available).
        half: half precision on GPU (True/``"fp16"`` or ``"bf16"``); ignored on CPU.
        chunk_seconds: chunk length (rounded to the network's pooling grid).
        context_seconds: context on each side of a chunk (>= 0.64 s keeps chunked output
            within 70 dB of whole-clip output).
        batch_size: most (query, channel) items per network call (default: all).
        query_embeddings: an embedding table file (offline use, looked up by query text), or a
            (queries, condition_dim) tensor.
        progress: show progress bars (files and chunks).

    Returns:
        A :class:`SeparationReport`; ``report.ok`` is False when a file failed.

    Raises:
        AudioSepError: for errors that concern every file (bad query, model, device, mode).
    """
    start_time = time.perf_counter()
    if mode not in MODES:
        raise AudioSepError(f"mode must be one of {MODES}, got {mode!r}")
    given = isinstance(query_embeddings, torch.Tensor)
    queries = _check_queries(queries, unique=not given)
    table = None if given else query_embeddings
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not inputs:
        raise AudioSepError("no input given: name audio files or folders")
    outdir = Path(outdir) if outdir is not None else None
    files = _collect_inputs(inputs, outdir)
    model = load_separator(model, device, table)
    conditions = _conditions(model, queries, query_embeddings if given else None)
    dtype = _half_dtype(half, model.window.device)
    separator = ChunkedSeparator(
        model, conditions, chunk_seconds, context_seconds, batch_size, dtype
    )

    slugs = _unique_slugs(queries)
    input_paths = {p.resolve() for p, _, _ in files if p.exists()}
    claimed: Dict[Path, Path] = {}
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        bar = tqdm(files, desc="files", unit="file", disable=not progress or len(files) < 2)
        results = [
            _separate_one(
                separator,
                path,
                rel,
                error,
                outdir,
                slugs,
                mode,
                overwrite,
                input_paths,
                claimed,
                progress,
            )
            for path, rel, error in bar
        ]
    return SeparationReport(results, time.perf_counter() - start_time)


def _separate_one(
    separator: ChunkedSeparator,
    path: Path,
    rel: Path,
    error: Optional[str],
    outdir: Optional[Path],
    slugs: Sequence[str],
    mode: str,
    overwrite: bool,
    input_paths: set,
    claimed: Dict[Path, Path],
    progress: bool,
) -> FileResult:
    """One input file: check its outputs' names, skip or separate it, record what happened."""
    result = FileResult(input=path)
    t0 = time.perf_counter()
    try:
        if error:
            raise AudioSepError(error)
        folder = (outdir / rel) if outdir is not None else path.parent
        outputs = _plan_outputs(path, folder, slugs, mode)
        for _, _, out in outputs:
            resolved = out.resolve()
            if resolved in input_paths:
                raise AudioSepError(
                    f"the output {out} would overwrite an input file: choose another -o folder"
                )
            if resolved in claimed:
                raise AudioSepError(
                    f"the output {out} is also the output of {claimed[resolved]}: "
                    "inputs with the same name need separate output folders"
                )
        for _, _, out in outputs:
            claimed[out.resolve()] = path
        todo = outputs if overwrite else [o for o in outputs if not o[2].exists()]
        if todo:
            _separate_file(separator, result, todo, progress)
            log.info("%s -> %s", path, ", ".join(str(p) for p in result.outputs))
        else:
            result.status = "skipped"
            log.info("skipped %s: its outputs exist (use --overwrite to redo them)", path)
    except AudioSepError as err:
        result.status, result.error = "failed", str(err)
        log.error("%s: %s", path, err)
    result.seconds = time.perf_counter() - t0
    return result


def _unique_slugs(queries: Sequence[str]) -> List[str]:
    slugs: List[str] = []
    for query in queries:
        slug, n = query_slug(query), 2
        base = slug
        while slug in slugs:
            slug, n = f"{base}_{n}", n + 1
        slugs.append(slug)
    return slugs


def _plan_outputs(
    path: Path, folder: Path, slugs: Sequence[str], mode: str
) -> List[Tuple[str, int, Path]]:
    outputs = []
    for q, slug in enumerate(slugs):
        if mode in ("target", "both"):
            outputs.append(("target", q, folder / f"{path.stem}__{slug}.wav"))
        if mode in ("remove", "both"):
            outputs.append(("residual", q, folder / f"{path.stem}__{slug}__residual.wav"))
    return outputs
