"""What Asteroid's own CLIs (asteroid 0.7.0) do with an AudioSep model package, as
docs/asteroid.md states it: each is run here on a tiny package."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import DEMO_ARGS, nontrivial

from asteroid_audiosep import AudioSep
from asteroid_audiosep.engine.package import export_model_package

BIN = Path(sys.executable).parent
DOCS = Path(__file__).resolve().parents[1] / "docs" / "asteroid.md"
#: The training set's get_infos() as the recipe stores it in best_model.pth (data/mini.py's licence).
RECIPE_INFOS = dict(dataset="mini (synthetic)", task="language-queried audio source separation",
                    licenses=[{"title": "procedurally generated", "license": "CC0-1.0"}])


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """``best_model.pth`` as the recipe writes it, and a 16 kHz mono mixture."""
    root = tmp_path_factory.mktemp("asteroid_cli")
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**DEMO_ARGS))
    export_model_package(model, root / "best_model.pth", dataset_infos=RECIPE_INFOS)
    sf.write(root / "x.wav", 0.1 * np.random.default_rng(0).standard_normal(16000).astype("float32"), 16000)
    return root / "best_model.pth"


def cli(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "ACCESS_TOKEN"}  # never a Zenodo token
    return subprocess.run([*map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def docs_text() -> str:
    return " ".join(DOCS.read_text().split())


def test_asteroid_infer_cannot_load_the_package(package):
    root = package.parent
    done = cli(BIN / "asteroid-infer", package, "--files", "x.wav", cwd=root)
    message = "TypeError: BaseModel.__init__() got an unexpected keyword argument 'n_fft'"
    assert done.returncode != 0 and message in done.stderr
    assert not list(root.glob("*_est*.wav"))
    assert message in docs_text()
    from asteroid.scripts.asteroid_cli import SUPPORTED_EXTENSIONS  # what it takes from folders

    assert SUPPORTED_EXTENSIONS == [".wav", ".flac", ".ogg"]
    assert "`asteroid-infer` reads only `.wav`, `.flac` and `.ogg` in folders" in docs_text()


def test_asteroid_infer_with_the_plugin_imported_has_no_query(package):
    root = package.parent
    code = "import sys, asteroid_audiosep; from asteroid.scripts.asteroid_cli import infer; infer(sys.argv[1:])"
    done = cli(sys.executable, "-c", code, package, "--files", "x.wav", cwd=root)
    message = "give exactly one of `query` (text) or `condition` (embeddings)"
    assert done.returncode != 0 and message in done.stderr
    assert not list(root.glob("*_est*.wav"))
    assert message in docs_text()


def test_asteroid_separate_from_python_takes_a_query(package, tmp_path):
    from asteroid.separate import separate

    model = AudioSep.from_pretrained(package)
    separate(model, str(package.parent / "x.wav"), output_dir=str(tmp_path),
             condition=torch.randn(1, DEMO_ARGS["condition_dim"]))
    mix, _ = sf.read(package.parent / "x.wav")
    est, rate = sf.read(tmp_path / "x_est1.wav")
    assert rate == 16000 and est.shape == mix.shape
    # Asteroid scales the estimate to the mixture's summed magnitude (docs/asteroid.md says so).
    assert np.abs(est).sum() == pytest.approx(np.abs(mix).sum(), rel=1e-3)
    assert "x_est1.wav" in docs_text() and "summed magnitude" in docs_text()
    sf.write(tmp_path / "stereo.wav", np.stack([mix, 0.5 * mix], axis=1).astype("float32"), 16000)
    condition = torch.randn(1, DEMO_ARGS["condition_dim"])
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="Model supports 1-channel inputs"):
        separate(model, str(tmp_path / "stereo.wav"), condition=condition)
    with pytest.warns(UserWarning, match="first channel only"):
        separate(model, str(tmp_path / "stereo.wav"), resample=True, condition=condition)
    assert sf.read(tmp_path / "stereo_est1.wav")[0].ndim == 1
    assert "With `resample=True` it keeps only the first channel of a multichannel file" in docs_text()
    assert "RuntimeError: Model supports 1-channel inputs but found audio with 2 channels" in docs_text()


def test_asteroid_register_sr_rewrites_the_models_rate(package, tmp_path):
    copy = tmp_path / "copy.pth"
    copy.write_bytes(package.read_bytes())
    done = cli(BIN / "asteroid-register-sr", copy, "8000", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert AudioSep.from_pretrained(package).sample_rate == 16000
    assert AudioSep.from_pretrained(copy).sample_rate == 8000  # inputs would now be resampled to 8 kHz
    assert "asteroid-register-sr" in docs_text() and "8000" in docs_text()


def test_asteroid_upload_stops_before_the_network(package, tmp_path):
    publish = tmp_path / "publish"
    publish.mkdir()
    (publish / "model.pth").write_bytes(package.read_bytes())
    args = (BIN / "asteroid-upload", publish, "--uploader", "A User", "--git_username", "auser")
    done = cli(*args, cwd=tmp_path)
    assert done.returncode != 0 and "KeyError: 'title_link'" in done.stderr
    assert not (publish / "published_model.pth").exists()
    # A package from convert-official has no training-set infos at all.
    torch.save(AudioSep(**DEMO_ARGS).serialize(), publish / "model.pth")
    done = cli(*args, cwd=tmp_path)
    assert done.returncode != 0 and "KeyError: 'dataset'" in done.stderr
    # With Asteroid's licence fields added, it writes published_model.pth, then needs a Zenodo token.
    pkg = torch.load(package, weights_only=True)
    pkg["licenses"] = [dict(title="t", title_link="https://example.org", author="a", author_link="https://example.org",
                            license="CC0-1.0", license_link="https://example.org", non_commercial=False)]
    torch.save(pkg, publish / "model.pth")
    done = cli(*args, cwd=tmp_path)
    assert done.returncode != 0 and "Need an access token" in done.stderr
    published = torch.load(publish / "published_model.pth", weights_only=True)
    assert published["infos"]["uploader"] == "A User" and published["infos"]["upload_name"].startswith("auser/AudioSep_")
    text = docs_text()
    assert all(s in text for s in ("KeyError: 'title_link'", "KeyError: 'dataset'", "published_model.pth",
                                   "Need an access token"))


def test_readme_states_what_asteroids_clis_do():
    """README's one-paragraph summary states what the tests above check, and links the page."""
    readme = " ".join((DOCS.parents[1] / "README.md").read_text().split())
    assert "docs/asteroid.md" in readme
    assert all(s in readme for s in ("`asteroid-infer` fails", "use `asteroid-audiosep separate`",
                                     "`asteroid-register-sr` rewrites the package's rate",
                                     "`asteroid-upload` stops before the network"))
