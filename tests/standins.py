"""Stand-ins for the metadata that released checkpoints carry besides their tensors, and a
checkpoint that runs code when it is unpickled (tests of the safe loader).

The released AudioSep, DCASE 2024 Task 9 baseline and AudioSep-DP files are Lightning
checkpoints written by ``trainer.save_checkpoint`` of the released training code: a
LightningModule whose optimizer is AdamW (amsgrad) stepped every batch by a ``LambdaLR`` over a
``functools.partial`` of a warm-up function, a checkpointing callback without state, no logger,
no saved hyper-parameters; AudioSep-DP's training also validates (``val_sdr``). The metadata here
is what this Lightning writes for that setup. The LAION-CLAP checkpoints are
``{"epoch", "name", "state_dict", "optimizer"[, "scaler"]}`` written by ``torch.save`` of the CLAP
training code, whose cosine schedule sets each group's learning rate to a NumPy float64.
"""
import functools
import importlib.util
import pathlib
from pathlib import Path

import numpy as np
import torch

ZOO_LAYOUTS = ("dcase2024_baseline_16k", "audiosep_dp_16k", "audiosep_dp_32k")


def reference_module(reference: Path, relative: str):
    """Import a script of the reference folder (``official_checkpoint.py``, ``zoo/standin_checkpoint.py``)."""
    path = reference / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def linear_warm_up(step: int, warm_up_steps: int, reduce_lr_steps: int) -> float:
    """The released learning-rate factor (linear warm-up, then x0.9 every reduce_lr_steps)."""
    return step / warm_up_steps if step <= warm_up_steps else 0.9 ** (step // reduce_lr_steps)


def lightning_metadata(workdir: Path, validate: bool = False) -> dict:
    """Everything but ``state_dict`` of a Lightning checkpoint written as the released training
    code writes it (2 steps of a tiny network; with ``validate``, AudioSep-DP's validation and a
    ``ModelCheckpoint`` on ``val_sdr``)."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    class Released(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.ss_model = torch.nn.Linear(4, 4)

        def training_step(self, batch, batch_idx):
            loss = self.ss_model(batch[0]).abs().mean()
            self.log_dict({"train_loss": loss})
            return loss

        def validation_step(self, batch, batch_idx):
            self.log_dict({"val_sdr": -self.ss_model(batch[0]).abs().mean()}, batch_size=4)

        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.ss_model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                          weight_decay=0.0, amsgrad=True)
            lr_lambda = functools.partial(linear_warm_up, warm_up_steps=10000, reduce_lr_steps=1000000)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    class CheckpointEveryNSteps(pl.Callback):
        """The released callback: saves checkpoints, keeps no state."""

    callbacks = [CheckpointEveryNSteps()]
    if validate:
        callbacks.append(pl.callbacks.ModelCheckpoint(dirpath=str(workdir / "ckpts"), monitor="val_sdr", mode="max"))
    data = DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=2, logger=False, callbacks=callbacks,
                         enable_checkpointing=validate, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=1 if validate else 0)
    trainer.fit(Released(), data, data if validate else None)
    path = workdir / "lightning.ckpt"
    trainer.save_checkpoint(str(path))
    ckpt = torch.load(path, map_location="cpu", weights_only=False)  # written just above
    del ckpt["state_dict"]
    return ckpt


def clap_metadata() -> dict:
    """Everything but ``state_dict`` of a published LAION-CLAP checkpoint."""
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.AdamW([{"params": [param], "weight_decay": 0.0}], lr=1e-4, betas=(0.9, 0.99), eps=1e-9)
    param.grad = torch.ones(3)
    optimizer.step()
    for group in optimizer.param_groups:  # CLAP's cosine_lr: 0.5 * (1 + np.cos(...)) * base_lr
        group["lr"] = 0.5 * (1 + np.cos(np.pi * 0.25)) * 1e-4
    assert isinstance(optimizer.param_groups[0]["lr"], np.float64)
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
              "_growth_tracker": 0}  # torch.cuda.amp.GradScaler.state_dict()
    return {"epoch": 15, "name": "music_speech_audioset", "optimizer": optimizer.state_dict(), "scaler": scaler}


class RunsCodeOnLoad:
    """A pickled object whose unpickling creates the file ``marker`` (``Path.touch``): what a
    malicious checkpoint does with ``os.system`` instead."""

    def __init__(self, marker: Path):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)
