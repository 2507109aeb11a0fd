"""All the speech-enhancement scores of one utterance: the columns of the paper's Table IV."""
import math
from typing import Dict

from .perceptual import Signal, pesq, stoi
from .speech_quality import composite, segmental_snr

#: The per-utterance enhancement columns, in the order the report shows them.
ENHANCEMENT_METRICS = ("pesq", "csig", "cbak", "covl", "ssnr", "stoi", "llr", "wss")


def enhancement_metrics(
    ref: Signal, est: Signal, sample_rate: int, on_error: str = "raise"
) -> Dict[str, float]:
    """PESQ, CSIG, CBAK, COVL, SSNR and STOI (plus LLR and WSS) of one utterance.

    Score the unprocessed noisy input the same way to get the "Noisy" row.

    Args:
        ref: clean utterance, ``(time,)`` or ``(1, time)``.
        est: enhanced (or noisy) utterance, same length.
        sample_rate: 16000 (wide-band PESQ, as Voicebank-DEMAND) or 8000 (narrow-band).
        on_error: ``"raise"`` or ``"nan"``: when PESQ cannot score the pair, ``"nan"`` sets
            PESQ and the composite ratings to NaN (with a warning) and keeps the other scores.

    Returns:
        A dict with the keys of :data:`ENHANCEMENT_METRICS`.

    Raises:
        AudioSepError: bad shapes, too short, an unsupported rate, or (``on_error="raise"``) a
            pair that PESQ cannot score.
    """
    pesq_score = pesq(ref, est, sample_rate, on_error=on_error)
    if math.isnan(pesq_score):
        scores = {name: math.nan for name in ("pesq", "csig", "cbak", "covl", "llr", "wss")}
        scores["ssnr"] = segmental_snr(ref, est, sample_rate)
    else:
        scores = composite(ref, est, sample_rate, pesq_score=pesq_score)
    scores["stoi"] = stoi(ref, est, sample_rate)
    return {name: scores[name] for name in ENHANCEMENT_METRICS}
