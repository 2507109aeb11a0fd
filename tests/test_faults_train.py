"""Training faults injected on the CPU (issue 27 items 1, 2, 3's checkpoint half, 5): SIGUSR1/SIGTERM
under a faked SLURM job, a full disk during a checkpoint write, NaN/Inf losses and gradients, and (slow)
a dead DDP rank. Every test also checks that checkpoints saved before the fault survive it."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml

from asteroid_audiosep import AudioSepError
from asteroid_audiosep.engine import load_training_checkpoint
from asteroid_audiosep.engine.faults import AtomicCheckpointIO
from asteroid_audiosep.engine.preemption import TrainingInterrupted
from asteroid_audiosep.engine.trainer import run_from_files

REPO = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO / "egs" / "audiosep" / "train.py"

pytestmark = pytest.mark.usefixtures("one_thread")

# A callback script: runs egs/audiosep/train.py's main with one fault injected (its arguments
# before the train.py options: the fault (a signal name, or NAN: NaN samples in the batch), the
# step and the rank that gets it).
INJECTOR = '''
import importlib.util, os, signal, sys
import pytorch_lightning as pl

fault, at_step, at_rank = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spec = importlib.util.spec_from_file_location("train_step", sys.argv[4])
train_step = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_step)


class Inject(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        # During the step that ends at global step `at_step`.
        if trainer.global_step == at_step - 1 and trainer.global_rank == at_rank:
            if fault == "NAN":
                batch["waveform"][0, ..., :10] = float("nan")
            else:
                os.kill(os.getpid(), getattr(signal, fault))


sys.exit(train_step.main(sys.argv[5:], extra_callbacks=[Inject()]))
'''


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from asteroid_audiosep.data.mini import generate_mini_corpus

    out = tmp_path_factory.mktemp("mini")
    generate_mini_corpus(out, seed=0, clips_per_class=(8, 1, 1), speech_pairs=(0, 0))
    return out


def config(corpus: Path, exp_dir: Path, **training) -> dict:
    """A tiny model at 8 kHz, 0.5 s segments, no validation, checkpoints every 2 steps, 1 thread."""
    conf = dict(
        paths=dict(data_dir=str(corpus), exp_dir=str(exp_dir)),
        data=dict(train_datafiles=["{data_dir}/train.json"], valid_list=None, sample_rate=8000,
                  segment_seconds=0.5, mix_mode="equal_energy"),
        model=dict(n_fft=256, hop_length=128, channels=[8, 8, 16], bottleneck_channels=16,
                   pool_sizes=[[2, 2], [2, 2], [1, 2]], film_mode="gamma_beta", film_hidden_dim=32,
                   bn_momentum=0.1, query_encoder={"type": "sentence"}),
        training=dict(batch_size=4, num_workers=0, num_threads=1, max_steps=6, lr=5e-3, warmup_steps=2,
                      checkpoint_every_n_steps=2, log_every_n_steps=2, progress_bar=False),
    )
    conf["training"].update(training)
    return conf


def write_config(conf: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(conf))
    return path


def weights(path: Path) -> dict:
    return load_training_checkpoint(path)["state_dict"]


def assert_same_weights(first: dict, second: dict) -> None:
    assert sorted(first) == sorted(second)
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, different[:5]


def run_script(args, env_extra=None, script=TRAIN_SCRIPT, timeout=300, wait=True):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", **(env_extra or {}))
    command = [sys.executable, str(script), *map(str, args)]
    if not wait:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def injected(tmp_path: Path, fault: str, step: int, rank: int, conf_path: Path, env_extra=None, wait=True):
    script = tmp_path / "inject.py"
    script.write_text(INJECTOR)
    return run_script([fault, step, rank, TRAIN_SCRIPT, "--config", conf_path], env_extra, script=script,
                      wait=wait)


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    """The weights of a run that nothing interrupted (in this process, 1 thread)."""
    exp_dir = tmp_path_factory.mktemp("plain") / "exp"
    run_from_files(str(write_config(config(corpus, exp_dir), exp_dir.parent / "c.yaml")))
    return weights(exp_dir / "checkpoints" / "last.ckpt")


# ---------------------------------------------------------------------- 1. preemption, time limits
class SignalAt(pl.Callback):
    """Sends this process ``signum`` at the start of the step that ends at global step ``step``."""

    def __init__(self, signum: int, step: int):
        self.signum, self.step = signum, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step - 1:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("fault, process", [
    ("SIGUSR1", "this"), ("SIGTERM", "this"),
    pytest.param("SIGUSR1", "child", marks=pytest.mark.slow),
    pytest.param("SIGTERM", "child", marks=pytest.mark.slow),
])
def test_stop_signal_checkpoints_requeues_and_the_resumed_run_equals_the_uninterrupted_one(
        corpus, tmp_path, uninterrupted, monkeypatch, fault, process):
    """Under a faked SLURM job (SLURM variables, a stub ``scontrol`` that records its call), a signal
    during step 3: last.ckpt is written at step 3, SIGUSR1 requeues the job (SIGTERM does not),
    training stops with a message (the recipe's train.py exits with status 1: ``child``); the
    "requeued" job (the same command) resumes and ends with the weights of the uninterrupted run,
    bit for bit. The step-2 checkpoint written before the signal survives unchanged."""
    exp_dir = tmp_path / "exp"
    conf_path = write_config(config(corpus, exp_dir), tmp_path / "c.yaml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.calls"
    stub = bin_dir / "scontrol"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    stub.chmod(0o755)
    slurm = dict(SLURM_JOB_ID="4242", SLURM_NTASKS="1", SLURM_NTASKS_PER_NODE="1", SLURM_PROCID="0",
                 SLURM_LOCALID="0", SLURM_NODEID="0", SLURM_NNODES="1", SLURM_JOB_NAME="train",
                 SLURM_NODELIST="localhost", PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    if process == "child":
        stopped = injected(tmp_path, fault, 3, 0, conf_path, slurm)
        assert stopped.returncode == 1, stopped.stdout[-3000:] + stopped.stderr[-3000:]
        message = stopped.stderr
    else:
        for key, value in slurm.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(TrainingInterrupted) as err:
            run_from_files(str(conf_path), extra_callbacks=[SignalAt(getattr(signal, fault), 3)])
        message = str(err.value)
    assert f"training stopped by {fault} at step 3" in message
    last = exp_dir / "checkpoints" / "last.ckpt"
    assert load_training_checkpoint(last)["global_step"] == 3
    assert not (exp_dir / "best_model.pth").exists()
    assert not list(exp_dir.glob("checkpoints/.*tmp*"))
    if fault == "SIGUSR1":
        assert calls.read_text().split() == ["requeue", "4242"]
        assert "SLURM job was requeued" in message
    else:
        assert not calls.exists()
        assert "rerun the same command" in message
    step2 = weights(exp_dir / "checkpoints" / "step0000002.ckpt")

    if process == "child":
        resumed = run_script(["--config", conf_path], slurm)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    else:
        run_from_files(str(conf_path))
    report = json.loads((exp_dir / "train_report.json").read_text())
    assert report["steps"] == 6 and report["resumed_from"].endswith("last.ckpt")
    assert_same_weights(weights(last), uninterrupted)
    assert_same_weights(weights(exp_dir / "checkpoints" / "step0000002.ckpt"), step2)
    # The resumed run (which finished) requeued nothing more.
    assert (calls.read_text().split() if calls.exists() else []) == (["requeue", "4242"] if fault == "SIGUSR1" else [])


def test_with_gradient_accumulation_the_stop_waits_for_the_end_of_the_step(corpus, tmp_path):
    """accumulate_grad_batches 2, SIGTERM in the first half of step 3: the checkpoint is written
    after the step's second batch (step 3), and the resumed run equals the uninterrupted one."""
    plain, exp_dir = tmp_path / "plain", tmp_path / "exp"
    run_from_files(str(write_config(config(corpus, plain, accumulate_grad_batches=2), tmp_path / "p.yaml")))
    conf_path = write_config(config(corpus, exp_dir, accumulate_grad_batches=2), tmp_path / "c.yaml")
    with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM at step 3"):
        run_from_files(str(conf_path), extra_callbacks=[SignalAt(signal.SIGTERM, 3)])
    assert load_training_checkpoint(exp_dir / "checkpoints" / "last.ckpt")["global_step"] == 3
    run_from_files(str(conf_path))
    assert_same_weights(weights(exp_dir / "checkpoints" / "last.ckpt"), weights(plain / "checkpoints" / "last.ckpt"))


def _slurm_submit(tmp_path: Path, *options: str, conf_extra: str = "") -> str:
    """What utils/slurm.sh passes to (a stub) sbatch."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "sbatch.calls"
    (bin_dir / "sbatch").write_text(f'#!/usr/bin/env bash\nprintf "%s " "$@" > {record}\n')
    (bin_dir / "sbatch").chmod(0o755)
    conf = tmp_path / "slurm.conf"
    conf.write_text((REPO / "conf" / "slurm.conf").read_text() + conf_extra)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["utils/slurm.sh", "--config", str(conf), *options, str(tmp_path / "log" / "train.log"),
                           "python", "egs/audiosep/train.py"], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return record.read_text()


def test_slurm_jobs_of_training_ask_for_the_warning_signal_on_the_tasks_and_are_requeueable(tmp_path):
    train = _slurm_submit(tmp_path, "--gpu", "8", "--resumable")
    assert "--signal USR1@300 " in train and "B:" not in train  # to the srun tasks, not the batch shell
    assert "--requeue " in train and "--wait " in train
    assert "--wrap srun --kill-on-bad-exit=1 python egs/audiosep/train.py" in train
    other = _slurm_submit(tmp_path, "--gpu", "0")  # data, evaluation, report: no handler for the signal
    assert "--signal" not in other and "--requeue" not in other
    quiet = _slurm_submit(tmp_path, "--resumable", conf_extra="signal_seconds=0\nrequeue=false\n")
    assert "--signal" not in quiet and "--requeue" not in quiet


# ---------------------------------------------------------------------- 3. a full disk (checkpoints)
def _state(value: float, size: int) -> dict:
    return {"state_dict": {"model.w": torch.full((size,), value)}, "global_step": int(value)}


def test_checkpoint_on_a_full_disk_fails_naming_the_path_and_keeps_the_previous_one(small_disk):
    folder = small_disk(1024)  # 1 MiB: one 600 kB checkpoint fits, a second copy beside it does not
    path = folder / "last.ckpt"
    writer = AtomicCheckpointIO()
    writer.save_checkpoint(_state(1.0, 150_000), path)
    with pytest.raises(AudioSepError) as err:
        writer.save_checkpoint(_state(2.0, 150_000), path)
    assert str(path) in str(err.value) and "no space left" in str(err.value)
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]  # no temporary file left
    assert load_training_checkpoint(path)["global_step"] == 1
    assert torch.equal(weights(path)["model.w"], torch.full((150_000,), 1.0))


def test_training_on_a_full_disk_stops_with_the_message_and_earlier_checkpoints_intact(
        corpus, tmp_path, small_disk):
    """The checkpoints folder on a small filesystem, filled after the step-2 checkpoint: the step-4
    checkpoint fails with the message, step0000002.ckpt and last.ckpt (step 2) stay loadable."""
    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    disk = small_disk(16384)  # 16 MiB: room for 3 checkpoints of 4 MB
    (exp_dir / "checkpoints").symlink_to(disk, target_is_directory=True)

    class FillDisk(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 3 and not (disk / "filler").exists():
                free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
                size = os.path.getsize(disk / "last.ckpt")
                (disk / "filler").write_bytes(b"\0" * max(0, free - size // 2))

    conf_path = write_config(config(corpus, exp_dir), tmp_path / "c.yaml")
    with pytest.raises(AudioSepError) as err:
        run_from_files(str(conf_path), extra_callbacks=[FillDisk()])
    message = str(err.value)
    assert "no space left" in message
    # (Lightning resolves the link of the checkpoints folder.)
    assert str(disk / "step0000004.ckpt") in message or str(exp_dir / "checkpoints" / "step0000004.ckpt") in message
    assert load_training_checkpoint(disk / "step0000002.ckpt")["global_step"] == 2
    assert load_training_checkpoint(disk / "last.ckpt")["global_step"] == 2
    assert not [p.name for p in disk.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------------- 5. non-finite loss or gradients
class Snapshots(pl.Callback):
    """Records the system's weights, buffers and optimiser state after every step, and injects NaN
    into the batch (``nan_batches``) or Inf into a gradient (``inf_grads``) at the given steps."""

    def __init__(self, nan_batches=(), inf_grads=()):
        self.nan_batches, self.inf_grads = set(nan_batches), set(inf_grads)
        self.states, self.optim = {}, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step in self.nan_batches:
            batch["waveform"][0, ..., :10] = float("nan")

    def on_after_backward(self, trainer, pl_module):
        if trainer.global_step in self.inf_grads:
            next(p for p in pl_module.parameters() if p.grad is not None).grad.view(-1)[0] = float("inf")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.states[trainer.global_step] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        optim = trainer.optimizers[0].state_dict()["state"]
        self.optim[trainer.global_step] = {k: {n: t.clone() if torch.is_tensor(t) else t for n, t in s.items()}
                                           for k, s in optim.items()}


def test_a_nan_batch_and_an_inf_gradient_are_skipped_counted_and_reported(corpus, tmp_path, caplog):
    exp_dir = tmp_path / "exp"
    snaps = Snapshots(nan_batches=(2,), inf_grads=(4,))
    handlers = [signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGTERM)]
    with caplog.at_level("WARNING", logger="train"):
        report = run_from_files(str(write_config(config(corpus, exp_dir), tmp_path / "c.yaml")),
                                extra_callbacks=[snaps])
    assert [signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGTERM)] == handlers  # training restored them
    assert report["steps"] == 6
    assert report["nonfinite_steps"]["skipped"] == 2 and report["nonfinite_steps"]["steps"] == [2, 4]
    assert json.loads((exp_dir / "train_report.json").read_text())["nonfinite_steps"]["skipped"] == 2
    assert "step 2: non-finite loss or gradient: step skipped" in caplog.text
    for skipped in (3, 5):  # the state after the skipped step (global step 2 -> 3, 4 -> 5) is the one before
        assert_same_weights(snaps.states[skipped], snaps.states[skipped - 1])  # weights and BatchNorm buffers
        before, after = snaps.optim[skipped - 1], snaps.optim[skipped]
        assert all(torch.equal(after[k]["exp_avg"], before[k]["exp_avg"]) for k in before)
    assert not torch.equal(snaps.states[4]["model.separator.pre_conv.weight"],
                           snaps.states[3]["model.separator.pre_conv.weight"])  # a good step moves the weights
    final = weights(exp_dir / "checkpoints" / "last.ckpt")
    assert all(bool(torch.isfinite(v).all()) for v in final.values() if v.is_floating_point())


def test_too_many_nonfinite_steps_in_a_row_stop_training_and_keep_the_checkpoints(corpus, tmp_path):
    exp_dir = tmp_path / "exp"
    conf = config(corpus, exp_dir, max_nonfinite_steps=3, max_steps=8)
    with pytest.raises(AudioSepError, match=r"3 steps in a row had a non-finite loss or gradient"):
        run_from_files(str(write_config(conf, tmp_path / "c.yaml")),
                       extra_callbacks=[Snapshots(nan_batches=range(3, 8))])
    # The step-4 checkpoint holds the weights of step 3 (the skipped step changed nothing).
    assert load_training_checkpoint(exp_dir / "checkpoints" / "last.ckpt")["global_step"] == 4
    for name in ("step0000002.ckpt", "step0000004.ckpt"):
        state = weights(exp_dir / "checkpoints" / name)
        assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
    assert not (exp_dir / "best_model.pth").exists()


def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path):
    path = tmp_path / "last.ckpt"
    writer = AtomicCheckpointIO()
    writer.save_checkpoint(_state(1.0, 10), path)
    broken = _state(2.0, 10)
    broken["state_dict"]["model.w"][3] = float("inf")
    with pytest.raises(AudioSepError, match=r"refusing to write the checkpoint .*last\.ckpt.*not finite.*model\.w"):
        writer.save_checkpoint(broken, path)
    assert load_training_checkpoint(path)["global_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


@pytest.mark.slow
def test_a_nan_batch_on_one_rank_skips_the_step_on_every_rank(corpus, tmp_path):
    """2 CPU processes; rank 1 alone gets a NaN batch in step 2: both ranks skip that step (no
    hang, no divergence: the run ends normally), the report counts one skipped step."""
    exp_dir = tmp_path / "exp"
    conf_path = write_config(config(corpus, exp_dir, accelerator="cpu", devices=2, batch_size=2), tmp_path / "c.yaml")
    port = _free_port()
    procs = [injected(tmp_path, "NAN", 2, 1, conf_path, _srun_env(rank, port), wait=False) for rank in (0, 1)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    report = json.loads((exp_dir / "train_report.json").read_text())
    assert report["steps"] == 6 and report["nonfinite_steps"]["steps"] == [1]
    state = weights(exp_dir / "checkpoints" / "last.ckpt")
    assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


# ---------------------------------------------------------------------- 2. a dead rank
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _srun_env(rank: int, port: int) -> dict:
    return dict(SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="2", SLURM_JOB_ID="4243", SLURM_JOB_NAME="train",
                SLURM_NODELIST="localhost", SLURM_NNODES="1", SLURM_NODEID="0", MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port), SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank))


@pytest.mark.parametrize("key, value", [("collective_timeout_s", 0), ("collective_timeout_s", "long"),
                                        ("max_nonfinite_steps", -1), ("max_nonfinite_steps", 2.5)])
def test_bad_fault_settings_fail_before_training(corpus, tmp_path, key, value):
    with pytest.raises(AudioSepError, match=rf"training\.{key} must be"):
        run_from_files(str(write_config(config(corpus, tmp_path / "exp", **{key: value}), tmp_path / "c.yaml")))
    assert not (tmp_path / "exp" / "checkpoints").exists()


def test_collective_failures_become_one_clear_error_naming_the_last_checkpoint(tmp_path, monkeypatch):
    from asteroid_audiosep.engine.faults import collective_failure

    monkeypatch.setenv("RANK", "1")
    ckpt_dir = tmp_path / "checkpoints"
    AtomicCheckpointIO().save_checkpoint(_state(1.0, 4), ckpt_dir / "last.ckpt")
    timeout = RuntimeError("[/pytorch/third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:78] Timed out "
                           "waiting 3000ms for recv operation to complete")
    error = collective_failure(timeout, 2, 3, ckpt_dir)
    assert isinstance(error, AudioSepError)
    assert "rank 1 of 2" in str(error) and "collective_timeout_s=3 s" in str(error)
    assert f"last checkpoint is {ckpt_dir / 'last.ckpt'}: rerun" in str(error) and "Timed out waiting" in str(error)
    assert collective_failure(timeout, 1, 3, ckpt_dir) is None  # one process: not a rank problem
    closure = collective_failure(RuntimeError("Application timeout caused pair closure"), 2, 3, ckpt_dir)
    assert "rank 1 of 2" in str(closure)
    assert collective_failure(RuntimeError("DataLoader timed out after 5 seconds"), 2, 3, ckpt_dir) is None


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["SIGSTOP", "SIGKILL"])
def test_a_dead_rank_ends_the_other_with_an_error_and_the_rerun_equals_the_uninterrupted_run(
        corpus, tmp_path, fault):
    """2 CPU processes started as srun starts them; rank 1 stops answering (SIGSTOP: a hung rank or
    a dead node, nothing closes its connections) or dies (SIGKILL) during step 3. Rank 0 exits with
    the collective-timeout message within the timeout (3 s) plus a margin, last.ckpt (step 2) stays
    loadable, and rerunning both ranks ends with the weights of an uninterrupted 2-process run."""
    conf = config(corpus, tmp_path / "exp", accelerator="cpu", devices=2, batch_size=2, collective_timeout_s=3)

    def start(exp_dir: Path, rank: int, port: int, fault_step=None):
        conf_path = write_config(dict(conf, paths=dict(conf["paths"], exp_dir=str(exp_dir))), tmp_path / "c.yaml")
        if fault_step is None:
            return run_script(["--config", conf_path], _srun_env(rank, port), wait=False)
        return injected(tmp_path, fault, fault_step, 1, conf_path, _srun_env(rank, port), wait=False)

    def both(exp_dir: Path, fault_step=None):
        port = _free_port()
        return [start(exp_dir, rank, port, fault_step) for rank in (0, 1)]

    plain = both(tmp_path / "plain")
    outputs = [proc.communicate(timeout=300)[0] for proc in plain]
    assert [proc.returncode for proc in plain] == [0, 0], outputs[0][-2000:]

    exp_dir = tmp_path / "exp"
    rank0, rank1 = both(exp_dir, fault_step=3)
    try:
        started = time.monotonic()
        while not (exp_dir / "checkpoints" / "step0000002.ckpt").exists() and rank0.poll() is None:
            time.sleep(0.2)
        output = rank0.communicate(timeout=120)[0]
        waited = time.monotonic() - started
    finally:
        rank1.kill()
        rank1.communicate()
    assert rank0.returncode != 0
    assert "rank 0 of 2: a collective operation with the other training processes failed" in output, output[-3000:]
    assert "last checkpoint is" in output and "last.ckpt" in output
    print(f"{fault}: rank 0 ended {waited:.1f} s after the step-2 checkpoint (timeout 3 s)")
    assert load_training_checkpoint(exp_dir / "checkpoints" / "last.ckpt")["global_step"] == 2

    again = both(exp_dir)
    outputs = [proc.communicate(timeout=300)[0] for proc in again]
    assert [proc.returncode for proc in again] == [0, 0], outputs[0][-3000:]
    assert_same_weights(weights(exp_dir / "checkpoints" / "last.ckpt"),
                        weights(tmp_path / "plain" / "checkpoints" / "last.ckpt"))
