"""Reader of the released evaluation benchmark: every row of every released CSV, and items
built from a fake data folder in the released layout."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asteroid_audiosep.data.benchmark import (
    RELEASED_BENCHMARKS,
    read_released_benchmark,
    released_benchmark_dataset,
)
from asteroid_audiosep.data.evallist import read_csv_rows
from asteroid_audiosep.errors import AudioSepError

METADATA = Path("/work/shared/reference/benchmark_metadata")
EXPECTED_ROWS = {"audioset": 5270, "vggsound": 1000, "audiocaps": 4820, "clotho": 5225, "esc50": 2000, "music": 5004}


def test_every_released_csv_is_listed():
    listed = {spec["csv"] for spec in RELEASED_BENCHMARKS.values()}
    assert listed == {p.name for p in METADATA.glob("*_eval.csv")}


@pytest.mark.parametrize("name", sorted(RELEASED_BENCHMARKS))
def test_parse_every_row(name, tmp_path):
    data_dir = tmp_path / name
    items = read_released_benchmark(name, METADATA / RELEASED_BENCHMARKS[name]["csv"], data_dir,
                                    class_labels_csv=METADATA / "class_labels_indices.csv")
    assert len(items) == EXPECTED_ROWS[name]
    assert len({it.id for it in items}) == len(items)
    query = RELEASED_BENCHMARKS[name]["query"]
    assert all(it.queries[query].strip() for it in items)
    assert all(it.mixture.parent.is_relative_to(data_dir) and it.target.parent.is_relative_to(data_dir) for it in items)
    if name == "audioset":
        assert {it.group for it in items} == {str(c) for c in range(527)}
        first = items[0]
        assert first.target == data_dir / "class_id=0" / "class_id=0,index=000,source.wav"
        assert first.mixture == data_dir / "class_id=0" / "class_id=0,index=000,mixture.wav"
        assert first.queries["caption"] == "Speech" and first.id == "class_id=0,index=000"
    elif name == "vggsound":
        assert items[0].mixture == data_dir / "data" / "mix_wav" / (items[0].id + ".wav")
        assert items[0].queries["caption"] == items[0].queries["s0_text"] == "playing accordion"
    else:
        assert items[5].mixture == data_dir / "mixture-5.wav" and items[5].target == data_dir / "segment-5.wav"
    if name == "music":
        assert len({it.group for it in items}) == 10 and all(it.group == it.queries["caption"] for it in items)
    if name == "audiocaps":
        assert set(items[0].queries) == {"caption", "labels"}
    if name == "clotho":  # the duplicated noise_wav1 column is not taken for a query
        assert set(items[0].queries) == {"caption"}


def test_duplicate_column_names_are_kept_apart():
    rows = read_csv_rows(METADATA / "clotho_eval.csv")
    assert rows[0]["noise_wav1"] != rows[0]["noise_wav1.1"]


def _write(path, seconds=0.2, sr=8000, value=0.1):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(int(seconds * sr), value, dtype=np.float32), sr)


def _head_csv(name, tmp_path, rows=4):
    lines = (METADATA / RELEASED_BENCHMARKS[name]["csv"]).read_text(encoding="utf-8").splitlines()
    out = tmp_path / f"{name}_eval.csv"
    out.write_text("\n".join(lines[: rows + 1]) + "\n", encoding="utf-8")
    return out


@pytest.mark.parametrize("name", sorted(RELEASED_BENCHMARKS))
def test_items_from_fake_released_data_folder(name, tmp_path):
    csv_path = _head_csv(name, tmp_path)
    data_dir = tmp_path / "evaluation" / "data" / name
    rows = read_csv_rows(csv_path)
    for row in rows:
        if name == "vggsound":
            _write(data_dir / row["mix_wav"], value=0.3)
            _write(data_dir / row["s0_wav"], value=0.1)
        elif name == "audioset":  # the CSV paths start with evaluation/data/audioset/
            _write(tmp_path / row["noise_wav"], value=0.3)
            _write(tmp_path / row["src_wav"], value=0.1)
        else:
            _write(data_dir / f"mixture-{row['idx']}.wav", value=0.3)
            _write(data_dir / f"segment-{row['idx']}.wav", value=0.1)
    ds = released_benchmark_dataset(name, csv_path, data_dir, sample_rate=16000,
                                     class_labels_csv=METADATA / "class_labels_indices.csv")
    assert len(ds) == len(rows)
    assert ds.aggregation == RELEASED_BENCHMARKS[name]["aggregation"]
    item = ds[0]
    assert item["mixture"].shape == item["target"].shape == (3200,)
    assert float(item["mixture"][1600]) == pytest.approx(0.3, abs=1e-3)
    assert float(item["target"][1600]) == pytest.approx(0.1, abs=1e-3)
    assert isinstance(item["query"], str) and item["query"]
    if name == "audioset":
        assert item["class"] == "0" and item["query"] == "Speech"
    if name == "music":
        assert item["class"] == item["query"] == "accordion"


def test_missing_released_data_is_reported(tmp_path):
    csv_path = _head_csv("esc50", tmp_path)
    with pytest.raises(AudioSepError, match="8 of 8 audio files.*missing"):
        released_benchmark_dataset("esc50", csv_path, tmp_path / "nothing")
    with pytest.raises(AudioSepError, match="unknown released benchmark"):
        released_benchmark_dataset("esc-50", csv_path, tmp_path)
