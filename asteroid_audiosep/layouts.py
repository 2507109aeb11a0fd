"""Released checkpoint layouts of AudioSep's family, recognised from the tensors themselves.

Three public systems share the released AudioSep code's ``ss_model.*`` tensor names: the
released AudioSep (32 kHz), the DCASE 2024 Task 9 baseline (the same ResUNet at 16 kHz) and
AudioSep-DP (16 or 32 kHz, plus a dual-path RNN at the bottleneck). None stores its
hyper-parameters, so the architecture is read from tensor shapes: ``bn0`` has one feature per
STFT bin (1025: window 2048 / hop 320 at 32 kHz; 513: window 1024 / hop 160 at 16 kHz), and the
``DPRNN.0.*`` tensors give the block's layer count and hidden size.
"""
import re
from typing import Dict, List, Optional, Tuple

import torch

from .errors import AudioSepError

#: STFT and rate of the released systems, by the number of ``bn0`` features (STFT bins).
STFT_BY_BINS = {
    1025: dict(sample_rate=32000, n_fft=2048, hop_length=320),
    513: dict(sample_rate=16000, n_fft=1024, hop_length=160),
}

_RENAMES = [
    # (regex on the released name without "ss_model.", replacement) in order.
    (r"^base\.(bn0|pre_conv|after_conv)\.", r"separator.\1."),
    (r"^base\.encoder_block(\d)\.conv_block1\.", lambda m: f"separator.encoder_blocks.{int(m[1]) - 1}.conv_block."),
    (r"^base\.conv_block7a\.conv_block1\.", "separator.bottleneck.conv_block."),
    (r"^base\.decoder_block(\d)\.conv_block2\.", lambda m: f"separator.decoder_blocks.{int(m[1]) - 1}.conv_block."),
    (r"^base\.decoder_block(\d)\.(conv1|bn1)\.", lambda m: f"separator.decoder_blocks.{int(m[1]) - 1}.{m[2]}."),
    (r"^film\.encoder_block(\d)->conv_block1->beta(\d)\.",
     lambda m: f"separator.encoder_blocks.{int(m[1]) - 1}.conv_block.film{m[2]}.linear."),
    (r"^film\.conv_block7a->conv_block1->beta(\d)\.", r"separator.bottleneck.conv_block.film\1.linear."),
    (r"^film\.decoder_block(\d)->conv_block2->beta(\d)\.",
     lambda m: f"separator.decoder_blocks.{int(m[1]) - 1}.conv_block.film{m[2]}.linear."),
    (r"^film\.decoder_block(\d)->beta1\.", lambda m: f"separator.decoder_blocks.{int(m[1]) - 1}.film1.linear."),
]
# Released tensors that the computation never uses: the STFT/ISTFT kernels (torch.stft is
# used instead), and each decoder block's unused bn2 and beta2.
_DROPPED = re.compile(r"^(base\.(stft|istft)\.|base\.decoder_block\d\.bn2\.|film\.decoder_block\d->beta2\.)")
_DPRNN = "base.DPRNN.0."


def rename(key: str) -> Optional[str]:
    """The :class:`~asteroid_audiosep.models.AudioSep` (or ``AudioSepDP``) name of a released
    separator tensor (``key`` without ``ss_model.``); None for a tensor that is dropped.

    Raises:
        KeyError: not a tensor of any released layout.
    """
    if _DROPPED.match(key):
        return None
    if key.startswith(_DPRNN):
        from .masknn.dprnn import released_key

        new = released_key(key[len(_DPRNN):])
        if new is None:
            raise KeyError(key)
        return "separator.center." + new
    for pattern, repl in _RENAMES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    raise KeyError(key)


def known_layouts() -> Dict[str, Tuple[str, dict]]:
    """``{name: (description, model arguments)}`` of the released layouts (names as in
    :data:`asteroid_audiosep.hub.KNOWN_MODELS`)."""
    from .models import DP_RELEASED_ARGS, RELEASED_ARGS

    return {
        "audiosep-base": ("released AudioSep (audiosep_base_4M_steps.ckpt, 32 kHz)", dict(RELEASED_ARGS)),
        "dcase2024-baseline": ("DCASE 2024 Task 9 baseline (16 kHz)", dict(RELEASED_ARGS, **STFT_BY_BINS[513])),
        "audiosep-dp-16k": ("AudioSep-DP 16 kHz", dict(DP_RELEASED_ARGS, **STFT_BY_BINS[513])),
        "audiosep-dp-32k": ("AudioSep-DP 32 kHz", dict(DP_RELEASED_ARGS)),
    }


