"""AudioSep-DP: AudioSep with a dual-path RNN at the ResUNet's bottleneck (DCASE 2024 Task 9)."""
from typing import Optional

from ..errors import AudioSepError
from ..masknn.dprnn import DualPathRNN
from .audiosep import RELEASED_ARGS, AudioSep

#: The dual-path block of the released AudioSep-DP code (its defaults; a checkpoint's own
#: values are read from its tensor shapes by :mod:`asteroid_audiosep.official`).
DPRNN_DEFAULTS = dict(layers=2, hidden=128, rnn_layers=2, dropout=0.1)

#: Constructor arguments of the released AudioSep-DP checkpoints (32 kHz; the 16 kHz one has
#: ``sample_rate=16000, n_fft=1024, hop_length=160``).
DP_RELEASED_ARGS = dict(RELEASED_ARGS, dprnn=dict(DPRNN_DEFAULTS))


def dprnn_args(dprnn: Optional[dict]) -> dict:
    """A complete dual-path block spec (:data:`DPRNN_DEFAULTS` filled in), checked.

    Raises:
        AudioSepError: an unknown key or a non-positive size.
    """
    spec = dict(DPRNN_DEFAULTS)
    unknown = set(dprnn or {}) - set(spec)
    if unknown:
        raise AudioSepError(f"unknown dprnn keys {sorted(unknown)}; accepted: {sorted(spec)}")
    spec.update(dprnn or {})
    for key in ("layers", "hidden", "rnn_layers"):
        if int(spec[key]) < 1:
            raise AudioSepError(f"dprnn.{key} must be >= 1, got {spec[key]}")
        spec[key] = int(spec[key])
    spec["dropout"] = float(spec["dropout"])
    return spec


class AudioSepDP(AudioSep):
    """AudioSep with AudioSep-DP's dual-path RNN between the bottleneck and the decoder.

    Everything else (STFT, FiLM-conditioned ResUNet, complex mask) is :class:`AudioSep`. The
    block (:class:`~asteroid_audiosep.masknn.dprnn.DualPathRNN`) runs bidirectional GRUs along
    time and frequency over the whole bottleneck map, so, unlike AudioSep, the output of a chunk
    depends on the whole chunk: chunked inference of long files is close to, not equal to, one
    forward (docs/zoo.md has the measurement).

    Args:
        dprnn: the block, ``{"layers", "hidden", "rnn_layers", "dropout"}`` (missing keys:
            :data:`DPRNN_DEFAULTS`, the released code's defaults).
        **kwargs: :class:`AudioSep` arguments.

    References:
        AudioSep-DP, a DCASE 2024 Task 9 (language-queried audio source separation) system,
        arXiv:2409.13292.
        Luo et al., "Dual-path RNN", ICASSP 2020.
    """

    def __init__(self, dprnn: Optional[dict] = None, **kwargs):
        super().__init__(**kwargs)
        self.dprnn = dprnn_args(dprnn)
        channels = self._args["bottleneck_channels"]
        self.separator.center = DualPathRNN(channels, **self.dprnn)

    def get_model_args(self) -> dict:
        """Arguments that rebuild this model (AudioSep's plus ``dprnn``)."""
        args = super().get_model_args()
        args["dprnn"] = dict(self.dprnn)
        return args
