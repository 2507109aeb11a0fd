"""LASSTrainDataset and LASSEvalDataset on tiny generated files."""
import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_audiosep.data import LASSEvalDataset, LASSTrainDataset, write_datafile
from asteroid_audiosep.data.evallist import write_eval_list
from asteroid_audiosep.errors import AudioSepError


def _tone(path, seconds, sr=8000, freq=440.0, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    wav = 0.5 * np.sin(2 * np.pi * freq * t)
    sf.write(path, np.stack([wav] * channels, axis=1), sr)
    return str(path)


@pytest.fixture
def corpus(tmp_path):
    entries = [
        {"wav": _tone(tmp_path / "long.wav", 3.0, channels=2), "caption": ["a long tone", "a beep"]},
        {"wav": _tone(tmp_path / "short.wav", 0.5, freq=220), "caption": "a short tone"},
        {"wav": _tone(tmp_path / "mid.wav", 1.5, sr=16000), "caption": "a mid tone"},
    ]
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEnot audio at all")
    entries.append({"wav": str(tmp_path / "corrupt.wav"), "caption": "broken"})
    return write_datafile(tmp_path / "train.json", entries)


def test_items_have_fixed_shape_rate_and_caption(corpus):
    ds = LASSTrainDataset([corpus], sample_rate=16000, segment_seconds=1.0, seed=0)
    assert len(ds) == 4 and ds.sample_rate == 16000
    assert ds.captions() == sorted(["a long tone", "a beep", "a short tone", "a mid tone", "broken"])
    for i in range(len(ds)):
        item = ds[i]
        assert item["waveform"].shape == (1, 16000) and item["waveform"].dtype == torch.float32
        entry = ds.entries[item["index"]]
        assert item["caption"] in entry["captions"]
        assert "corrupt" not in entry["wav"]  # the unreadable clip was replaced
    short = next(i for i in range(len(ds)) if ds.clip_index(i) == 1)
    wav = ds[short]["waveform"]
    assert wav[0, :3900].abs().max() > 0.1 and torch.all(wav[0, 8100:] == 0)  # 0.5 s then zeros
    infos = ds.get_infos()
    assert infos["num_clips"] == 4 and infos["sample_rate"] == 16000


def test_epochs_are_reproducible_and_differ(corpus):
    ds = LASSTrainDataset([corpus], sample_rate=8000, segment_seconds=0.5, seed=7)
    first = [ds[i]["waveform"] for i in range(3)]
    order = [ds.clip_index(i) for i in range(4)]
    again = LASSTrainDataset([corpus], sample_rate=8000, segment_seconds=0.5, seed=7)
    assert all(torch.equal(a, again[i]["waveform"]) for i, a in enumerate(first))
    orders, segments = set(), set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        orders.add(tuple(ds.clip_index(i) for i in range(4)))
        long_item = next(i for i in range(4) if ds.clip_index(i) == 0)
        segments.add(round(float(ds[long_item]["waveform"][0, 0]), 6))
    assert len(orders) > 1 and len(segments) > 1
    ds.set_epoch(0)
    assert [ds.clip_index(i) for i in range(4)] == order


def test_missing_files_reported_at_build(tmp_path, corpus):
    from asteroid_audiosep.data import read_datafile

    entries = read_datafile(corpus) + [{"wav": str(tmp_path / "gone.wav"), "captions": ["x"]}]
    path = write_datafile(tmp_path / "with_missing.json", entries)
    with pytest.raises(AudioSepError, match="1 of 5 audio files .* missing.*gone.wav"):
        LASSTrainDataset([path], sample_rate=8000)
    assert len(LASSTrainDataset([path], sample_rate=8000, skip_missing=True)) == 4


def test_all_corrupt_raises_clear_error(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"nope")
    path = write_datafile(tmp_path / "d.json", [{"wav": str(tmp_path / "bad.wav"), "caption": "x"}])
    ds = LASSTrainDataset([path], sample_rate=8000, segment_seconds=0.1)
    with pytest.raises(AudioSepError, match="could not be read"):
        ds[0]


def test_works_in_a_dataloader_with_workers(corpus):
    ds = LASSTrainDataset([corpus], sample_rate=8000, segment_seconds=0.25, shuffle=False)
    serial = [ds[i]["waveform"] for i in range(len(ds))]
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    assert batches[0]["waveform"].shape == (2, 1, 2000)
    assert torch.equal(torch.cat([b["waveform"] for b in batches]), torch.stack(serial))


def _eval_folder(tmp_path, n=3, sr=8000):
    rows = []
    for idx in range(n):
        _tone(tmp_path / f"segment-{idx}.wav", 0.5, sr=sr, freq=200 + 100 * idx)
        _tone(tmp_path / f"mixture-{idx}.wav", 0.5, sr=sr, freq=300)
        rows.append({"idx": idx, "caption": f"tone {idx}", "paraphrase": f"beep {idx}", "class": f"c{idx % 2}", "src_wav": "x.wav"})
    return write_eval_list(tmp_path / "eval.csv", rows)


def test_eval_dataset_items_and_query_columns(tmp_path):
    csv_path = _eval_folder(tmp_path)
    ds = LASSEvalDataset(csv_path)
    assert ds.query_columns == ["caption", "paraphrase"] and len(ds) == 3
    item = ds[1]
    assert item["mixture"].shape == item["target"].shape == (4000,)
    assert item["query"] == "tone 1" and item["id"] == "1" and item["class"] == "c1"
    assert LASSEvalDataset(csv_path, query_column="paraphrase")[2]["query"] == "beep 2"
    assert LASSEvalDataset(csv_path, sample_rate=16000)[0]["target"].shape == (8000,)
    with pytest.raises(AudioSepError, match="no query column 'label'"):
        LASSEvalDataset(csv_path, query_column="label")


def test_eval_dataset_reports_missing_files(tmp_path):
    csv_path = _eval_folder(tmp_path)
    (tmp_path / "mixture-2.wav").unlink()
    with pytest.raises(AudioSepError, match="1 of 6 audio files.*mixture-2.wav"):
        LASSEvalDataset(csv_path)
    assert len(LASSEvalDataset(csv_path, skip_missing=True)) == 2
