"""Report figures on matplotlib's Agg canvas (pyplot's global backend is never touched):
spectrogram rows on one colour scale (the paper's Fig. 2, the demo page), per-class SDRi bars."""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd
import torch

from ..audio import as_mono_array
from ..errors import AudioSepError
from ..fileio import atomic_write
from ..metrics.aggregation import MEAN_OF_CLASS_MEDIANS, aggregation_rule
from ..metrics.separation import sdri
from .tables import _SEPARATION_HEADERS, PathLike, _query_type_key

AudioSource = Union[np.ndarray, torch.Tensor, PathLike]


@dataclass
class SpectrogramExample:
    """One separated item to draw as mixture / target / estimate spectrograms.

    Attributes:
        dataset: evaluation set name.
        item_id: the item's ``id``.
        mixture: waveform (array or tensor, mono or ``(1, time)``) or audio file path.
        target: the same for the target source.
        estimate: the same for the separated estimate.
        sample_rate: rate of the arrays (required when any of them is not a path).
        query: the text query, shown in the title.
    """

    dataset: str
    item_id: str
    mixture: AudioSource
    target: AudioSource
    estimate: AudioSource
    sample_rate: Optional[int] = None
    query: str = ""


# --------------------------------------------------------------------------- figures


def _mono(source: AudioSource, sample_rate: Optional[int], what: str):
    if isinstance(source, (str, os.PathLike)):
        from ..audio import load_audio

        wav, rate = load_audio(source, mono=True)
        return wav[0].numpy().astype(np.float64), rate
    if sample_rate is None:
        raise AudioSepError(f"the {what} is an array: give the example's sample_rate")
    return as_mono_array(source, what), int(sample_rate)


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path: Path) -> Path:
    with atomic_write(path, mode=None) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def plot_spectrograms(example: SpectrogramExample, path: PathLike) -> Path:
    """Mixture, target and estimate log-magnitude spectrograms side by side (paper's Fig. 2).

    The three panels share one colour scale (dB relative to the mixture's peak, 80 dB range);
    the title gives the dataset, item, query and the item's SDRi.

    Args:
        example: what to draw.
        path: the PNG to write.

    Returns:
        ``path``.

    Raises:
        AudioSepError: unreadable audio, different rates or lengths, missing sample rate.
    """
    signals = []
    for what in ("mixture", "target", "estimate"):
        signals.append(_mono(getattr(example, what), example.sample_rate, what))
    rates = {rate for _, rate in signals}
    if len(rates) != 1:
        raise AudioSepError(f"mixture, target and estimate have different rates {sorted(rates)}")
    rate = rates.pop()
    lengths = {x.size for x, _ in signals}
    if len(lengths) != 1:
        raise AudioSepError(
            f"mixture, target and estimate of {example.item_id} have different lengths "
            f"{sorted(lengths)}"
        )
    mixture, target, estimate = (x for x, _ in signals)
    improvement = float(sdri(target, estimate, mixture))
    query = f' - "{example.query}"' if example.query else ""
    title = f"{example.dataset} / {example.item_id}{query} - SDRi {improvement:.2f} dB"
    return plot_spectrogram_row([mixture, target, estimate], ("Mixture", "Target", "Estimate"), rate, path,
                                title=title)


def log_spectrogram(x: np.ndarray, rate: int):
    """``(freqs, times, dB)``: the log-magnitude STFT of a mono signal (about 64 ms windows)."""
    from scipy.signal import stft

    n_fft = 1 << max(round(0.064 * rate) - 1, 1).bit_length()  # about 64 ms
    freqs, times, z = stft(x, fs=rate, nperseg=min(n_fft, x.size), noverlap=None)
    return freqs, times, 20 * np.log10(np.abs(z) + 1e-10)


def plot_spectrogram_row(
    signals,
    titles,
    rate: int,
    path: PathLike,
    top: Optional[float] = None,
    title: str = "",
) -> Path:
    """Log-magnitude spectrograms of mono signals side by side, on one colour scale.

    Args:
        signals: mono float arrays at ``rate``.
        titles: one panel title per signal.
        rate: their sample rate.
        path: the PNG to write.
        top: the scale's top in dB (default: the first signal's peak); it spans 80 dB.
        title: the figure's title.

    Returns:
        ``path``.
    """
    spectra = [log_spectrogram(np.asarray(x, dtype=np.float64), rate) for x in signals]
    if top is None:
        top = spectra[0][2].max()
    fig = _new_figure(4.0 * len(spectra), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(spectra), sharey=True))
    for ax, (freqs, times, spectrum), panel in zip(axes, spectra, titles):
        image = ax.pcolormesh(times, freqs / 1000.0, spectrum, vmin=top - 80.0, vmax=top,
                              cmap="magma", shading="auto", rasterized=True)
        ax.set_title(panel)
        ax.set_xlabel("Time (s)")
    axes[0].set_ylabel("Frequency (kHz)")
    fig.colorbar(image, ax=list(axes), label="dB")
    if title:
        fig.suptitle(title)
    return _save_png(fig, Path(path))


def plot_class_sdri(
    results: pd.DataFrame,
    dataset: str,
    path: PathLike,
    metric: str = "sdri",
    max_classes: int = 40,
) -> Path:
    """Horizontal bars of the per-class SDRi of one dataset, one colour per query type.

    The per-class statistic is the one the dataset is aggregated with (median for AudioSet,
    mean otherwise). With more than ``max_classes`` classes, the best and worst halves are
    drawn.

    Args:
        results: per-item separation results with a ``class`` column.
        dataset: which dataset to draw.
        path: the PNG to write.
        metric: the score column to draw.
        max_classes: most classes drawn.

    Returns:
        ``path``.

    Raises:
        AudioSepError: no rows, no class labels or no such metric for this dataset.
    """
    rows = results[results["dataset"] == dataset]
    if len(rows) == 0 or "class" not in rows.columns or rows["class"].isna().all():
        raise AudioSepError(f"no per-class results for {dataset}: its rows need a 'class' column")
    if metric not in rows.columns:
        raise AudioSepError(f"no '{metric}' column in the results")
    rows = rows[rows["class"].notna()]
    median = aggregation_rule(dataset) == MEAN_OF_CLASS_MEDIANS
    grouped = rows.groupby(["class", "query_type"])[metric]
    per_class = (grouped.median() if median else grouped.mean()).unstack("query_type")
    per_class = per_class[sorted(per_class.columns, key=_query_type_key)]
    per_class = per_class.sort_values(per_class.columns[0], ascending=True)
    title = f"{dataset}: per-class {_SEPARATION_HEADERS.get(metric, metric)}"
    title += " (median per class)" if median else " (mean per class)"
    if len(per_class) > max_classes:
        half = max_classes // 2
        per_class = pd.concat([per_class.iloc[:half], per_class.iloc[-half:]])
        title += f", {half} worst and {half} best classes"
    n_classes, n_types = per_class.shape
    fig = _new_figure(8.0, 1.5 + 0.28 * n_classes * max(1, n_types * 0.6))
    ax = fig.subplots()
    height = 0.8 / n_types
    positions = np.arange(n_classes)
    for k, query_type in enumerate(per_class.columns):
        ax.barh(positions + ((n_types - 1) / 2 - k) * height, per_class[query_type].to_numpy(),
                height=height, label=str(query_type))
    ax.set_yticks(positions)
    ax.set_yticklabels([str(c) for c in per_class.index])
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"{_SEPARATION_HEADERS.get(metric, metric)} (dB)")
    ax.set_title(title)
    ax.legend(title="query type", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save_png(fig, Path(path))
