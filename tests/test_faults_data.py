"""Bad training data mid-epoch (issue 27 item 4): truncated, unreadable, silent and non-finite
clips and corrupt shards are replaced, counted per reason over every data-loader worker, logged
once per file, reported in train_report.json, and bounded by data.max_bad_fraction."""
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from asteroid_audiosep.audio import resample
from asteroid_audiosep.data import LASSShardDataset, LASSTrainDataset, write_datafile, write_shards
from asteroid_audiosep.data.badclips import BadClipTally, decode_events, wav_truncation
from asteroid_audiosep.data.datasets import crop_or_pad
from asteroid_audiosep.engine import StepBatchSampler, StreamDataset
from asteroid_audiosep.errors import AudioSepError

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = 8000
SEGMENT = 0.5
BAD_REASONS = {"truncated.wav": "truncated", "garbage.wav": "unreadable", "silent.wav": "silent",
               "nan.wav": "non_finite"}


def _noise(path: Path, seconds: float, rate: int = RATE, seed: int = 0, subtype: str = "PCM_16") -> str:
    data = 0.2 * np.random.default_rng(seed).standard_normal(int(seconds * rate))
    sf.write(path, data.astype("float32"), rate, subtype=subtype)
    return str(path)


def _good_entries(folder: Path, count: int = 10):
    rates = (RATE, 16000, 11025)
    return [{"wav": _noise(folder / f"good{k}.wav", 0.3 + 0.2 * k, rates[k % 3], seed=k), "caption": f"sound {k}"}
            for k in range(count)]


