"""webdataset shards: writing from a datafile, streaming training items from them."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_audiosep.data import write_datafile
from asteroid_audiosep.data.badclips import decode_events
from asteroid_audiosep.data.shards import LASSShardDataset, write_shards
from asteroid_audiosep.errors import AudioSepError


@pytest.fixture
def datafile(tmp_path):
    rng = np.random.default_rng(0)
    entries = []
    for k in range(7):
        path = tmp_path / "audio" / f"clip{k}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, rng.uniform(-0.5, 0.5, 4000 + 1000 * k).astype(np.float32), 8000)
        entries.append({"wav": str(path), "caption": [f"clip {k}", f"sound {k}"], "labels": [f"L{k}"]})
    (tmp_path / "audio" / "bad.wav").write_bytes(b"garbage")
    entries.append({"wav": str(tmp_path / "audio" / "bad.wav"), "caption": "bad"})
    return write_datafile(tmp_path / "train.json", entries)


def test_write_shards_counts_index_and_reproducibility(datafile, tmp_path):
    paths = write_shards(datafile, tmp_path / "shards", max_count=3)
    assert [p.name for p in paths] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    index = json.loads((tmp_path / "shards" / "shards.json").read_text())
    assert [s["count"] for s in index["shards"]] == [3, 3, 1]  # the corrupt clip is left out
    assert "clip 3" in index["captions"]
    again = write_shards(datafile, tmp_path / "again", max_count=3)
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(paths, again))
    assert not list((tmp_path / "shards").glob("*.tmp"))


def test_stream_items_like_the_map_dataset(datafile, tmp_path):
    write_shards(datafile, tmp_path / "shards", max_count=3, sample_rate=16000)
    ds = LASSShardDataset(tmp_path / "shards", sample_rate=16000, segment_seconds=0.5, seed=1, shuffle_buffer=4)
    items = list(ds)
    assert len(items) == 7 == ds.num_samples
    assert sorted(it["index"] for it in items) == list(range(7))
    for it in items:
        assert it["waveform"].shape == (1, 8000) and it["waveform"].dtype == torch.float32
        assert it["caption"] in (f"clip {it['index']}", f"sound {it['index']}")
    again = list(LASSShardDataset(tmp_path / "shards", sample_rate=16000, segment_seconds=0.5, seed=1, shuffle_buffer=4))
    assert [it["index"] for it in again] == [it["index"] for it in items]
    assert all(torch.equal(a["waveform"], b["waveform"]) for a, b in zip(items, again))
    ds.set_epoch(1)
    other = list(ds)
    assert [it["index"] for it in other] != [it["index"] for it in items] or not all(
        torch.equal(a["waveform"], b["waveform"]) for a, b in zip(items, other))
    assert "clip 0" in ds.captions() and ds.get_infos()["num_shards"] == 3


def test_workers_split_shards_without_duplicates(datafile, tmp_path):
    write_shards(datafile, tmp_path / "shards", max_count=2)
    ds = LASSShardDataset(str(tmp_path / "shards" / "shard-{000000..000003}.tar"), sample_rate=8000,
                          segment_seconds=0.25, shuffle=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    assert sorted(int(it["index"]) for it in loader) == list(range(7))


def test_corrupt_shard_content_is_skipped(datafile, tmp_path, caplog):
    paths = write_shards(datafile, tmp_path / "shards", max_count=4)
    blob = bytearray(paths[0].read_bytes())
    start = blob.index(b"RIFF", 600)  # corrupt the second sample's audio payload
    blob[start : start + 64] = b"\0" * 64
    paths[0].write_bytes(bytes(blob))
    items = list(LASSShardDataset(paths, sample_rate=8000, segment_seconds=0.25, shuffle=False))
    assert len(items) == 6
    skipped = [e for item in items for e in decode_events(item["bad"])]  # reported with the next item
    assert [e["reason"] for e in skipped] == ["unreadable"] and "#" in skipped[0]["path"]


def test_missing_shards_raise(tmp_path):
    with pytest.raises(AudioSepError):
        LASSShardDataset([tmp_path / "none.tar"], sample_rate=8000)


def test_epoch_length_gives_equal_counts_per_worker(datafile, tmp_path):
    write_shards(datafile, tmp_path / "shards", max_count=3)  # 3 shards of unequal size
    ds = LASSShardDataset(tmp_path / "shards", sample_rate=8000, segment_seconds=0.25, epoch_length=11,
                          shuffle_buffer=0)
    assert len(list(ds)) == 11
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    assert len(list(loader)) == 11


def test_epoch_length_with_unreadable_shards_raises(tmp_path):
    (tmp_path / "bad.tar").write_bytes(b"not a tar file at all" * 10)
    ds = LASSShardDataset([tmp_path / "bad.tar"], sample_rate=8000, epoch_length=5)
    with pytest.raises(AudioSepError, match="no readable sample"):
        list(ds)
