"""AudioSep: a text-queried source separator as a serialisable Asteroid ``BaseModel``."""
import os
import warnings
from typing import Optional, Sequence, Union

import torch
from asteroid.models.base_models import BaseModel

from ..encoders import QueryEncoder, build_query_encoder
from ..errors import AudioSepError
from ..masknn import ResUNet30
from ..version import __version__


def _released_args() -> dict:
    """The released architecture, read from the one place it is written: the ``model`` section of
    ``resources/train_defaults.yaml`` (training's defaults), at its ``data.sample_rate``, with
    CLAP's 512-d conditions (the section leaves ``condition_dim`` to the query encoder). Its
    ``query_encoder`` (attached, not built) and ``dprnn`` (null here; set, it selects
    :class:`~asteroid_audiosep.models.AudioSepDP`) are not constructor arguments of this class."""
    import yaml

    from ..resources import TRAIN_DEFAULTS

    conf = yaml.safe_load(TRAIN_DEFAULTS.read_text(encoding="utf-8"))
    args = {k: v for k, v in conf["model"].items() if k not in ("query_encoder", "dprnn")}
    args.update(sample_rate=conf["data"]["sample_rate"], condition_dim=512)
    return args


#: Constructor arguments of the released AudioSep separator (audiosep_base_4M_steps.ckpt); the
#: constructor's defaults.
RELEASED_ARGS = _released_args()
_R = RELEASED_ARGS


