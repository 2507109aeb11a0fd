"""AudioSepSystem: Asteroid's ``System`` training AudioSep on mixtures made on the fly from
captioned segments, validated on fixed mixtures by SDRi and SI-SDR."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from asteroid.engine.system import System
from asteroid.utils import flatten_dict

from ..data.mixing import SegmentMixer
from ..encoders import PrecomputedQueryEncoder
from ..errors import AudioSepError
from ..metrics.separation import sdr, si_sdr

#: Validation figures, in the order they are accumulated.
VAL_KEYS = ("val_sdri", "val_sdr", "val_si_sdr", "val_loss")


def step_seed(seed: int, key: int, stream: int) -> int:
    """A 63-bit seed derived from (seed, batch key, stream) for the random draws of one batch.

    Drawing every per-batch random number from a generator seeded this way makes a resumed run
    draw exactly what the uninterrupted run drew, with no generator state to checkpoint.
    """
    return int(np.random.SeedSequence([seed, key, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))


_MIXER_STREAM, _QUERY_STREAM = 1, 2


class AudioSepSystem(System):
    """Trains an :class:`~asteroid_audiosep.models.AudioSep` separator, its query encoder frozen.

    A training batch holds source segments and their captions (``{"waveform": (B, 1, T),
    "caption": [str] * B, ...}`` as collated from :class:`~asteroid_audiosep.data.
    LASSTrainDataset`, or a ``(segments, captions)`` pair). :meth:`common_step` mixes each
    segment with the other segments of the batch (:class:`~asteroid_audiosep.data.SegmentMixer`),
    turns the captions into query embeddings (looked up in ``query_cache``; captions that are
    not there go through the model's live query encoder), separates, and returns the loss.
    With ``use_text_ratio < 1`` that fraction of items keeps the text query and the others are
    queried by the audio embedding of their target (the encoder must have an audio tower, e.g.
    CLAP), as in the paper's hybrid training.

    Validation batches are fixed mixtures (``{"mixture", "target", "length", "query"}``, see
    :func:`~asteroid_audiosep.engine.batching.collate_eval`); it logs ``val_sdri``,
    ``val_sdr``, ``val_si_sdr`` (released definitions, whole clips) and ``val_loss``, means over
    every validation example of every rank, and keeps them in :attr:`history`.

    Only the separator's parameters are given to the optimiser; the query encoder is not a
    sub-module (it is never trained, moved by DDP, nor saved in checkpoints) and stays in
    eval mode.

    Args:
        model: the AudioSep model to train.
        optimizer: optimiser over ``model``'s parameters.
        loss_func: ``(est, target) -> scalar``, see :mod:`asteroid_audiosep.losses`.
        train_loader: training DataLoader; when its batch sampler has a ``start_step``
            attribute (:class:`~asteroid_audiosep.engine.batching.StepBatchSampler`), it is set
            from the global step when Lightning requests the loader, so a resumed run continues
            the data stream where the checkpoint left it.
        val_loader: validation DataLoader of fixed mixtures, or None.
        scheduler: Asteroid/Lightning scheduler (dict with ``interval: "step"``), or None.
        config: the run's configuration, saved in checkpoints.
        mixer: the on-the-fly mixer (default: released settings). Its generator is re-seeded
            at every step from ``(seed, step, rank)``.
        query_cache: precomputed embeddings of the training (and validation) captions.
        use_text_ratio: fraction of training items queried by text (1.0 as released).
        seed: seed of the per-step random draws (mixing gains, hybrid query choice).
        query_modality: what replaces the text of the other items: ``"audio"`` (the target's
            audio embedding, CLAP) or ``"image"`` (the clip's picture embedding, CLIP; only
            items whose clip has one, see :mod:`~asteroid_audiosep.engine.pictures`).
        picture_table: ``(table (num_clips, D), has_picture (num_clips,))`` indexed by the
            batch's ``index`` (the clip's position in the training set), for ``"image"``.
        clip_embeddings: ``(num_clips, D)`` audio embeddings of the training clips (see
            :mod:`~asteroid_audiosep.engine.hybrid`): an audio-queried item whose batch says
            which clip it was cut from (``index``) is queried by its clip's embedding instead
            of a live embedding of its target.
    """

    default_monitor = "val_sdri"

    def __init__(
        self,
        model,
        optimizer,
        loss_func,
        train_loader,
        val_loader=None,
        scheduler=None,
        config: Optional[dict] = None,
        mixer: Optional[SegmentMixer] = None,
        query_cache: Optional[PrecomputedQueryEncoder] = None,
        use_text_ratio: float = 1.0,
        seed: int = 0,
        query_modality: str = "audio",
        picture_table: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
        clip_embeddings: Optional[torch.Tensor] = None,
    ):
        super().__init__(model, optimizer, loss_func, train_loader, val_loader, scheduler, config)
        if not 0.0 <= float(use_text_ratio) <= 1.0:
            raise AudioSepError(f"use_text_ratio must be in [0, 1], got {use_text_ratio}")
        self.mixer = mixer if mixer is not None else SegmentMixer()
        # Kept outside the module tree: a (possibly large) CPU table, not a model part.
        self.__dict__["query_cache"] = query_cache
        self.__dict__["clip_embeddings"] = clip_embeddings
        self.use_text_ratio = float(use_text_ratio)
        if query_modality not in ("audio", "image"):
            raise AudioSepError(f"query_modality must be 'audio' or 'image', got {query_modality!r}")
        if query_modality == "image" and self.use_text_ratio < 1.0 and picture_table is None:
            raise AudioSepError("image-queried training needs the picture embeddings of the clips (picture_table)")
        self.query_modality = query_modality
        self.__dict__["picture_table"] = picture_table
        self.seed = int(seed)
        self.history: List[Dict[str, float]] = []
        self._val_sums: Optional[torch.Tensor] = None

    # ------------------------------------------------------------------ queries
    def text_conditions(self, texts: Sequence[str]) -> torch.Tensor:
        """Query embeddings of ``texts`` on this system's device, from the cache when possible.

        Texts missing from the cache are embedded by the model's live query encoder (built from
        its spec on first use).
        """
        texts = list(texts)
        cache = self.query_cache
        if cache is None:
            return self.model.embed_queries(texts).to(self.device)
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if not missing:
            return cache.encode_text(texts).to(self.device, non_blocking=True)
        live = dict(zip(missing, self.model.embed_queries(missing).float().cpu()))
        known = [t for t in texts if t in cache]
        table = dict(zip(known, cache.encode_text(known))) if known else {}
        table.update(live)
        return torch.stack([table[t] for t in texts]).to(self.device)

    def query_conditions(
        self, captions: Sequence[str], targets: Optional[torch.Tensor] = None, key: Optional[int] = None,
        clips: Optional[torch.Tensor] = None,
        indices: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Conditions of a training batch: text embeddings, some replaced by audio (or picture)
        embeddings.

        Args:
            captions: one caption per item.
            targets: (batch, 1, time) target segments, used for audio queries when
                ``use_text_ratio < 1``.
            key: identifies the batch for the random choice of audio-queried items (default:
                derived from the global step and rank).
            clips: the items' clip positions in the training set (``batch["index"]``): with
                :attr:`clip_embeddings`, audio-queried items take their clip's cached embedding;
                picture-queried items take their clip's picture embedding.
            indices: another name for ``clips``.
        """
        conditions = self.text_conditions(captions)
        if self.use_text_ratio >= 1.0 or targets is None:
            return conditions
        generator = torch.Generator().manual_seed(step_seed(self.seed, self._default_key(key), _QUERY_STREAM))
        clips = clips if clips is not None else indices
        if self.query_modality == "image":
            return self.picture_conditions(conditions, clips, torch.rand(len(captions), generator=generator))
        use_audio = torch.rand(len(captions), generator=generator) >= self.use_text_ratio
        if bool(use_audio.any()) and self.clip_embeddings is not None and clips is not None:
            conditions = conditions.clone()
            chosen = torch.as_tensor(clips).cpu()[use_audio]
            conditions[use_audio.to(conditions.device)] = self.clip_embeddings[chosen].to(conditions)
        elif bool(use_audio.any()):
            encoder = self.model.query_encoder
            audio = targets[use_audio.to(targets.device)].reshape(int(use_audio.sum()), -1)
            conditions = conditions.clone()
            audio_embeddings = encoder.encode_audio(audio, self.model.sample_rate).to(conditions)
            conditions[use_audio.to(conditions.device)] = audio_embeddings
        return conditions

    def picture_conditions(self, conditions: torch.Tensor, indices: Optional[torch.Tensor],
                           draws: torch.Tensor) -> torch.Tensor:
        """Replace the text condition of the items drawn (``draws >= use_text_ratio``) whose clip
        has a picture by that picture's cached embedding."""
        if indices is None:
            raise AudioSepError("image-queried training needs the clip index of every item (batch['index'])")
        table, has = self.picture_table
        indices = torch.as_tensor(indices, dtype=torch.long).cpu()
        use = (draws >= self.use_text_ratio) & has[indices]
        if not bool(use.any()):
            return conditions
        conditions = conditions.clone()
        conditions[use.to(conditions.device)] = table[indices[use]].to(conditions)
        return conditions

    def _default_key(self, key: Optional[int]) -> int:
        if key is not None:
            return int(key)
        return int(self.global_step) * int(self.trainer.world_size if self._trainer else 1) + int(self.global_rank)

    # ------------------------------------------------------------------ training
    @staticmethod
    def _unpack_train(batch) -> Tuple[torch.Tensor, List[str], Optional[int], Optional[torch.Tensor]]:
        segments, captions = batch["waveform"], batch["caption"]
        positions, clips = batch.get("position"), batch.get("index")
        if segments.dim() == 2:
            segments = segments.unsqueeze(1)
        if isinstance(captions, str) or len(captions) != segments.shape[0]:
            raise AudioSepError(
                f"a training batch needs one caption per segment, got {len(captions)} for {segments.shape[0]}"
            )
        key = int(positions[0]) if positions is not None and len(positions) else None
        return segments, list(captions), key, clips

    def common_step(self, batch, batch_nb, train: bool = True) -> torch.Tensor:
        """Mix the batch's segments, embed the captions, separate, and return the loss.

        The random draws of the step (mixing gains, audio-queried items) come from generators
        seeded by ``(seed, key)``, the key being the batch's first stream position (unique per
        batch and rank; see :mod:`~asteroid_audiosep.engine.batching`), else the global step and
        rank: a resumed run draws what the uninterrupted run drew.
        """
        segments, captions, key, clips = self._unpack_train(batch)
        key = self._default_key(key)
        if train:
            self.mixer.generator = torch.Generator().manual_seed(step_seed(self.seed, key, _MIXER_STREAM))
        mixtures, targets = self.mixer(segments)
        conditions = self.query_conditions(captions, targets if train else None, key=key, clips=clips)
        finite = True
        if train and not (bool(torch.isfinite(mixtures).all()) and bool(torch.isfinite(conditions).all())):
            # A NaN/Inf input still goes through the model (zeroed; with DDP every rank must run
            # its backward), and the loss is made NaN: NonFiniteGuard then skips the step on every rank.
            finite = False
            mixtures = torch.nan_to_num(mixtures, nan=0.0, posinf=0.0, neginf=0.0)
            conditions = torch.nan_to_num(conditions, nan=0.0, posinf=0.0, neginf=0.0)
        estimates = self.model(mixtures, conditions)
        loss = self.loss_func(estimates, targets)
        return loss if finite else loss * float("nan")

    def training_step(self, batch, batch_nb):
        loss = self.common_step(batch, batch_nb, train=True)
        batch_size = len(batch["caption"])
        self.log("loss", loss, on_step=True, on_epoch=False, prog_bar=True, logger=True, batch_size=batch_size)
        return loss

    def on_train_start(self) -> None:
        encoder = self.model.__dict__.get("_query_encoder")
        if encoder is not None:
            encoder.eval()

    def train_dataloader(self):
        """The training loader, its step sampler positioned after the batches that the
        (restored) global step consumed (``global_step x accumulate_grad_batches``)."""
        sampler = getattr(self.train_loader, "batch_sampler", None)
        if hasattr(sampler, "start_step"):
            accumulate = int(self.trainer.accumulate_grad_batches) if self._trainer is not None else 1
            sampler.start_step = int(self.global_step) * accumulate
        return self.train_loader

    # ------------------------------------------------------------------ validation
    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(len(VAL_KEYS) + 1, dtype=torch.float64, device=self.device)

    def validation_step(self, batch, batch_nb):
        """Separate fixed mixtures; accumulate SDRi, SDR, SI-SDR and the loss per example.

        Items of a padded batch are separated at their own length (items of equal length
        together), so the figures are those of whole clips processed one at a time.
        """
        mixture, target, lengths = batch["mixture"], batch["target"], batch["length"]
        conditions = self.text_conditions(batch["query"])
        sums = torch.zeros_like(self._val_sums)
        for n in sorted(set(lengths.tolist())):
            index = (lengths == n).nonzero()[:, 0].to(mixture.device)
            mix, ref = mixture[index, :n], target[index, :n]
            est = self.model(mix, conditions[index])[:, 0].float()
            sdr_est = sdr(ref, est)
            losses = torch.stack([self.loss_func(e[None, None], r[None, None]) for e, r in zip(est, ref)])
            values = torch.stack([sdr_est - sdr(ref, mix), sdr_est, si_sdr(ref, est), losses, torch.ones_like(losses)])
            sums += values.to(sums).sum(dim=1)
        self._val_sums += sums

    def on_validation_epoch_end(self) -> None:
        sums = self._val_sums
        if self.trainer.world_size > 1:
            sums = self.all_gather(sums).reshape(-1, sums.shape[-1]).sum(0)
        count = float(sums[-1])
        if count == 0 or self.trainer.sanity_checking:
            return
        means = {k: float(v) / count for k, v in zip(VAL_KEYS, sums[:-1].tolist())}
        # For the progress bar and checkpoint monitors; the logger gets them at the global step
        # itself (Lightning would log them one step earlier during fit).
        self.log_dict(means, prog_bar=True, logger=False, sync_dist=False)
        self.history.append(dict(step=int(self.global_step), **means, num_examples=int(count)))
        if self.trainer.logger is not None:
            self.trainer.logger.log_metrics(dict(means, hp_metric=means["val_sdri"]), step=self.global_step)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> Dict[str, Any]:
        checkpoint = super().on_save_checkpoint(checkpoint)
        checkpoint["validation_history"] = list(self.history)
        return checkpoint

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        self.history = list(checkpoint.get("validation_history", []))

    @staticmethod
    def config_to_hparams(dic: dict) -> dict:
        """Flatten the config for TensorBoard: None and lists that are not numeric become text."""
        flat = flatten_dict(dic)
        for key, value in flat.items():
            if value is None:
                flat[key] = "None"
            elif isinstance(value, (list, tuple)):
                try:
                    flat[key] = torch.tensor(value)
                except (TypeError, ValueError, RuntimeError):
                    flat[key] = str(value)
        return flat
