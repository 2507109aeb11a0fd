"""FSD50K corpus reader (`prepare_data.py fsd50k`) on a fake folder of the published layout."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asteroid_audiosep import AudioSepError
from asteroid_audiosep.data.corpora import PREPARERS
from asteroid_audiosep.data.datafile import read_datafile

SCRIPT = Path(__file__).resolve().parents[1] / "egs" / "audiosep" / "prepare_data.py"


@pytest.fixture()
def fsd50k(tmp_path):
    root = tmp_path / "FSD50K"
    gt = root / "FSD50K.ground_truth"
    gt.mkdir(parents=True)
    (gt / "dev.csv").write_text(
        "fname,labels,mids,split\n"
        '64760,"Electric_guitar,Guitar,Music","/m/02sgy,/m/0342h,/m/04rlf",train\n'
        '16399,"Dog,Domestic_animals_and_pets,Animal","/m/0bt9lr,/m/068hy,/m/0jbk",train\n'
        '1000,"Rain,Water","/m/06mb1,/m/0838f",val\n')
    (gt / "eval.csv").write_text('fname,labels,mids\n37199,"Bark,Dog","/m/05tny_,/m/0bt9lr"\n')
    for folder, names in (("FSD50K.dev_audio", ["64760", "16399", "1000"]), ("FSD50K.eval_audio", ["37199"])):
        (root / folder).mkdir()
        for name in names:
            sf.write(root / folder / f"{name}.wav", np.zeros(1600, dtype=np.float32), 16000)
    return root


def test_labels_become_captions_per_split(fsd50k, tmp_path):
    written = PREPARERS["fsd50k"](fsd50k, tmp_path / "out", splits=["train", "val", "eval"])
    train = read_datafile(written["train"])
    assert [e["captions"] for e in train] == [["Electric guitar, Guitar, Music"],
                                              ["Dog, Domestic animals and pets, Animal"]]
    assert train[0]["labels"] == ["Electric guitar", "Guitar", "Music"]
    assert train[0]["wav"].endswith("FSD50K.dev_audio/64760.wav")
    assert [e["captions"] for e in read_datafile(written["val"])] == [["Rain, Water"]]
    assert read_datafile(written["eval"])[0]["wav"].endswith("FSD50K.eval_audio/37199.wav")


def test_command_line_and_missing_inputs(fsd50k, tmp_path):
    (fsd50k / "FSD50K.dev_audio" / "1000.wav").unlink()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(SCRIPT), "fsd50k", str(fsd50k), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(read_datafile(tmp_path / "out" / "fsd50k_dev.json")) == 2  # the missing clip left out
    with pytest.raises(AudioSepError, match="no audio file for 1 of 3 clips"):
        PREPARERS["fsd50k"](fsd50k, tmp_path / "strict", skip_missing=False)
    (fsd50k / "FSD50K.ground_truth" / "eval.csv").unlink()
    with pytest.raises(AudioSepError, match="FSD50K eval ground truth not found"):
        PREPARERS["fsd50k"](fsd50k, tmp_path / "none", splits=["dev", "eval"])
    assert not (tmp_path / "none").exists()  # nothing written when one split's list is missing
