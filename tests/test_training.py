"""Training: batching, schedule, the Lightning system, and the recipe's train step (learning on
the mini corpus, 2-process DDP on CPU, kill-and-resume, bad configurations)."""
import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.checkpoints import unsafe_globals
from asteroid_audiosep.config import load_config
from asteroid_audiosep.data import LASSTrainDataset, SegmentMixer, write_datafile
from asteroid_audiosep.encoders import PrecomputedQueryEncoder, QueryEncoder
from asteroid_audiosep.engine import (
    AudioSepSystem,
    StepBatchSampler,
    StreamDataset,
    WarmupSchedule,
    collate_eval,
    export_model_package,
    load_training_checkpoint,
    make_optimizer,
)
from asteroid_audiosep.engine.hardware import process_rank, resolve_hardware
from asteroid_audiosep.engine.setup import load_initial_model
from asteroid_audiosep.engine.train_config import DEFAULTS_FILE, resolve_train_config, train_defaults
from asteroid_audiosep.engine.trainer import run_from_files
from asteroid_audiosep.losses import get_loss_func, l1_waveform_loss
from asteroid_audiosep.metrics.separation import sdr

REPO = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO / "egs" / "audiosep" / "train.py"


# ---------------------------------------------------------------------- shared data and configs
@pytest.fixture(scope="module")
def mini_corpus(tmp_path_factory):
    """The mini corpus with 16 training clips per class (2 validation, 1 test), no speech."""
    from asteroid_audiosep.data.mini import generate_mini_corpus

    out = tmp_path_factory.mktemp("mini")
    generate_mini_corpus(out, seed=0, clips_per_class=(16, 2, 1), speech_pairs=(0, 0))
    return out


TINY_MODEL = dict(
    n_fft=256,
    hop_length=128,
    channels=[8, 16, 32, 32],
    bottleneck_channels=32,
    pool_sizes=[[2, 2], [2, 2], [2, 2], [1, 2]],
    film_mode="gamma_beta",
    film_hidden_dim=64,
    bn_momentum=0.1,
    query_encoder={"type": "sentence"},
)


def tiny_config(corpus: Path, exp_dir: Path, validation: bool = True, **training) -> dict:
    """A reduced mini setup: the 16 kHz corpus read at 8 kHz, n_fft 256 / hop 128, a 4-level
    ResUNet with the paper's FiLM (gamma and beta) and BatchNorm momentum 0.1 (running
    statistics that keep up in a short run), 1 s segments mixed at equal energy."""
    conf = dict(
        paths=dict(data_dir=str(corpus), exp_dir=str(exp_dir)),
        data=dict(
            train_datafiles=["{data_dir}/train.json"],
            valid_list="{data_dir}/eval/validation/eval.csv" if validation else None,
            sample_rate=8000,
            segment_seconds=1.0,
            mix_mode="equal_energy",
        ),
        model=dict(TINY_MODEL),
        training=dict(
            batch_size=8, num_workers=0, num_threads=1, max_steps=8, lr=5e-3, warmup_steps=10,
            val_check_interval=4, val_batch_size=12, checkpoint_every_n_steps=4, log_every_n_steps=4,
            progress_bar=False,
        ),
    )
    conf["training"].update(training)
    return conf


def write_config(conf: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(conf))
    return path


