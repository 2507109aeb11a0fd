"""The shared evaluation-mixture builder and the common evaluation-list format."""
import numpy as np
import pytest
import soundfile as sf

from asteroid_audiosep.data import LASSEvalDataset
from asteroid_audiosep.data.evallist import (
    read_csv_rows,
    read_eval_list,
    write_eval_list,
)
from asteroid_audiosep.data.evalmix import Excerpt, MixtureSpec, build_eval_mixtures
from asteroid_audiosep.errors import AudioSepError

SR = 8000


def _ramp(path, seconds, offset=0.0):
    n = int(seconds * SR)
    sf.write(path, (offset + np.arange(n) / n * 0.1).astype(np.float32), SR, subtype="FLOAT")
    return path


def test_excerpts_concatenated_cut_and_padded(tmp_path):
    target = _ramp(tmp_path / "t.wav", 2.0)
    short = _ramp(tmp_path / "s.wav", 0.25, offset=0.2)
    long = _ramp(tmp_path / "l.wav", 3.0, offset=-0.3)
    specs = [
        MixtureSpec(Excerpt(target, start=0.5, duration=1.0), [Excerpt(short), Excerpt(long)], {"caption": "a"}),
        MixtureSpec(Excerpt(target), [Excerpt(short)], {"caption": "b", "class": "x"}, snr_db=6.0),
    ]
    csv_path = build_eval_mixtures(specs, tmp_path / "out", sample_rate=SR, peak_limit=10.0)
    ds = LASSEvalDataset(csv_path)
    first, second = ds[0], ds[1]
    assert first["target"].shape == (SR,)
    assert first["target"][0] == pytest.approx(0.025, abs=1e-4)  # starts 0.5 s into the ramp
    background = (first["mixture"] - first["target"]).numpy()
    # 0.25 s of the short clip then 0.75 s of the long one: the sign flips at 2000 samples
    assert (background[:1990] > 0).all() and (background[2010:] < 0).all()
    rows = read_csv_rows(csv_path)
    assert rows[0]["noise_wav1"] == "s.wav" and rows[0]["noise_wav2"] == "l.wav" and rows[1]["noise_wav"] == "s.wav"
    noise = (second["mixture"] - second["target"]).numpy()
    assert (noise[int(0.25 * SR) + 5:] == 0).all()  # zero-padded background
    snr = 10 * np.log10(float((second["target"] ** 2).mean()) / float((noise ** 2).mean()))
    assert snr == pytest.approx(6.0, abs=0.01) and second["class"] == "x"


def test_unreadable_targets_are_left_out_with_contiguous_indices(tmp_path, caplog):
    good = _ramp(tmp_path / "g.wav", 0.5)
    (tmp_path / "bad.wav").write_bytes(b"nope")
    specs = [MixtureSpec(Excerpt(tmp_path / "bad.wav"), [Excerpt(good)], {"caption": "bad"}),
             MixtureSpec(Excerpt(good), [Excerpt(good)], {"caption": "good"})]
    csv_path = build_eval_mixtures(specs, tmp_path / "out", sample_rate=SR)
    assert [r["idx"] for r in read_csv_rows(csv_path)] == ["0"] and "1 of 2 mixtures" in caplog.text
    assert (tmp_path / "out" / "mixture-0.wav").is_file() and not (tmp_path / "out" / "mixture-1.wav").exists()
    with pytest.raises(AudioSepError, match="no mixture"):
        build_eval_mixtures(specs[:1], tmp_path / "out2", sample_rate=SR)
    with pytest.raises(AudioSepError, match="caption"):
        build_eval_mixtures([MixtureSpec(Excerpt(good), [], {})], tmp_path / "out3", sample_rate=SR)


def test_eval_list_format_errors(tmp_path):
    with pytest.raises(AudioSepError, match="'idx' and 'caption'"):
        (tmp_path / "a.csv").write_text("idx,label\n0,x\n")
        read_eval_list(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("idx,caption\n0,x\n0,y\n")
    with pytest.raises(AudioSepError, match="appears twice"):
        read_eval_list(tmp_path / "b.csv")
    path = write_eval_list(tmp_path / "c.csv", [{"idx": 0, "caption": "x, with comma", "paraphrase": 'say "y"'}])
    items = read_eval_list(path)
    assert items[0].queries == {"caption": "x, with comma", "paraphrase": 'say "y"'}
