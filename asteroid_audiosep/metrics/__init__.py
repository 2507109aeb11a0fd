"""Evaluation metrics: separation (released SDR/SI-SDR), speech quality, Asteroid's, aggregation.

Importing this package is light: ``pesq``, ``pystoi`` and ``asteroid.metrics`` are imported when a
metric that needs them is called, and the CLAP scores (:mod:`.clap_score`: ``clap_score``,
``clap_score_i``, ``ref_clap_score``, ``ClapScorer``) when one of their names is first used.
"""
from .aggregation import (
    MEAN,
    MEAN_OF_CLASS_MEANS,
    MEAN_OF_CLASS_MEDIANS,
    SCORE_COLUMNS,
    aggregate,
    aggregate_results,
    aggregation_rule,
    canonical_dataset,
)
from .asteroid_bridge import ASTEROID_METRICS, asteroid_metrics
from .enhancement import ENHANCEMENT_METRICS, enhancement_metrics
from .perceptual import pesq, stoi
from .separation import SDR_ENERGY_FLOOR, SI_SDR_EPS, sdr, sdri, si_sdr, si_sdri
from .speech_quality import (
    composite,
    composite_ratings,
    log_likelihood_ratio,
    segmental_snr,
    weighted_spectral_slope,
)

#: Names served lazily from :mod:`.clap_score` (module ``__getattr__``).
_CLAP_NAMES = ("ClapScorer", "clap_score", "clap_score_i", "ref_clap_score")

__all__ = [
    "ASTEROID_METRICS",
    "ClapScorer",
    "ENHANCEMENT_METRICS",
    "MEAN",
    "MEAN_OF_CLASS_MEANS",
    "MEAN_OF_CLASS_MEDIANS",
    "SCORE_COLUMNS",
    "SDR_ENERGY_FLOOR",
    "SI_SDR_EPS",
    "aggregate",
    "aggregate_results",
    "aggregation_rule",
    "asteroid_metrics",
    "canonical_dataset",
    "clap_score",
    "clap_score_i",
    "composite",
    "composite_ratings",
    "enhancement_metrics",
    "log_likelihood_ratio",
    "pesq",
    "ref_clap_score",
    "sdr",
    "sdri",
    "segmental_snr",
    "si_sdr",
    "si_sdri",
    "stoi",
    "weighted_spectral_slope",
]


def __getattr__(name):
    if name in _CLAP_NAMES:
        import importlib

        module = importlib.import_module(f"{__name__}.clap_score")
        globals().update({n: getattr(module, n) for n in _CLAP_NAMES})  # the function, not the module
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