def read_architecture(state_dict: Dict[str, torch.Tensor]) -> Optional[dict]:
    """Model arguments read from a released state dict's shapes (``ss_model.*`` keys), or None
    when ``bn0`` is missing or has a size that no released system uses."""
    from .models import RELEASED_ARGS

    bn0 = state_dict.get("ss_model.base.bn0.weight")
    if bn0 is None or bn0.dim() != 1 or int(bn0.shape[0]) not in STFT_BY_BINS:
        return None
    args = dict(RELEASED_ARGS, **STFT_BY_BINS[int(bn0.shape[0])])
    prefix = "ss_model." + _DPRNN
    if not any(str(k).startswith(prefix) for k in state_dict):
        return args
    names = [str(k)[len(prefix):] for k in state_dict if str(k).startswith(prefix)]
    layers = sum(1 for k in names if re.fullmatch(r"row_rnn\.\d+\.proj\.weight", k))
    rnn_layers = sum(1 for k in names if re.fullmatch(r"row_rnn\.0\.rnn\.weight_ih_l\d+", k))
    hh = state_dict.get(prefix + "row_rnn.0.rnn.weight_hh_l0")
    if not layers or not rnn_layers or hh is None or hh.dim() != 2:
        return dict(args, dprnn=dict(layers=max(layers, 1), hidden=128, rnn_layers=max(rnn_layers, 1), dropout=0.1))
    return dict(args, dprnn=dict(layers=layers, hidden=int(hh.shape[1]), rnn_layers=rnn_layers, dropout=0.1))


def model_class(args: dict):
    """:class:`AudioSepDP` when ``args`` has a ``dprnn`` block, else :class:`AudioSep`."""
    from .models import AudioSep, AudioSepDP

    return AudioSepDP if args.get("dprnn") else AudioSep


def _reference_shapes(args: dict) -> Dict[str, Tuple[int, ...]]:
    with torch.device("meta"):
        model = model_class(args)(**args)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _compare(renamed: Dict[str, Tuple[str, torch.Tensor]], foreign: List[str], args: dict):
    reference = _reference_shapes(args)
    unexpected = list(foreign)
    for new, (key, value) in renamed.items():
        if new not in reference:
            unexpected.append(key)
        elif reference[new] != tuple(value.shape):
            unexpected.append(f"{key} (shape {tuple(value.shape)}, expected {reference[new]})")
    missing = [k for k in reference if k not in renamed]
    return missing, unexpected


def _describe(args: dict, layouts: Dict[str, Tuple[str, dict]]) -> str:
    for name, (text, known) in layouts.items():
        if known == args:
            return f"{name} ({text})"
    dp = args.get("dprnn")
    block = f", dual-path block layers={dp['layers']} hidden={dp['hidden']}" if dp else ""
    return f"AudioSep-family layout read from the tensors ({args['sample_rate']} Hz{block})"


def match_layout(
    state_dict: Dict[str, torch.Tensor],
) -> Tuple[str, dict, Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Recognise a released checkpoint's layout and rename its tensors.

    Args:
        state_dict: a released Lightning ``state_dict`` (``ss_model.*``, ``query_encoder.*``).

    Returns:
        ``(description, model arguments, separator tensors renamed, CLAP tensors)``.

    Raises:
        AudioSepError: no layout matches exactly; the message names the closest one and the
            first missing and unexpected tensors.
    """
    renamed, clap, foreign = {}, {}, []
    for key, value in state_dict.items():
        key = str(key)
        if key.startswith("query_encoder."):
            clap[key] = value
        elif not key.startswith("ss_model."):
            foreign.append(key)
        else:
            try:
                new = rename(key[len("ss_model."):])
            except KeyError:
                foreign.append(key)
                continue
            if new is not None:
                renamed[new] = (key, value)
    layouts = known_layouts()
    candidates = [] if (args := read_architecture(state_dict)) is None else [args]
    candidates += [a for _, a in layouts.values() if a not in candidates]
    best = None
    for args in candidates:
        missing, unexpected = _compare(renamed, foreign, args)
        if not missing and not unexpected:
            return _describe(args, layouts), args, {k: v for k, (_, v) in renamed.items()}, clap
        score = len(missing) + len(unexpected)
        if best is None or score < best[0]:
            best = (score, args, missing, unexpected)
    _, args, missing, unexpected = best
    raise AudioSepError(
        "not a checkpoint of a known AudioSep layout; closest: " + _describe(args, layouts)
        + f", with {len(missing)} missing tensors {missing[:5]}{'...' if len(missing) > 5 else ''} and "
        f"{len(unexpected)} unexpected tensors {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}. "
        "Known layouts: " + ", ".join(f"{n} ({t})" for n, (t, _) in layouts.items())
    )