def _bad_entries(folder: Path):
    """One clip of each bad kind."""
    whole = (folder / _noise(folder / "whole.wav", 1.0, seed=99)).read_bytes()
    (folder / "truncated.wav").write_bytes(whole[: len(whole) // 2])  # header promises 1 s
    (folder / "whole.wav").unlink()
    (folder / "garbage.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot audio at all")
    sf.write(folder / "silent.wav", np.zeros(RATE, dtype="float32"), RATE)
    nan = np.full(RATE // 2, np.nan, dtype="float32")
    sf.write(folder / "nan.wav", nan, RATE, subtype="FLOAT")
    return [{"wav": str(folder / name), "caption": f"bad {name}"} for name in BAD_REASONS]


@pytest.fixture
def clean(tmp_path):
    return write_datafile(tmp_path / "clean.json", _good_entries(tmp_path))


@pytest.fixture
def dirty(tmp_path):
    return write_datafile(tmp_path / "dirty.json", _good_entries(tmp_path) + _bad_entries(tmp_path))


def test_a_clean_item_is_the_released_read(clean):
    """Good data reads exactly as before bad-clip handling (the released segment and caption
    draws from (seed, epoch, i)), so a clean run is unchanged."""
    ds = LASSTrainDataset([clean], sample_rate=RATE, segment_seconds=SEGMENT, seed=3)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            entry = ds.entries[ds.clip_index(i)]
            rng = np.random.default_rng([3, epoch, i])
            info = sf.info(entry["wav"])
            native = int(np.ceil(ds.segment_samples * info.samplerate / RATE))
            start = int(rng.integers(0, info.frames - native + 1)) if info.frames > native else 0
            data, _ = sf.read(entry["wav"], start=start, frames=native, dtype="float32", always_2d=True)
            wav = resample(torch.from_numpy(np.ascontiguousarray(data.T)), info.samplerate, RATE)
            expected = crop_or_pad(wav, ds.segment_samples)
            caption = entry["captions"][int(rng.integers(len(entry["captions"])))]
            item = ds[i]
            assert torch.equal(item["waveform"], expected) and item["caption"] == caption
            assert item["bad"] == "" and item["index"] == ds.clip_index(i)


def test_every_kind_of_bad_clip_is_replaced_and_named(dirty):
    ds = LASSTrainDataset([dirty], sample_rate=RATE, segment_seconds=SEGMENT, seed=0)
    reasons = {}
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["waveform"].shape == (1, ds.segment_samples)
            assert torch.isfinite(item["waveform"]).all() and item["waveform"].abs().max() > 0
            assert Path(ds.entries[item["index"]]["wav"]).name.startswith("good")
            for event in decode_events(item["bad"]):
                reasons[Path(event["path"]).name] = event["reason"]
    assert reasons == BAD_REASONS


def test_truncation_is_found_from_the_wav_header(tmp_path):
    whole = Path(_noise(tmp_path / "a.wav", 1.0)).read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:3000])
    assert wav_truncation(tmp_path / "a.wav") is None
    assert "promises 16000 bytes" in wav_truncation(tmp_path / "cut.wav")
    assert sf.info(str(tmp_path / "cut.wav")).frames < RATE  # libsndfile alone would read the rest silently


def test_a_replacement_does_not_depend_on_which_worker_met_the_bad_clip_first(dirty):
    """Items are a function of (seed, epoch, i) even when a bad clip is replaced: a dataset that
    already knows the bad clips gives the same items as a fresh one, in any order."""
    warm = LASSTrainDataset([dirty], sample_rate=RATE, segment_seconds=SEGMENT, seed=1)
    forward = [warm[i] for i in range(len(warm))]
    fresh = LASSTrainDataset([dirty], sample_rate=RATE, segment_seconds=SEGMENT, seed=1)
    for i in reversed(range(len(fresh))):
        item = fresh[i]
        assert torch.equal(item["waveform"], forward[i]["waveform"])
        assert (item["caption"], item["index"], item["bad"]) == (
            forward[i]["caption"], forward[i]["index"], forward[i]["bad"])


def test_a_file_with_a_bad_part_serves_its_good_segments(tmp_path):
    """NaN in half of a file: a segment over it is replaced, one elsewhere is used; not remembered
    per worker, so the items stay the same whatever was read before."""
    half = np.concatenate([0.2 * np.random.default_rng(5).standard_normal(RATE), np.full(RATE, np.nan)])
    sf.write(tmp_path / "halfnan.wav", half.astype("float32"), RATE, subtype="FLOAT")
    datafile = write_datafile(tmp_path / "d.json", _good_entries(tmp_path, 3) + [
        {"wav": str(tmp_path / "halfnan.wav"), "caption": "half"}])
    warm = LASSTrainDataset([datafile], sample_rate=RATE, segment_seconds=SEGMENT, seed=0)
    fresh = LASSTrainDataset([datafile], sample_rate=RATE, segment_seconds=SEGMENT, seed=0)
    used = skipped = 0
    for epoch in range(8):
        warm.set_epoch(epoch)
        fresh.set_epoch(epoch)
        forward = [warm[i] for i in range(4)]
        for i in reversed(range(4)):
            item = fresh[i]
            assert torch.equal(item["waveform"], forward[i]["waveform"]) and item["bad"] == forward[i]["bad"]
            assert torch.isfinite(item["waveform"]).all()
            used += warm.entries[item["index"]]["wav"].endswith("halfnan.wav")
            skipped += sum(e["reason"] == "non_finite" for e in decode_events(item["bad"]))
    assert used > 0 and skipped > 0


def _count(datafile, workers: int, epochs: int = 2, batch_size: int = 4, max_bad_fraction: float = 1.0,
           steps=None):
    ds = LASSTrainDataset([datafile], sample_rate=RATE, segment_seconds=SEGMENT, seed=0)
    steps = steps or epochs * len(ds) // batch_size
    loader = DataLoader(StreamDataset(ds), batch_sampler=StepBatchSampler(len(ds), batch_size, max_steps=steps),
                        num_workers=workers)
    tally = BadClipTally(len(ds), max_bad_fraction)
    for batch in loader:
        assert batch["waveform"].shape == (batch_size, 1, ds.segment_samples)  # batches keep their shape
        tally.update(batch)
    return tally


def test_counts_add_up_over_worker_processes_and_each_file_is_logged_once(dirty, caplog):
    with caplog.at_level(logging.WARNING, logger="asteroid_audiosep.data.badclips"):
        single = _count(dirty, workers=0).summary()
        caplog.clear()
        two = _count(dirty, workers=2).summary()
    assert two == single
    assert {r: c["files"] for r, c in two["by_reason"].items()} == dict(
        unreadable=1, truncated=1, silent=1, non_finite=1, corrupt_shard=0)
    assert two["skipped"] >= 8  # 4 bad files x 2 epochs, each met at least once per epoch
    assert two["items"] == 2 * 14 and two["bad_fraction"] == pytest.approx(4 / 14)
    logged = [r.getMessage() for r in caplog.records]
    for name, reason in BAD_REASONS.items():  # once per file, not once per read
        assert sum(name in m for m in logged) == 1, logged
        assert any(name in m and reason in m for m in logged)


def test_past_the_budget_training_data_stops_naming_the_worst_files(dirty):
    with pytest.raises(AudioSepError, match=r"data\.max_bad_fraction=0\.1 allows") as err:
        _count(dirty, workers=1, max_bad_fraction=0.1)
    message = str(err.value)
    assert "make 1" in message or "make 2" in message  # the share that crossed it (>= 1/14)
    assert any(name in message for name in BAD_REASONS)
    with pytest.raises(AudioSepError, match="within"):
        BadClipTally(10, 1.5)


def test_tally_state_survives_a_checkpoint_and_ranks_merge():
    tally = BadClipTally(100, 0.5)
    tally.add([dict(path="a.wav", reason="silent", detail="", weight=1)] * 2, items=10)
    again = BadClipTally(100, 0.5)
    again.load_state_dict(json.loads(json.dumps(tally.state_dict())))  # plain JSON types
    assert again.summary() == tally.summary()
    again.merge([tally.state_dict()])
    assert again.summary()["items"] == 20 and again.files["a.wav"]["skips"] == 4


def _train_config(datafile: Path, exp_dir: Path, **data) -> dict:
    """A tiny training without validation, one data-loader worker process."""
    model = dict(n_fft=256, hop_length=128, channels=[8, 16], bottleneck_channels=16, pool_sizes=[[2, 2], [1, 2]],
                 query_encoder={"type": "sentence"})
    training = dict(batch_size=4, num_workers=1, num_threads=1, max_steps=6, warmup_steps=2, val_check_interval=3,
                    checkpoint_every_n_steps=3, log_every_n_steps=3, progress_bar=False)
    return dict(paths=dict(exp_dir=str(exp_dir)),
                data=dict(train_datafiles=[str(datafile)], valid_list=None, sample_rate=RATE,
                          segment_seconds=SEGMENT, mix_mode="equal_energy", **data),
                model=model, training=training)


def test_training_skips_bad_clips_reports_them_and_stops_past_the_budget(dirty, tmp_path):
    from asteroid_audiosep.engine.trainer import train

    threads = torch.get_num_threads()
    try:
        report = train(_train_config(dirty, tmp_path / "exp", max_bad_fraction=0.5))
        written = json.loads((tmp_path / "exp" / "train_report.json").read_text())
        assert written["bad_clips"] == json.loads(json.dumps(report["bad_clips"]))
        counts = written["bad_clips"]
        assert report["steps"] == 6 and counts["items"] == 6 * 4
        assert {r: c["files"] for r, c in counts["by_reason"].items()} == dict(
            unreadable=1, truncated=1, silent=1, non_finite=1, corrupt_shard=0)
        assert {Path(w["path"]).name: w["reason"] for w in counts["worst"]} == BAD_REASONS
        # Interrupted at step 3 and resumed: the counts were saved with the checkpoint and go on.
        first = _train_config(dirty, tmp_path / "exp3", max_bad_fraction=0.5)
        first["training"]["max_steps"] = 3
        assert train(first)["bad_clips"]["items"] == 3 * 4
        resumed = train(_train_config(dirty, tmp_path / "exp3", max_bad_fraction=0.5))
        assert resumed["resumed_from"] and resumed["bad_clips"] == report["bad_clips"]
        with pytest.raises(AudioSepError, match=r"more than data\.max_bad_fraction=0\.1 allows\. Worst: .*\.wav"):
            train(_train_config(dirty, tmp_path / "exp2", max_bad_fraction=0.1))
    finally:
        torch.set_num_threads(threads)


def test_a_truncated_shard_and_bad_samples_are_skipped_counted_and_bounded(tmp_path):
    entries = _good_entries(tmp_path, 8)
    sf.write(tmp_path / "silent.wav", np.zeros(RATE, dtype="float32"), RATE)
    sf.write(tmp_path / "nan.wav", np.full(RATE // 2, np.nan, dtype="float32"), RATE, subtype="FLOAT")
    entries[2:2] = [{"wav": str(tmp_path / "silent.wav"), "caption": "silence"},
                    {"wav": str(tmp_path / "nan.wav"), "caption": "nan"}]
    shards = write_shards(write_datafile(tmp_path / "train.json", entries), tmp_path / "shards", max_count=5)
    assert len(shards) == 2
    whole = shards[1].read_bytes()
    shards[1].write_bytes(whole[: len(whole) // 2])  # the second shard loses its end
    ds = LASSShardDataset(tmp_path / "shards", sample_rate=RATE, segment_seconds=SEGMENT, shuffle=False)
    tally = BadClipTally(ds.num_samples, max_bad_fraction=1.0)
    served = 0
    for batch in DataLoader(ds, batch_size=2, num_workers=2):
        assert torch.isfinite(batch["waveform"]).all()
        assert batch["waveform"].abs().amax(dim=-1).min() > 0
        served += len(batch["caption"])
        tally.update(batch)
    counts = tally.summary()
    assert counts["items"] == served and 3 <= served <= 6  # shard 0: 3 good of 5; shard 1: part of 5
    assert counts["by_reason"]["silent"]["files"] == counts["by_reason"]["non_finite"]["files"] == 1
    assert counts["by_reason"]["corrupt_shard"]["files"] == 1
    corrupt = next(w for w in counts["worst"] if w["reason"] == "corrupt_shard")
    assert corrupt["path"] == str(shards[1]) and 1 <= corrupt["weight"] <= 5  # the samples lost
    unindexed = LASSShardDataset([str(p) for p in shards], sample_rate=RATE, segment_seconds=SEGMENT, shuffle=False)
    events = [e for item in unindexed for e in decode_events(item["bad"])]  # no index: the tar's end tells
    assert any(e["path"] == str(shards[1]) and e["reason"] == "corrupt_shard" for e in events)
    with pytest.raises(AudioSepError, match=str(shards[1].name)):
        again = BadClipTally(ds.num_samples, max_bad_fraction=0.2)
        for batch in DataLoader(ds, batch_size=2, num_workers=1):
            again.update(batch)


@pytest.mark.slow
def test_two_ddp_ranks_add_their_counts_up(dirty, tmp_path):
    """2 processes (gloo) on CPU: the report counts the skips of both ranks, which read together
    the stream one process reads with twice the batch."""
    import subprocess
    import sys

    import yaml

    conf = _train_config(dirty, tmp_path / "exp", max_bad_fraction=0.5)
    conf["training"].update(accelerator="cpu", devices=2, max_steps=4, checkpoint_every_n_steps=2)
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(conf))
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, str(repo / "egs" / "audiosep" / "train.py"), "--config",
                             str(tmp_path / "ddp.yaml")], cwd=repo, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "exp" / "train_report.json").read_text())
    assert report["world_size"] == 2
    single = _count(dirty, workers=0, batch_size=8, steps=4, max_bad_fraction=0.5).summary()
    assert report["bad_clips"] == json.loads(json.dumps(single))
