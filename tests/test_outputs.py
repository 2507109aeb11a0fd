"""Output files a user can live with: formats, permissions, folders separated into themselves."""
import hashlib
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import nontrivial, small_model_args

from asteroid_audiosep import AudioSep, AudioSepError, separate
from asteroid_audiosep.cli import main
from asteroid_audiosep.encoders import PrecomputedQueryEncoder
from asteroid_audiosep.outputs import MANIFEST, choose_format


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**small_model_args(condition_dim=8))).eval()
    model.set_query_encoder(PrecomputedQueryEncoder(table={"siren": torch.ones(8), "loud": 40 * torch.ones(8)}),
                            update_spec=False)
    return model


def noise(seconds, rate, channels, seed=0, level=0.1):
    return (level * np.random.default_rng(seed).standard_normal((int(seconds * rate), channels))).astype(np.float32)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name, subtype, out_name, out_subtype", [
    ("a.flac", "PCM_16", "a__siren.flac", "PCM_16"),
    ("a.wav", "PCM_24", "a__siren.wav", "PCM_24"),
    ("a.wav", "FLOAT", "a__siren.wav", "FLOAT"),
    ("a.ogg", "VORBIS", "a__siren.flac", "PCM_24"),
])
def test_outputs_keep_the_input_format(model, tmp_path, name, subtype, out_name, out_subtype):
    sf.write(tmp_path / name, noise(1.3, 22050, 2), 22050, subtype=subtype)
    report = separate(tmp_path / name, "siren", model=model, outdir=tmp_path / "out", progress=False)
    assert report.ok, report.summary()
    info, source = sf.info(tmp_path / "out" / out_name), sf.info(tmp_path / name)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (
        22050, 2, source.frames, out_subtype)


def test_overrides_and_clipping_outputs_are_scaled_with_a_warning(model, tmp_path):
    sf.write(tmp_path / "a.wav", noise(1.0, 16000, 1, level=0.9), 16000, subtype="PCM_16")
    report = separate(tmp_path / "a.wav", ["siren", "loud"], model=model, outdir=tmp_path / "o",
                      format="flac", subtype="PCM_24", mode="both", progress=False)
    assert report.ok
    assert sorted(p.name for p in (tmp_path / "o").glob("*.flac")) == [
        "a__loud.flac", "a__loud__residual.flac", "a__siren.flac", "a__siren__residual.flac"]
    assert sf.info(tmp_path / "o" / "a__loud.flac").subtype == "PCM_24"
    float_out = separate(tmp_path / "a.wav", ["loud"], model=model, outdir=tmp_path / "f", subtype="FLOAT",
                         progress=False)
    peak = float(np.abs(sf.read(tmp_path / "f" / "a__loud.wav")[0]).max())
    scaled = sf.read(tmp_path / "o" / "a__loud.flac")[0]
    if peak > 1.0:  # the loud query's output passes full scale: scaled, never clipped
        assert any("scaled by" in w for w in report.files[0].warnings)
        assert np.abs(scaled).max() < 1.0
        assert np.allclose(scaled * peak / np.abs(scaled).max(), sf.read(tmp_path / "f" / "a__loud.wav")[0],
                           atol=1e-3)
    assert float_out.ok
    with pytest.raises(AudioSepError, match="cannot hold FLOAT"):
        separate(tmp_path / "a.wav", "siren", model=model, outdir=tmp_path / "x", format="flac",
                 subtype="FLOAT", progress=False)


def test_format_choice_and_rf64_beyond_4_gib():
    assert choose_format("WAV", "PCM_16") == choose_format("WAV", "PCM_16", "same")
    assert choose_format("WAV", "PCM_16").extension == ".wav"
    assert choose_format("MP3", "MPEG_LAYER_III").container == "FLAC"
    assert choose_format(None, None).subtype == "FLOAT"  # in memory -> float WAV
    hour_6ch_96k = 3600 * 96000
    assert choose_format("WAV", "FLOAT", frames=hour_6ch_96k, channels=6).container == "RF64"
    assert choose_format("WAV", "PCM_16", frames=hour_6ch_96k, channels=2).container == "WAV"  # 1.4 GB
    assert choose_format("WAV", "FLOAT", "flac", frames=hour_6ch_96k, channels=6).container == "FLAC"


def test_a_folder_separated_into_itself(model, tmp_path, capsys):
    folder = tmp_path / "recordings"
    folder.mkdir()
    sf.write(folder / "a.wav", noise(1.0, 16000, 1), 16000)
    sf.write(folder / "clip.ogg", noise(1.0, 16000, 1, seed=1), 16000)
    sf.write(folder / "clip.flac", noise(1.0, 16000, 1, seed=2), 16000)
    before = {p.name: digest(p) for p in folder.iterdir()}
    report = separate(folder, "siren", model=model, outdir=folder, progress=False)
    assert report.ok and len(report.files) == 3
    # Inputs differing only by extension keep it in their outputs' names.
    assert sorted(p.name for p in folder.iterdir() if "__" in p.name) == [
        "a__siren.wav", "clip.flac__siren.flac", "clip.ogg__siren.flac"]
    assert (folder / MANIFEST).is_file()
    again = separate(folder, "siren", model=model, outdir=folder, progress=False)
    assert [f.status for f in again.files] == ["skipped"] * 3  # outputs are never inputs
    redo = separate(folder, "siren", model=model, outdir=folder, overwrite=True, progress=False)
    assert [f.status for f in redo.files] == ["written"] * 3
    assert {p.name: digest(p) for p in folder.iterdir() if p.name in before} == before
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio here")
    assert main(["separate", "-q", "siren", str(empty)]) == 2
    err = capsys.readouterr().err
    assert f"no audio file found in {empty}" in err and ".flac" in err


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_outputs_follow_the_umask(model, tmp_path, umask, mode):
    sf.write(tmp_path / "a.flac", noise(1.0, 16000, 1), 16000)
    old = os.umask(umask)
    try:
        assert separate(tmp_path / "a.flac", "siren", model=model, outdir=tmp_path / "o", progress=False).ok
    finally:
        os.umask(old)
    for path in (tmp_path / "o").iterdir():
        assert path.stat().st_mode & 0o777 == mode, path


def test_an_integer_output_that_would_clip_is_scaled_with_a_warning(tmp_path):
    from asteroid_audiosep.outputs import OutputSpec, OutputWriter

    specs = [OutputSpec("target", 0, tmp_path / "loud.wav"), OutputSpec("residual", 0, tmp_path / "rest.wav")]
    fmt = choose_format("WAV", "PCM_16", frames=1000, channels=1)
    writer = OutputWriter(specs, 8000, 1, 1000, fmt)
    target = torch.linspace(-2.0, 2.0, 1000)[None, None]  # peak 2.0: past 16-bit full scale
    writer.write(target, torch.zeros(1, 1000))
    assert writer.commit() == [s.path for s in specs]
    loud, _ = sf.read(tmp_path / "loud.wav")
    assert sf.info(tmp_path / "loud.wav").subtype == "PCM_16"
    assert np.abs(loud).max() < 1.0 and np.allclose(loud * 2.0 / 0.99, target[0, 0].numpy(), atol=1e-3)
    assert len(writer.warnings) == 2 and all("scaled by" in w for w in writer.warnings)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loud.wav", "rest.wav"]  # no temporaries left
