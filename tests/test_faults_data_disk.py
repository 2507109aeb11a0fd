"""A full disk (issue 27 item 3, separation and evaluation half): ``separate`` on a folder keeps
the outputs it wrote and reports "no space left" with the path for the others, leaving no
temporary file; a per-item score file written on a full disk stays parseable and resumable."""
import csv
import os

import numpy as np
import pytest
import soundfile as sf
from helpers import QUERIES, make_demo_package, make_demo_wav

from asteroid_audiosep.cli import main
from asteroid_audiosep.errors import AudioSepError
from asteroid_audiosep.evaluation import ResultCSV

pytestmark = pytest.mark.usefixtures("one_thread")


def _fill(folder, keep: int = 0):
    """Fill the filesystem of ``folder`` (leaving about ``keep`` bytes) with one filler file."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\1" * 4096)
        except OSError:
            pass
    os.truncate(folder / "filler", max(os.path.getsize(folder / "filler") - keep, 0))


@pytest.mark.parametrize("options", [[], ["--format", "flac", "--subtype", "PCM_24"]], ids=["float-wav", "flac"])
def test_separate_on_a_full_disk_keeps_what_it_wrote_and_names_the_rest(small_disk, tmp_path, capsys, options):
    """Float WAV outputs are written in place; FLAC ones are encoded at the end from a hidden
    float temporary: either way the finished files stay and no temporary is left."""
    model, table = make_demo_package(tmp_path)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for k in range(6):  # 1 s mono at 16 kHz: 64 KB of float32 output each
        make_demo_wav(inputs / f"f{k}.wav", seconds=1.0, rate=16000, channels=1)
    out = small_disk(200)  # room for three outputs
    rc = main(["separate", "--model", str(model), "--query-embeddings", str(table), "-q", QUERIES[0],
               str(inputs), "-o", str(out), "--quiet", *options])
    err = capsys.readouterr().err
    assert rc == 1
    suffix = ".flac" if options else ".wav"
    written = sorted(p.name for p in out.glob(f"*{suffix}"))
    assert 1 <= len(written) < 6
    for name in written:  # complete, readable outputs
        assert sf.info(str(out / name)).frames == 16000
    failed = [f"f{k}" for k in range(6) if f"f{k}__dog_barking{suffix}" not in written]
    for stem in failed:
        line = next(line for line in err.splitlines() if line.startswith("failed:") and f"{stem}.wav" in line)
        assert "no space left on device" in line and str(out / stem) in line, line
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]  # no temporary


def test_a_score_file_on_a_full_disk_stays_parseable_and_resumes(small_disk):
    folder = small_disk(64)
    path = folder / "scores.csv"
    columns = ["id", "sdr", "query"]
    scores = ResultCSV(path, columns)
    _fill(folder)
    written = 0
    with pytest.raises(AudioSepError, match=r"no space left on device: cannot write .*scores\.csv") as err:
        for k in range(10000):  # fills the file's last page, then fails mid-line
            scores.append({"id": f"item{k:05d}", "sdr": float(k) / 3, "query": "a dog barking " * 4})
            written += 1
    assert f"the {written} items scored before are kept" in str(err.value) and written > 0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [f"item{k:05d}" for k in range(written)]  # no half line
    assert float(rows[-1]["sdr"]) == pytest.approx((written - 1) / 3)
    os.unlink(folder / "filler")
    resumed = ResultCSV(path, columns)
    assert len(resumed) == written and resumed.done(f"item{written - 1:05d}") and not resumed.done(f"item{written:05d}")
    resumed.append({"id": f"item{written:05d}", "sdr": np.nan, "query": "x"})
    assert ResultCSV(path, columns).done(f"item{written:05d}")
