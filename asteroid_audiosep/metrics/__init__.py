"""Evaluation metrics: separation (released SDR/SI-SDR), speech quality, Asteroid's, aggregation.

Importing this package is light: ``pesq``, ``pystoi`` and ``asteroid.metrics`` are imported when a
metric that needs them is called.
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

__all__ = [
    "ASTEROID_METRICS",
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
    "composite",
    "composite_ratings",
    "enhancement_metrics",
    "log_likelihood_ratio",
    "pesq",
    "sdr",
    "sdri",
    "segmental_snr",
    "si_sdr",
    "si_sdri",
    "stoi",
    "weighted_spectral_slope",
]
