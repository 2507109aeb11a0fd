"""Resumable evaluation loops: separation (SDR, SDRi, SI-SDR) and speech enhancement, per item.

Every finished item is appended to a CSV at once, so an interrupted evaluation resumes where
it stopped (finished items are not recomputed) and the final CSV is the same as that of an
uninterrupted run. Clips are processed whole, as the released evaluation does.
"""
import contextlib
import csv
import io
import math
import os
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

import torch

from .apply import _autocast
from .errors import AudioSepError
from .fileio import write_error, write_text_atomic
from .precision import resolve_precision

PathLike = Union[str, os.PathLike]

#: Per-item columns of a separation result CSV (extra metric columns may follow).
SEPARATION_COLUMNS = ("id", "dataset", "query_type", "query", "class",
                      "sdr", "sdri", "si_sdr", "si_sdri", "input_sdr")
#: The CLAPScore columns added beside SDR when a scorer is given (reference-free scores of the
#: same outputs; :mod:`asteroid_audiosep.reference_free` evaluates sets without references).
CLAP_COLUMNS = ("clapscore", "clapscore_i")


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


class ResultCSV:
    """A per-item CSV that is appended to one complete line at a time.

    On opening, an existing file's complete rows are kept (a line cut by a crash is dropped);
    :meth:`done` tells which ids need no recomputation. A row that cannot be written (a full
    disk) is cut off again at once, so the file stays parseable with every row before it.

    Args:
        path: the CSV file.
        columns: its header; an existing file must have the same one.
    """

    def __init__(self, path: PathLike, columns: Sequence[str]):
        self.path = Path(path)
        self.columns = list(columns)
        self.rows: Dict[str, Dict[str, str]] = {}
        if self.path.is_file() and self.path.stat().st_size > 0:
            text = self.path.read_text()
            if not text.endswith("\n"):
                text = text[: text.rfind("\n") + 1]  # drop the line a crash cut short
                self._rewrite(text)
            reader = csv.DictReader(io.StringIO(text))
            if reader.fieldnames != self.columns:
                raise AudioSepError(
                    f"{self.path} has columns {reader.fieldnames}, expected {self.columns}: "
                    "move it away to start this evaluation afresh"
                )
            self.rows = {row["id"]: row for row in reader}
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._rewrite(",".join(self.columns) + "\n")

    def _rewrite(self, text: str) -> None:
        try:
            write_text_atomic(self.path, text)
        except OSError as err:  # the previous file, if any, is left as it was
            raise AudioSepError(write_error(self.path, err)) from err

    def done(self, item_id: str) -> bool:
        return str(item_id) in self.rows

    def append(self, row: Dict[str, object]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([_fmt(row.get(c, "")) for c in self.columns])
        size = self.path.stat().st_size
        try:
            with open(self.path, "a") as f:
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:  # e.g. a full disk: cut the partial line, keep the rows before
            message = write_error(self.path, err)
            with contextlib.suppress(OSError):
                os.truncate(self.path, size)
            raise AudioSepError(f"{message}; the {len(self.rows)} items scored before are kept in it and a "
                                "rerun resumes after them") from err
        self.rows[str(row["id"])] = {c: _fmt(row.get(c, "")) for c in self.columns}

    def __len__(self) -> int:
        return len(self.rows)


def clap_columns(scorer, estimates: torch.Tensor, mixtures: torch.Tensor, rate: int,
                 queries: Sequence[str]) -> List[dict]:
    """``clapscore``, ``clapscore_i`` and ``input_clapscore`` of each (estimate, mixture, query),
    the outputs and inputs embedded in one batch. A silent signal scores NaN (nothing came out).

    Args:
        scorer: a :class:`~asteroid_audiosep.metrics.clap_score.ClapScorer`.
        estimates: (batch, time) separated outputs.
        mixtures: (batch, time) the inputs they were separated from.
        rate: their sample rate.
        queries: the text query of each.
    """
    queries = list(queries)
    items = [(wav, int(rate)) for wav in estimates] + [(wav, int(rate)) for wav in mixtures]
    scores = scorer.scores(items, queries + queries).tolist()
    out, mix = scores[: len(queries)], scores[len(queries):]
    return [{"clapscore": o, "clapscore_i": o - m, "input_clapscore": m} for o, m in zip(out, mix)]


def _progress(iterable: Iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from .progress import progress

    return progress(iterable, total=total, desc=desc, unit="item")


def _batches(dataset, todo: List[int], batch_size: int):
    """Consecutive items of equal length, up to ``batch_size`` at a time (no padding)."""
    batch: List[dict] = []
    for i in todo:
        item = dataset[i]
        if batch and (len(batch) == batch_size or item["mixture"].shape[-1] != batch[0]["mixture"].shape[-1]):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


@torch.no_grad()
def evaluate_separation(
    model,
    dataset,
    out_csv: PathLike,
    dataset_name: str,
    query_type: str,
    embed: Optional[Callable[[List[str]], torch.Tensor]] = None,
    batch_size: int = 1,
    extra_metrics: Sequence[str] = (),
    estimates_dir: Optional[PathLike] = None,
    num_estimates: int = 0,
    progress: bool = True,
    precision: str = "fp32",
    scorer=None,
) -> Path:
    """Separate every item of an evaluation set and write per-item scores (resumable).

    Args:
        model: an :class:`~asteroid_audiosep.models.AudioSep` (eval mode is set here).
        dataset: a :class:`~asteroid_audiosep.data.LASSEvalDataset` at the model's rate: items
            ``{mixture, target, query, id, class}``.
        out_csv: the per-item CSV (see :data:`SEPARATION_COLUMNS`); rows already in it are
            not recomputed.
        dataset_name: value of the ``dataset`` column (decides the aggregation rule).
        query_type: value of the ``query_type`` column (e.g. ``label``, ``caption``).
        embed: texts -> (N, D) query embeddings; default: the model's query encoder.
        batch_size: items of equal length separated together (GPU).
        extra_metrics: Asteroid metric names (``"si_sdr"`` BSS-eval ``"sdr"``, ``"sir"``,
            ``"sar"``, ``"stoi"``, ``"pesq"``) added as ``asteroid_<name>`` columns.
        estimates_dir: where to write the mixture, target and estimate of the first
            ``num_estimates`` items (for figures).
        num_estimates: how many items' audio to keep.
        progress: show a progress bar.
        precision: the network's precision (:func:`~asteroid_audiosep.precision.resolve_precision`);
            fp32 by default, so that the scores equal the released evaluation's.
        scorer: a CLAPScore scorer (:class:`~asteroid_audiosep.metrics.clap_score.ClapScorer`):
            adds the reference-free ``clapscore`` and ``clapscore_i`` columns (of the estimate
            against the query, and its improvement over the mixture's) after the SDR columns.

    Returns:
        The CSV path.
    """
    from .audio import save_audio
    from .metrics import sdr, si_sdr

    if getattr(dataset, "sample_rate", None) not in (None, model.sample_rate):
        raise AudioSepError(
            f"the evaluation set is read at {dataset.sample_rate} Hz but the model runs at "
            f"{model.sample_rate} Hz"
        )
    columns = list(SEPARATION_COLUMNS) + [f"asteroid_{m}" for m in extra_metrics]
    if scorer is not None:
        columns += list(CLAP_COLUMNS)
    results = ResultCSV(out_csv, columns)
    ids = [str(it.id) for it in dataset.items] if hasattr(dataset, "items") else None
    todo = [i for i in range(len(dataset)) if ids is None or not results.done(ids[i])]
    embed = embed or model.embed_queries
    model.eval()
    device = next(model.parameters()).device
    autocast = resolve_precision(precision, device)
    bar = _progress(_batches(dataset, todo, batch_size), len(todo), f"eval {dataset_name}/{query_type}", progress)
    count = len(results)
    for batch in bar:
        if ids is None and all(results.done(str(b["id"])) for b in batch):
            continue
        mix = torch.stack([b["mixture"] for b in batch]).to(device)
        ref = torch.stack([b["target"] for b in batch]).to(device)
        cond = embed([b["query"] for b in batch]).to(device)
        with _autocast(device, autocast):  # off in fp32; the STFT and mask stay fp32 anyway
            est = model(mix[:, None], cond)[:, 0]
        est, ref, mix = est.double().cpu(), ref.double().cpu(), mix.double().cpu()
        sdr_est, sdr_mix = sdr(ref, est), sdr(ref, mix)
        si_est = si_sdr(ref, est)
        si_mix = si_sdr(ref, mix)
        if scorer is not None:
            clap = clap_columns(scorer, est.float(), mix.float(), int(model.sample_rate), [b["query"] for b in batch])
        for k, b in enumerate(batch):
            row = {
                "id": b["id"], "dataset": dataset_name, "query_type": query_type,
                "query": b["query"], "class": b.get("class", ""),
                "sdr": float(sdr_est[k]), "sdri": float(sdr_est[k] - sdr_mix[k]),
                "si_sdr": float(si_est[k]), "si_sdri": float(si_est[k] - si_mix[k]),
                "input_sdr": float(sdr_mix[k]),
            }
            if scorer is not None:
                row.update(clap[k])  # input_clapscore is not a column here: the CSV ignores it
            if extra_metrics:
                from .metrics import asteroid_metrics

                row.update(asteroid_metrics(mix[k].numpy(), ref[k].numpy(), est[k].numpy(),
                                            int(model.sample_rate), metrics=list(extra_metrics),
                                            with_input=False))
            if estimates_dir is not None and count < num_estimates:
                folder = Path(estimates_dir) / str(b["id"])
                for name, wav in (("mixture", mix[k]), ("target", ref[k]), ("estimate", est[k])):
                    save_audio(folder / f"{name}.wav", wav.float(), int(model.sample_rate))
            results.append(row)
            count += 1
    return Path(out_csv)


@torch.no_grad()
def enhance_speech(
    model,
    pairs: Sequence[Dict[str, object]],
    out_dir: PathLike,
    out_csv: PathLike,
    query: str = "speech",
    embed: Optional[Callable[[List[str]], torch.Tensor]] = None,
    system: str = "AudioSep",
    progress: bool = True,
) -> Path:
    """Enhance noisy utterances with a text query and score them (resumable).

    Each utterance gives two rows: the ``Noisy`` input and the enhanced output (``system``),
    with PESQ, CSIG, CBAK, COVL, SSNR and STOI (the columns of the paper's Table IV).

    Args:
        model: an AudioSep model.
        pairs: ``{"id", "noisy", "clean"}`` with paths to wavs (any rate; scored at their rate,
            separated at the model's).
        out_dir: where the enhanced wavs go (``<id>.wav``).
        out_csv: per-utterance scores.
        query: the text query.
        embed: texts -> embeddings; default: the model's query encoder.
        system: name of the enhanced system in the ``system`` column.
        progress: show a progress bar.

    Returns:
        The CSV path.
    """
    from .audio import load_audio, resample, save_audio
    from .metrics import ENHANCEMENT_METRICS, enhancement_metrics

    columns = ["id", "uid", "system", "query", *ENHANCEMENT_METRICS]
    results = ResultCSV(out_csv, columns)
    embed = embed or model.embed_queries
    model.eval()
    device = next(model.parameters()).device
    cond = embed([query]).to(device)
    todo = [p for p in pairs if not results.done(f"{p['id']}/{system}")]
    for pair in _progress(todo, len(todo), "enhance", progress):
        noisy, sr = load_audio(pair["noisy"], mono=True)
        clean, clean_sr = load_audio(pair["clean"], sample_rate=sr, mono=True)
        length = min(noisy.shape[-1], clean.shape[-1])
        noisy, clean = noisy[0, :length], clean[0, :length]
        x = resample(noisy, sr, int(model.sample_rate)).to(device)
        est = model(x[None, None], cond)[0, 0].cpu()
        est = resample(est, int(model.sample_rate), sr)[:length]
        if est.shape[-1] < length:
            est = torch.nn.functional.pad(est, (0, length - est.shape[-1]))
        save_audio(Path(out_dir) / f"{pair['id']}.wav", est, sr)
        for name, signal in (("Noisy", noisy), (system, est)):
            uid = f"{pair['id']}/{name}"
            if results.done(uid):
                continue
            scores = enhancement_metrics(clean.numpy(), signal.numpy(), sr, on_error="nan")
            results.append({"id": uid, "uid": pair["id"], "system": name, "query": query, **scores})
    return Path(out_csv)