def _plain(value):
    """Convert tuples (and nested ones) to lists so that packages hold only plain types."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class AudioSep(BaseModel):
    """Language-queried audio source separation (Liu et al., "Separate Anything You Describe").

    The mixture's STFT magnitude goes through a FiLM-conditioned ResUNet that predicts, per
    time-frequency bin, a magnitude mask and a phase rotation; the masked spectrum is turned
    back into a waveform with the inverse STFT. The condition is a query embedding from a
    frozen text (or audio) encoder, see :mod:`asteroid_audiosep.encoders`.

    Args:
        sample_rate: operating sample rate in Hz.
        n_fft: FFT size (also the window length); periodic Hann window, centered frames.
        hop_length: STFT hop in samples.
        in_channels: audio channels processed jointly by the network (the released model: 1).
        channels: encoder block widths; the decoder mirrors them.
        bottleneck_channels: width of the bottleneck block.
        pool_sizes: (time, frequency) pooling after each encoder block.
        condition_dim: size of the query embedding.
        film_mode: ``"beta"`` (additive, as released) or ``"gamma_beta"`` (paper's Eq. 6-7).
        film_hidden_dim: hidden width of the ``gamma_beta`` FiLM layers.
        bn_momentum: BatchNorm momentum.
        negative_slope: LeakyReLU slope.
        query_encoder: identity of the query encoder (a dict such as
            ``{"type": "clap", "checkpoint": ...}``, see
            :func:`~asteroid_audiosep.encoders.build_query_encoder`), or None when conditions
            are always given as embeddings. The encoder is built on first use, never stored
            in the state dict.

    References:
        Liu et al., "Separate Anything You Describe", arXiv:2308.05037, 2023.
        Kong et al., "Decoupling magnitude and phase estimation with deep ResUNet for music
        source separation", ISMIR 2021.
    """

    def __init__(
        self,
        sample_rate: int = _R["sample_rate"],
        n_fft: int = _R["n_fft"],
        hop_length: int = _R["hop_length"],
        in_channels: int = _R["in_channels"],
        channels: Sequence[int] = tuple(_R["channels"]),
        bottleneck_channels: int = _R["bottleneck_channels"],
        pool_sizes: Sequence[Sequence[int]] = tuple(map(tuple, _R["pool_sizes"])),
        condition_dim: int = _R["condition_dim"],
        film_mode: str = _R["film_mode"],
        film_hidden_dim: Optional[int] = _R["film_hidden_dim"],
        bn_momentum: float = _R["bn_momentum"],
        negative_slope: float = _R["negative_slope"],
        query_encoder: Optional[dict] = None,
    ):
        args = {k: v for k, v in locals().items() if k in RELEASED_ARGS}  # what get_model_args returns
        super().__init__(sample_rate=sample_rate, in_channels=in_channels)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.condition_dim = int(condition_dim)
        self._args = _plain(args)
        self.separator = ResUNet30(
            freq_bins=self.n_fft // 2 + 1,
            in_channels=in_channels,
            channels=channels,
            bottleneck_channels=bottleneck_channels,
            pool_sizes=pool_sizes,
            condition_dim=condition_dim,
            film_mode=film_mode,
            film_hidden_dim=film_hidden_dim,
            momentum=bn_momentum,
            negative_slope=negative_slope,
        )
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.query_encoder_spec = _plain(dict(query_encoder)) if query_encoder else None
        # Not a sub-module: the frozen encoder is neither trained, nor saved with the separator.
        self.__dict__["_query_encoder"] = None

    # ------------------------------------------------------------------ query encoder
    @property
    def query_encoder(self) -> QueryEncoder:
        """The query encoder, built from ``query_encoder_spec`` on first use."""
        if self._query_encoder is None:
            if self.query_encoder_spec is None:
                raise AudioSepError(
                    "this model has no query encoder: pass query embeddings as `condition`, "
                    "or attach one with model.set_query_encoder(...)"
                )
            self.set_query_encoder(build_query_encoder(self.query_encoder_spec))
        return self._query_encoder

    def set_query_encoder(self, encoder: QueryEncoder, update_spec: bool = True) -> "AudioSep":
        """Attach a query encoder (frozen, eval mode, on the model's device)."""
        if encoder.embed_dim != self.condition_dim:
            raise AudioSepError(
                f"query encoder gives {encoder.embed_dim}-d embeddings but the model expects "
                f"condition_dim={self.condition_dim}"
            )
        encoder.requires_grad_(False).eval().to(self.window.device)
        self.__dict__["_query_encoder"] = encoder
        if update_spec:
            try:
                self.query_encoder_spec = _plain(encoder.spec())
            except AudioSepError as err:  # e.g. an in-memory embedding table
                warnings.warn(f"the query encoder will not be saved with the model: {err}")
                self.query_encoder_spec = None
        return self

    @torch.no_grad()
    def embed_queries(self, queries: Union[str, Sequence[str]]) -> torch.Tensor:
        """Text queries -> (N, condition_dim) embeddings on the model's device."""
        if isinstance(queries, str):
            queries = [queries]
        emb = self.query_encoder.encode_text(list(queries))
        return emb.to(self.window.device, torch.float32)

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        if self._query_encoder is not None:
            self._query_encoder._apply(fn, *args, **kwargs)
        return out

    # ------------------------------------------------------------------ signal path
    def fold_channels(self, wav: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) -> the network's items (items, in_channels, time).

        A mono model takes each channel as one item (``batch * channels`` items, batch-major);
        a multichannel model takes inputs with exactly its channels.

        Raises:
            AudioSepError: the channels do not suit the model.
        """
        b, c, t = wav.shape
        self.check_channels(c)
        return wav.reshape(b * c, 1, t) if self.in_channels == 1 else wav

    def check_channels(self, channels: int) -> None:
        """Raise :class:`AudioSepError` unless audio of ``channels`` channels suits the model."""
        if self.in_channels != 1 and channels != self.in_channels:
            raise AudioSepError(f"the model takes {self.in_channels} channels; the audio has {channels}")

    def pad_short(self, wav: torch.Tensor) -> torch.Tensor:
        """Zero-pad inputs shorter than half an STFT window plus one sample (centered frames use
        reflect padding, which needs that many); longer inputs are returned as they are."""
        minimum = self.n_fft // 2 + 1
        if wav.shape[-1] < minimum:
            wav = torch.nn.functional.pad(wav, (0, minimum - wav.shape[-1]))
        return wav

    def _check_inputs(self, wav: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        if not isinstance(wav, torch.Tensor):
            raise AudioSepError(f"wav must be a torch.Tensor, got {type(wav).__name__}")
        if wav.dim() == 2:
            wav = wav.unsqueeze(1)
        if wav.dim() != 3 or wav.shape[1] != self.in_channels:
            raise AudioSepError(
                f"wav must have shape (batch, time) or (batch, {self.in_channels}, time), "
                f"got {tuple(wav.shape)}"
            )
        if not isinstance(condition, torch.Tensor) or condition.dim() != 2:
            shape = tuple(condition.shape) if isinstance(condition, torch.Tensor) else condition
            raise AudioSepError(f"condition must be a (batch, {self.condition_dim}) tensor, got {shape}")
        if condition.shape[1] != self.condition_dim:
            raise AudioSepError(
                f"condition has size {condition.shape[1]} but this model expects "
                f"{self.condition_dim}-d query embeddings"
            )
        if condition.shape[0] != wav.shape[0]:
            raise AudioSepError(
                f"batch sizes differ: {wav.shape[0]} mixtures but {condition.shape[0]} conditions"
            )
        if wav.shape[-1] == 0:
            raise AudioSepError("wav is empty (0 samples)")
        if not bool(torch.isfinite(wav).all()):
            raise AudioSepError("wav contains NaN or infinite values")
        if not bool(torch.isfinite(condition).all()):
            raise AudioSepError("condition contains NaN or infinite values")
        return wav

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) -> complex (batch, channels, frames, freq_bins)."""
        b, c, t = wav.shape
        spec = torch.stft(
            wav.reshape(b * c, t),
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return spec.reshape(b, c, *spec.shape[-2:]).transpose(-1, -2)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Complex (batch, channels, frames, freq_bins) -> (batch, channels, length)."""
        b, c = spec.shape[:2]
        wav = torch.istft(
            spec.transpose(-1, -2).reshape(b * c, spec.shape[-1], spec.shape[-2]),
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            length=length,
        )
        return wav.reshape(b, c, length)

    def separate_spectrogram(self, spec: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Apply the predicted complex mask to a mixture spectrogram (same shape out)."""
        return torch.complex(*self.mask_spectrogram(spec.real, spec.imag, condition))

    def mask_spectrogram(self, real_in: torch.Tensor, imag_in: torch.Tensor, condition: torch.Tensor):
        """:meth:`separate_spectrogram` on the real and imaginary parts (no complex dtype, as an
        ONNX graph needs): ``(real, imag)`` of the separated spectrum."""
        mag = torch.clamp(real_in**2 + imag_in**2, min=1e-10).sqrt()
        cos_in, sin_in = real_in / mag, imag_in / mag
        # The mask arithmetic runs in float32 whatever the network's autocast dtype: in fp16
        # the norm's floor (1e-10) underflows to 0 and tiny phase components give 0 / 0.
        out = self.separator(mag, condition).float()
        b, _, frames, freqs = out.shape
        out = out.reshape(b, self.in_channels, 3, frames, freqs)
        mask_mag = torch.sigmoid(out[:, :, 0])
        real, imag = torch.tanh(out[:, :, 1]), torch.tanh(out[:, :, 2])
        norm = torch.clamp(torch.sqrt(real**2 + imag**2), min=1e-10)
        mask_cos, mask_sin = real / norm, imag / norm
        out_mag = torch.relu(mag * mask_mag)
        out_cos = cos_in * mask_cos - sin_in * mask_sin
        out_sin = sin_in * mask_cos + cos_in * mask_sin
        return out_mag * out_cos, out_mag * out_sin

    def forward(self, wav: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Separate the source described by ``condition`` from ``wav``.

        Args:
            wav: mixtures, (batch, time) or (batch, in_channels, time).
            condition: query embeddings, (batch, condition_dim).

        Returns:
            The separated waveforms, (batch, in_channels, time).
        """
        wav = self._check_inputs(wav, condition)
        condition = condition.to(wav.dtype)
        length = wav.shape[-1]
        wav = self.pad_short(wav)
        spec = self.stft(wav)
        return self.istft(self.separate_spectrogram(spec, condition), wav.shape[-1])[..., :length]

    def forward_wav(self, wav: torch.Tensor, query=None, condition=None, **kwargs) -> torch.Tensor:
        """Waveform in, waveform out, for :func:`asteroid.separate.separate` given a ``query``.

        ``asteroid-infer`` cannot use it: that CLI neither loads this plugin nor passes a query
        (docs/asteroid.md; ``asteroid-audiosep separate`` is the command-line equivalent).

        Args:
            wav: (time,), (channels, time) or (batch, channels, time) mixture at
                ``self.sample_rate``.
            query: a text query (str, used for every batch item) or one per batch item.
            condition: precomputed query embeddings instead of ``query``.

        Returns:
            The separated waveform, shaped like the input but for a 1-D input, which gives
            (1, time). Channels of a multichannel input are separated independently by a mono
            model; with mono input, axis -2 is Asteroid's source axis (one source).
        """
        if (query is None) == (condition is None):
            raise AudioSepError("give exactly one of `query` (text) or `condition` (embeddings)")
        squeeze = wav.dim() < 3
        if wav.dim() == 1:
            wav = wav[None, None]
        elif wav.dim() == 2:
            wav = wav[None]
        b, c, t = wav.shape
        if condition is None:
            queries = [query] * b if isinstance(query, str) else list(query)
            if len(queries) != b:
                raise AudioSepError(f"{len(queries)} queries for a batch of {b} mixtures")
            condition = self.embed_queries(queries)
        condition = torch.as_tensor(condition, device=wav.device)
        if condition.dim() == 1:
            condition = condition[None].expand(b, -1)
        items = self.fold_channels(wav)  # a mono model separates each channel independently
        out = self(items, condition.repeat_interleave(items.shape[0] // b, dim=0)).reshape(b, c, t)
        if squeeze:
            out = out[0]
        return out

    # ------------------------------------------------------------------ serialisation
    def get_model_args(self) -> dict:
        """Arguments that rebuild this model (plain types only)."""
        args = dict(self._args)
        args["query_encoder"] = self.query_encoder_spec
        return args

    def get_state_dict(self) -> dict:
        """All tensors of :meth:`state_dict` (the separator's weights and buffers; a query encoder
        is not a submodule, it is rebuilt from its spec), as a new dict."""
        return dict(self.state_dict())

    def serialize(self) -> dict:
        """Asteroid package ``{model_name, model_args, state_dict, infos}`` of plain types.

        Asteroid 0.7.0 stores ``torch.__version__`` as a ``TorchVersion`` object, which
        ``torch.load(weights_only=True)`` (the default since torch 2.6) rejects; versions are
        stored as strings here.
        """
        conf = super().serialize()
        conf["infos"]["software_versions"] = {
            k: str(v) for k, v in conf["infos"]["software_versions"].items()
        }
        conf["infos"]["software_versions"]["asteroid_audiosep_version"] = __version__
        conf["infos"]["num_parameters"] = sum(p.numel() for p in self.parameters())
        return conf

    @classmethod
    def from_pretrained(cls, pretrained_model_conf_or_path, *args, **kwargs) -> "AudioSep":
        """Load a model package written by :meth:`serialize` (a path, URL or the package dict),
        as Asteroid's ``BaseModel.from_pretrained`` does.

        Released checkpoints and released model names (``"audiosep-base"``) are resolved by
        :func:`asteroid_audiosep.pretrained.load_model`, which converts them to packages first.
        A file is read by :func:`asteroid_audiosep.checkpoints.load_checkpoint` (weights-only).
        """
        conf = pretrained_model_conf_or_path
        if not isinstance(conf, dict):
            from asteroid.utils.hub_utils import cached_download

            from ..checkpoints import load_checkpoint

            conf = load_checkpoint(cached_download(os.fspath(conf)), what="model package")
        return super().from_pretrained(conf, *args, **kwargs)

    @property
    def time_pool_factor(self) -> int:
        """Frames are padded to a multiple of this inside the network."""
        return self.separator.time_factor