def run_train_script(args, script=TRAIN_SCRIPT, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def read_trace(exp_dir: Path, rank: int = 0):
    path = exp_dir / "trace" / f"rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def package_layout(path: Path) -> dict:
    """What kind of package a file is: its keys, infos keys and tensor names/shapes."""
    package = torch.load(path, map_location="cpu", weights_only=True)
    return dict(
        keys=sorted(package),
        model_name=package["model_name"],
        model_args=package["model_args"],
        infos=sorted(package["infos"]),
        training=sorted(package["infos"]["training"]),
        tensors={k: tuple(v.shape) for k, v in package["state_dict"].items()},
    )


# ---------------------------------------------------------------------- batching and schedule
def test_step_batch_sampler_shards_without_overlap_and_resumes_exactly():
    num_items, batch, world = 10, 3, 2
    full = StepBatchSampler(num_items, batch, max_steps=7, rank=0, world_size=world)
    other = StepBatchSampler(num_items, batch, max_steps=7, rank=1, world_size=world)
    positions = [k[2] for b in full for k in b] + [k[2] for b in other for k in b]
    assert sorted(positions) == list(range(7 * batch * world))  # nothing dropped, nothing twice
    for step_batch in full:
        for epoch, index, position in step_batch:
            assert (epoch, index) == divmod(position, num_items)
    resumed = StepBatchSampler(num_items, batch, start_step=4, max_steps=7, rank=0, world_size=world)
    assert list(resumed) == list(full)[4:]


def test_stream_dataset_items_depend_only_on_their_key(mini_corpus):
    dataset = LASSTrainDataset([mini_corpus / "train.json"], 16000, 0.5, seed=3)
    keys = [(0, 5, 5), (1, 5, 293), (0, 7, 7)]
    first = [StreamDataset(dataset)[k] for k in keys]
    fresh = StreamDataset(LASSTrainDataset([mini_corpus / "train.json"], 16000, 0.5, seed=3))
    again = [fresh[k] for k in reversed(keys)][::-1]
    for a, b, key in zip(first, again, keys):
        assert torch.equal(a["waveform"], b["waveform"]) and a["caption"] == b["caption"]
        assert a["position"] == key[2]
    assert not torch.equal(first[0]["waveform"], first[1]["waveform"])  # epochs differ


def test_warmup_schedule_is_linear_then_constant():
    schedule = WarmupSchedule(warmup_steps=4)
    assert [schedule(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    decayed = WarmupSchedule(warmup_steps=0, decay_factor=0.5, decay_every=10)
    assert decayed(9) == 1.0 and decayed(10) == 0.5 and decayed(25) == 0.25
    with pytest.raises(AudioSepError):
        WarmupSchedule(warmup_steps=-1)


def test_losses():
    est, target = torch.randn(3, 1, 800), torch.randn(3, 1, 800)
    assert torch.isclose(l1_waveform_loss(est, target), (est - target).abs().mean())
    assert get_loss_func("si_sdr")(target * 2.0, target) < -50  # scale-invariant: a perfect estimate
    with pytest.raises(AudioSepError, match="choose one of"):
        get_loss_func("mse")


# ---------------------------------------------------------------------- the system
class StubEncoder(QueryEncoder):
    """Text -> a fixed random vector; audio -> a constant vector (recognisable)."""

    embed_dim = 12

    def __init__(self):
        super().__init__()
        self.texts_seen = []

    def _embed_text(self, texts):
        self.texts_seen += list(texts)
        gen = torch.Generator().manual_seed(len(texts[0]))
        return torch.randn(len(texts), self.embed_dim, generator=gen)

    @property
    def has_audio_tower(self):
        return True

    def encode_audio(self, wav, sample_rate):
        return torch.full((wav.shape[0], self.embed_dim), 7.0)

    def spec(self):
        return {"type": "stub"}


def small_system(use_text_ratio=1.0, cache_texts=("a dog barks", "rain")):
    model = AudioSep(sample_rate=16000, n_fft=256, hop_length=64, channels=[8, 8], bottleneck_channels=8,
                     pool_sizes=[[2, 2], [1, 2]], condition_dim=12)
    encoder = StubEncoder()
    model.set_query_encoder(encoder)
    cache = PrecomputedQueryEncoder(table={t: torch.ones(12) * i for i, t in enumerate(cache_texts)})
    system = AudioSepSystem(model, make_optimizer(model.parameters()), l1_waveform_loss, train_loader=None,
                            mixer=SegmentMixer(seed=0), query_cache=cache, use_text_ratio=use_text_ratio)
    return system, encoder


def test_system_uses_the_cache_and_falls_back_to_the_live_encoder():
    system, encoder = small_system()
    cond = system.text_conditions(["rain", "a dog barks", "rain"])
    assert torch.equal(cond, torch.stack([torch.ones(12), torch.zeros(12), torch.ones(12)]))
    assert encoder.texts_seen == []  # the frozen encoder is not run for cached captions
    cond = system.text_conditions(["rain", "a siren"])
    assert encoder.texts_seen == ["a siren"] and torch.equal(cond[0], torch.ones(12))
    # The encoder is not part of the trained module: no parameter, no state, eval mode.
    assert not any(n.startswith("model._query_encoder") for n, _ in system.named_parameters())
    assert not any("query" in k for k in system.state_dict())
    assert not encoder.training


@pytest.mark.parametrize("seed", [0, 1])
def test_system_training_step_decreases_the_loss_on_a_fixed_batch(seed):
    torch.manual_seed(seed)  # the initialisation too, so that the run is reproducible
    system, _ = small_system()
    batch = {"waveform": torch.randn(4, 1, 1600) * 0.1, "caption": ["rain", "a dog barks"] * 2,
             "position": torch.arange(4)}
    optimizer = system.optimizer
    losses = []
    for _ in range(20):
        loss = system.common_step(batch, 0, train=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("ratio, expected", [(1.0, 0), (0.0, 16), (0.5, None)])
def test_hybrid_queries_replace_text_by_target_audio_embeddings(ratio, expected):
    system, _ = small_system(use_text_ratio=ratio)
    targets = torch.randn(16, 1, 1600)
    cond = system.query_conditions(["rain"] * 16, targets)
    audio_items = int((cond == 7.0).all(dim=1).sum())
    if expected is None:
        assert 0 < audio_items < 16
        again = system.query_conditions(["rain"] * 16, targets)
        assert torch.equal(cond, again)  # drawn from (seed, step): reproducible
    else:
        assert audio_items == expected
    with pytest.raises(AudioSepError):
        small_system(use_text_ratio=1.5)


def test_hybrid_items_take_their_clips_cached_embedding_without_running_the_audio_tower():
    system, encoder = small_system(use_text_ratio=0.0)
    system.__dict__["clip_embeddings"] = torch.arange(5.0)[:, None].repeat(1, 12)
    encoder.encode_audio = None  # would fail if called
    batch = {"waveform": torch.randn(4, 1, 1600) * 0.1, "caption": ["rain"] * 4,
             "position": torch.arange(4), "index": torch.tensor([3, 0, 4, 3])}
    segments, captions, key, clips = system._unpack_train(batch)
    cond = system.query_conditions(captions, segments, key=key, clips=clips)
    assert cond[:, 0].tolist() == [3.0, 0.0, 4.0, 3.0]
    assert torch.isfinite(system.common_step(batch, 0, train=True))


def test_standardisation_spreads_collapsed_embeddings_and_is_stored_in_the_spec(tmp_path, monkeypatch):
    import soundfile as sf

    from asteroid_audiosep.encoders import base as encoder_registry
    from asteroid_audiosep.engine.hybrid import prepare_hybrid, standardization, standardize

    gen = torch.Generator().manual_seed(0)
    common = torch.randn(12, generator=gen)
    collapsed = torch.nn.functional.normalize(common + 0.05 * torch.randn(6, 12, generator=gen), dim=-1)
    spread = standardize(collapsed, **{k[6:]: v for k, v in standardization(collapsed, collapsed).items()
                                       if k.startswith("audio")})
    off_diagonal = ~torch.eye(6, dtype=torch.bool)
    assert float((collapsed @ collapsed.T)[off_diagonal].min()) > 0.98
    assert float((spread @ spread.T)[off_diagonal].mean()) < 0.2  # the small differences now dominate

    class Clips:
        entries = [{"wav": str(tmp_path / f"{i}.wav")} for i in range(3)]

        def captions(self):
            return ["rain", "a dog barks"]

    for i, freq in enumerate((300, 900, 2000)):
        t = torch.arange(8000) / 8000
        sf.write(tmp_path / f"{i}.wav", (0.3 * torch.sin(2 * torch.pi * freq * t)).numpy(), 8000)
    monkeypatch.setitem(encoder_registry._REGISTRY, "stub", StubEncoder)
    cache = PrecomputedQueryEncoder(table={"rain": torch.randn(12), "a dog barks": torch.randn(12)})
    cache2, clips, spec = prepare_hybrid({"type": "stub"}, cache, Clips(), tmp_path, True, True, True)
    assert (tmp_path / "clip_embeddings.pt").is_file() and clips.shape == (3, 12)
    assert set(spec["standardize"]) == {"text_mean", "text_std", "audio_mean", "audio_std"}
    assert cache2.source == spec and torch.allclose(cache2.encode_text(["rain"]).norm(), torch.tensor(1.0))


def test_validation_separates_padded_items_at_their_own_length():
    system, _ = small_system()
    system.eval()
    torch.manual_seed(1)
    mixture, target = torch.randn(1600) * 0.1, torch.randn(1600) * 0.1
    batch = collate_eval([dict(mixture=mixture, target=target, query="rain", id="b"),
                          dict(mixture=mixture[:1000], target=target[:1000], query="rain", id="a")])
    assert batch["mixture"].shape == (2, 1600) and batch["length"].tolist() == [1600, 1000]
    system.on_validation_epoch_start()
    with torch.no_grad():
        system.validation_step(batch, 0)
        cond = system.text_conditions(["rain"])
        whole = system.model(mixture[None], cond)[0, 0]
        short = system.model(mixture[None, :1000], cond)[0, 0]
    sums = system._val_sums
    assert float(sums[-1]) == 2
    expected_sdr = float(sdr(target, whole)) + float(sdr(target[:1000], short))
    assert float(sums[1]) == pytest.approx(expected_sdr, abs=1e-4)
    expected_sdri = expected_sdr - float(sdr(target, mixture)) - float(sdr(target[:1000], mixture[:1000]))
    assert float(sums[0]) == pytest.approx(expected_sdri, abs=1e-4)


def test_export_model_package_round_trip(tmp_path):
    model = AudioSep(sample_rate=16000, n_fft=256, hop_length=64, channels=[8, 8], bottleneck_channels=8,
                     pool_sizes=[[2, 2], [1, 2]], condition_dim=12, query_encoder={"type": "sentence"})
    path = export_model_package(model, tmp_path / "best_model.pth", dataset_infos={"dataset": "mini", "licenses": []},
                                training_infos={"steps": 3})
    loaded = AudioSep.from_pretrained(str(path))
    package = torch.load(path, weights_only=True)
    assert package["dataset"] == "mini" and package["infos"]["training"] == {"steps": 3}
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left


# ---------------------------------------------------------------------- the recipe's train step
def test_mini_training_learns_text_conditioned_separation(mini_corpus, tmp_path):
    """(a) A tiny model on the mini corpus: validation SDRi rises by >= 3 dB, and the output
    follows the query (two class queries on one mixture give outputs closer to their own source)."""
    exp_dir = tmp_path / "exp"
    conf = tiny_config(mini_corpus, exp_dir, batch_size=16, max_steps=300, val_check_interval=100,
                       checkpoint_every_n_steps=100, log_every_n_steps=25)
    conf["data"]["segment_seconds"] = 0.5
    threads = torch.get_num_threads()
    try:
        run_from_files(str(write_config(conf, tmp_path / "conf.yaml")))
    finally:
        torch.set_num_threads(threads)
    report = json.loads((exp_dir / "train_report.json").read_text())
    history = report["validation"]
    print("validation SDRi by step:", [(row["step"], round(row["val_sdri"], 2)) for row in history])
    assert [row["step"] for row in history] == [0, 100, 200, 300]
    start, best = history[0]["val_sdri"], max(row["val_sdri"] for row in history[1:])
    assert best >= start + 3.0, history
    assert report["best_val_sdri"] == pytest.approx(best, abs=1e-4)
    for name in ("best_model.pth", "query_embeddings.pt", "train_config.yaml", "checkpoints/last.ckpt"):
        assert (exp_dir / name).is_file(), name
    assert list((exp_dir / "tb").glob("events.out.tfevents.*"))

    # The same (held-out test) mixture queried with its two classes' labels.
    model = AudioSep.from_pretrained(str(exp_dir / "best_model.pth")).eval()
    labels = {c["name"]: c["label"] for c in json.loads((mini_corpus / "classes.json").read_text())["classes"]}
    eval_dir = mini_corpus / "eval" / "test"
    from asteroid_audiosep.audio import load_audio

    margins = []  # per (mixture, query): SDR to its own source minus SDR to the other source
    with open(eval_dir / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        mixture = load_audio(eval_dir / f"mixture-{row['idx']}.wav", sample_rate=8000)[0][0]
        first = load_audio(eval_dir / f"segment-{row['idx']}.wav", sample_rate=8000)[0][0]
        second = mixture - first
        other_class = row["noise_wav"].rsplit("-", 1)[0]
        with torch.no_grad():
            est = model.forward_wav(torch.stack([mixture, mixture])[:, None],
                                    query=[labels[row["class"]], labels[other_class]])[:, 0]
        margins += [float(sdr(first, est[0]) - sdr(second, est[0])), float(sdr(second, est[1]) - sdr(first, est[1]))]
    right = sum(m > 0 for m in margins)
    print(f"conditioning: mean margin {np.mean(margins):.2f} dB, output closer to the queried source for "
          f"{right}/{len(margins)} queries")
    # A model that ignores the query gives the same output for both: exactly one of the two
    # margins of a mixture is positive (half of the queries) and the mean margin is 0.
    assert np.mean(margins) > 2.0, margins
    assert right >= 2 / 3 * len(margins), margins


@pytest.fixture(scope="module")
def killed_and_resumed(mini_corpus, tmp_path_factory):
    """A run SIGKILLed after 6 of 8 steps (last checkpoint: step 4), then resumed by rerunning the
    same command."""
    tmp = tmp_path_factory.mktemp("resume")
    exp_dir = tmp / "exp"
    conf_path = write_config(tiny_config(mini_corpus, exp_dir, trace_batches=True, limit_val_batches=1), tmp / "c.yaml")
    killer = tmp / "train_killed.py"
    killer.write_text(
        "import os, signal, sys\n"
        "import pytorch_lightning as pl\n"
        "from asteroid_audiosep.engine.trainer import run_from_files\n"
        "class KillAt(pl.Callback):\n"
        "    def on_train_batch_end(self, trainer, *args):\n"
        "        if trainer.global_step >= 6:\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "run_from_files(sys.argv[2], extra_callbacks=[KillAt()])\n"
    )
    killed = run_train_script(["--config", conf_path], script=killer)
    after_kill = dict(
        returncode=killed.returncode,
        trace=read_trace(exp_dir),
        last_step=load_training_checkpoint(exp_dir / "checkpoints" / "last.ckpt")["global_step"],
        package_existed=(exp_dir / "best_model.pth").exists(),
    )
    resumed = run_train_script(["--config", conf_path])
    return dict(exp_dir=exp_dir, conf=conf_path, killed=after_kill, resumed=resumed)


def test_kill_and_resume_neither_repeats_nor_skips_steps(killed_and_resumed):
    """(c) The resumed run restarts at the last checkpoint's step, with the same data, model,
    optimiser and scheduler state (its first steps' losses equal the killed run's)."""
    run, killed = killed_and_resumed, killed_and_resumed["killed"]
    assert killed["returncode"] == -signal.SIGKILL
    assert killed["last_step"] == 4 and not killed["package_existed"]
    assert [r["step"] for r in killed["trace"]] == list(range(6))
    assert run["resumed"].returncode == 0, run["resumed"].stderr[-3000:]
    trace = read_trace(run["exp_dir"])
    resumed = trace[len(killed["trace"]):]
    assert [r["step"] for r in resumed] == [4, 5, 6, 7]
    for row in trace:
        assert row["positions"] == list(range(row["step"] * 8, row["step"] * 8 + 8))
    before = {r["step"]: r for r in killed["trace"]}
    for row in resumed[:2]:  # steps 4 and 5 ran twice: identical data and identical losses
        assert row["indices"] == before[row["step"]]["indices"]
        assert row["loss"] == pytest.approx(before[row["step"]]["loss"], rel=1e-5, abs=1e-7)
    # The project's own checkpoints hold nothing that the weights-only loader refuses (Lightning
    # resumed from last.ckpt with weights_only=True).
    assert unsafe_globals(run["exp_dir"] / "checkpoints" / "last.ckpt") == []
    assert unsafe_globals(run["exp_dir"] / "best_model.pth") == []
    last = load_training_checkpoint(run["exp_dir"] / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 8
    report = json.loads((run["exp_dir"] / "train_report.json").read_text())
    assert report["steps"] == 8 and report["resumed_from"].endswith("last.ckpt")
    assert [row["step"] for row in report["validation"]] == [0, 4, 8]
    model = AudioSep.from_pretrained(str(run["exp_dir"] / "best_model.pth"))
    best = load_training_checkpoint(report["best_checkpoint"])["state_dict"]
    assert torch.equal(model.state_dict()["separator.pre_conv.weight"], best["model.separator.pre_conv.weight"])
    # Rerunning a finished experiment trains nothing more and keeps the package.
    again = run_train_script(["--config", run["conf"]])
    assert again.returncode == 0 and len(read_trace(run["exp_dir"])) == len(trace)


def test_ddp_two_cpu_processes(mini_corpus, tmp_path, killed_and_resumed):
    """(b) 2 processes (gloo): the ranks share the stream without overlap, and the package is the
    same kind as a single-process run's."""
    exp_dir = tmp_path / "exp"
    conf = tiny_config(mini_corpus, exp_dir, trace_batches=True, accelerator="cpu", devices=2, batch_size=4,
                       max_steps=4, val_check_interval=2, checkpoint_every_n_steps=2)
    result = run_train_script(["--config", write_config(conf, tmp_path / "ddp.yaml")])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((exp_dir / "train_report.json").read_text())
    assert report["world_size"] == 2 and report["steps"] == 4
    ranks = [read_trace(exp_dir, r) for r in (0, 1)]
    assert [r["step"] for r in ranks[0]] == [r["step"] for r in ranks[1]] == [0, 1, 2, 3]
    positions = [p for trace in ranks for row in trace for p in row["positions"]]
    assert sorted(positions) == list(range(4 * 2 * 4))  # per step 2 ranks x 4 items, disjoint
    # Every validation example counted once over the two ranks.
    num_valid = sum(1 for _ in open(mini_corpus / "eval" / "validation" / "eval.csv")) - 1
    assert all(row["num_examples"] == num_valid for row in report["validation"])
    single = package_layout(killed_and_resumed["exp_dir"] / "best_model.pth")
    double = package_layout(exp_dir / "best_model.pth")
    assert double == single


def test_ddp_started_by_srun(mini_corpus, tmp_path):
    """Two processes started as ``srun --ntasks-per-node 2`` starts them (SLURM variables, both at
    once, no Lightning launcher): Lightning takes ranks from SLURM, rank 1 writes nothing."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exp_dir = tmp_path / "exp"
    conf = tiny_config(mini_corpus, exp_dir, trace_batches=True, accelerator="cpu", devices=2, batch_size=4,
                       max_steps=2, val_check_interval=2, checkpoint_every_n_steps=2, limit_val_batches=1)
    conf_path = write_config(conf, tmp_path / "slurm.yaml")
    slurm = dict(SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="2", SLURM_JOB_ID="4242", SLURM_JOB_NAME="train",
                 SLURM_NODELIST="localhost", SLURM_NNODES="1", SLURM_NODEID="0", MASTER_ADDR="127.0.0.1",
                 MASTER_PORT=str(port), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONWARNINGS="ignore")
    procs = [subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), "--config", str(conf_path)], cwd=REPO,
                              env=dict(os.environ, **slurm, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert "model package:" in outputs[0] and "model package:" not in outputs[1]
    report = json.loads((exp_dir / "train_report.json").read_text())
    assert report["world_size"] == 2 and report["steps"] == 2
    positions = [p for rank in (0, 1) for row in read_trace(exp_dir, rank) for p in row["positions"]]
    assert sorted(positions) == list(range(2 * 2 * 4))
    assert AudioSep.from_pretrained(str(exp_dir / "best_model.pth")).sample_rate == 8000


# ---------------------------------------------------------------------- bad configurations
@pytest.fixture(scope="module")
def four_clip_datafile(mini_corpus, tmp_path_factory):
    from asteroid_audiosep.data import read_datafile

    path = tmp_path_factory.mktemp("small") / "four.json"
    return write_datafile(path, read_datafile(mini_corpus / "train.json")[:4])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(data=dict(train_datafiles=["{data_dir}/nowhere.json"])),
         r"data\.train_datafiles: .*nowhere\.json not found"),
        (dict(model=dict(query_encoder={"type": "wav2vec"})), r"model\.query_encoder\.type='wav2vec'.*one of"),
        (dict(training=dict(batch_size=8), data=dict(train_datafiles=["FOUR"])), r"training\.batch_size=8 .* only 4"),
        (dict(data=dict(sample_rate=32000)),
         r"sample-rate mismatch: data\.sample_rate is 32000 .* 16000 Hz.*set data\.sample_rate to 16000"),
        (dict(model=dict(sample_rate=16000)),
         r"sample-rate mismatch: model\.sample_rate=16000 but data\.sample_rate=8000"),
        (dict(training=dict(max_step=3)), r"training\.max_step \(did you mean training\.max_steps\?\)"),
        (dict(training=dict(use_text_ratio=0.5)), r"use_text_ratio=0\.5 .*clap"),
        (dict(training=dict(devices=2)), r"no GPU is visible: use --ngpu 0"),
    ],
    ids=["missing-datafile", "unknown-encoder", "batch-too-large", "sample-rate", "model-rate", "unknown-key",
         "hybrid-text", "no-gpu"],
)
def test_bad_configuration_fails_before_training(mini_corpus, four_clip_datafile, tmp_path, change, message):
    """(d) Each mistake stops the run before anything is trained or written, naming the setting."""
    if torch.cuda.is_available() and "devices" in change.get("training", {}):
        pytest.skip("a GPU is visible: asking for GPUs is not a mistake here")
    conf = tiny_config(mini_corpus, tmp_path / "exp")
    for section, values in change.items():
        for key, value in values.items():
            if value == ["FOUR"]:
                value = [str(four_clip_datafile)]
            conf[section][key] = value
    with pytest.raises(AudioSepError, match=message):
        run_from_files(str(write_config(conf, tmp_path / "bad.yaml")))
    assert not (tmp_path / "exp" / "checkpoints").exists()
    assert not (tmp_path / "exp" / "query_embeddings.pt").exists()


def test_bad_configuration_exit_status_from_the_command_line(mini_corpus, tmp_path):
    conf = tiny_config(mini_corpus, tmp_path / "exp")
    conf_path = write_config(conf, tmp_path / "c.yaml")
    result = run_train_script(["--config", conf_path, "--data.train_datafiles", "[missing.json]"])
    assert result.returncode == 1
    assert "data.train_datafiles: missing.json not found: run stage 0" in result.stderr


def test_fine_tuning_starts_from_a_package_or_the_released_checkpoint(tmp_path, official_ckpt):
    model = AudioSep(sample_rate=16000, n_fft=256, hop_length=64, channels=[8, 8], bottleneck_channels=8,
                     pool_sizes=[[2, 2], [1, 2]], condition_dim=12, query_encoder={"type": "sentence"})
    package = export_model_package(model, tmp_path / "init.pth")
    loaded = load_initial_model(str(package), tmp_path / "exp", 16000)
    key = "separator.pre_conv.weight"
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key])
    with pytest.raises(AudioSepError, match="sample-rate mismatch.*set data.sample_rate to 16000"):
        load_initial_model(str(package), tmp_path / "exp", 32000)
    released = load_initial_model(str(official_ckpt), tmp_path / "exp", 32000)
    assert released.n_fft == 2048 and released.condition_dim == 512
    assert (tmp_path / "exp" / "init" / "audiosep_base_4M_steps.pth").is_file()
    with pytest.raises(AudioSepError, match="training.init_from: .* not found"):
        load_initial_model(str(tmp_path / "none.pth"), tmp_path / "exp", 32000)


def test_hardware_resolution():
    defaults = train_defaults()["training"]
    cpu = resolve_hardware(dict(defaults, accelerator="cpu", devices=2))
    assert cpu.world_size == 2 and cpu.strategy == "ddp" and cpu.precision == "32-true" and not cpu.sync_batchnorm
    single = resolve_hardware(defaults)
    assert single.accelerator == "cpu" and single.devices == 1 and single.world_size == 1
    with pytest.raises(AudioSepError, match="sync_batchnorm"):
        resolve_hardware(dict(defaults, accelerator="cpu", devices=2, sync_batchnorm=True))
    with pytest.raises(AudioSepError, match="precision"):
        resolve_hardware(dict(defaults, precision="8-bit"))


def test_defaults_file_is_the_released_recipe_and_the_configs_inherit_it():
    from asteroid_audiosep.models import RELEASED_ARGS

    defaults = train_defaults()
    released = {k: v for k, v in RELEASED_ARGS.items() if k not in ("sample_rate", "condition_dim")}
    assert {k: defaults["model"][k] for k in released} == released
    for name in ("mini.yaml", "audiosep_base.yaml", "audiosep_clip.yaml", "dcase2024.yaml"):
        cfg = load_config(REPO / "conf" / name)
        assert set(defaults["training"]) <= set(cfg["training"]), name
    assert DEFAULTS_FILE.is_file()


def test_strict_keys_and_path_expansion():
    cfg = dict(paths=dict(exp_dir="E", data_dir="D"), data=dict(train_datafiles="{data_dir}/t.json"),
               training=dict(init_from="{exp_dir}/init.pth"))
    resolved = resolve_train_config(cfg)
    assert resolved["data"]["train_datafiles"] == ["D/t.json"]
    assert resolved["training"]["init_from"] == "E/init.pth"
    assert resolved["training"]["batch_size"] == 12 and resolved["model"]["n_fft"] == 2048
    with pytest.raises(AudioSepError, match=r"model\.chanels \(did you mean model\.channels\?\)"):
        resolve_train_config(dict(cfg, model=dict(chanels=[8])))
    with pytest.raises(AudioSepError, match="no experiment directory"):
        resolve_train_config(dict(data={}))


@pytest.mark.parametrize("env, rank", [
    ({}, 0), ({"RANK": "3"}, 3), ({"SLURM_PROCID": "5"}, 5),
    ({"NODE_RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}, 5), ({"LOCAL_RANK": "2"}, 2),
])
def test_process_rank_is_the_global_rank(monkeypatch, env, rank):
    for var in ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert process_rank() == rank
