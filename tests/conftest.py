"""Shared fixtures: the reference material, offline Hugging Face settings, small models."""
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Precision "auto" would be bf16 on CPUs with native bf16: the suite runs fp32 on every machine
# (tests/test_precision.py sets the capability both ways).
os.environ.setdefault("AUDIOSEP_CPU_BF16", "0")

REPO = Path(__file__).resolve().parents[1]

from helpers import reference_dir  # noqa: E402  (after the environment above)


@pytest.fixture(scope="session")
def reference():
    path = reference_dir()
    if not (path / "official_forward_vectors.npz").is_file():
        pytest.fail(f"reference material not found in {path}: set AUDIOSEP_REFERENCE_DIR")
    return path


@pytest.fixture(scope="session")
def official_ckpt(reference, tmp_path_factory):
    """The stand-in released checkpoint written by the reference script."""
    out = tmp_path_factory.mktemp("official") / "audiosep_base_4M_steps.ckpt"
    subprocess.run([sys.executable, str(reference / "official_checkpoint.py"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def roberta_tokenizer_dir(tmp_path_factory):
    """A byte-level BPE RoBERTa tokenizer with no merges (real class, vocabulary made here)."""
    import json

    from transformers.models.roberta.tokenization_roberta import bytes_to_unicode

    out = tmp_path_factory.mktemp("roberta_tok")
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in bytes_to_unicode().values():
        vocab[char] = len(vocab)
    vocab["<mask>"] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")
    return out


def _run_recipe(*args, root: Path, relative: bool = False, check: bool = True, env_extra=None):
    """``run.sh --skip_setup true`` with its experiments under ``root/exp`` and data under
    ``root/data`` (relative to the repository when ``relative``, as in the default run), with
    this interpreter's environment first on PATH."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.update(env_extra or {})
    exp, data = root / "exp", root / "data"
    if relative:
        exp, data = os.path.relpath(exp, REPO), os.path.relpath(data, REPO)
    proc = subprocess.run(
        ["bash", str(REPO / "run.sh"), "--skip_setup", "true", "--exp_root", str(exp), "--data_dir", str(data),
         *map(str, args)],
        cwd=REPO, capture_output=True, text=True, env=env,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def run_recipe():
    """The recipe as a user runs it: ``run_recipe(*args, root=tmp_path, check=True)``."""
    return _run_recipe


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="session")
def reduced_recipe(tmp_path_factory):
    """``reduced_recipe(conf) -> (root, exp, proc, seconds)``: stages 0-5 of ``conf`` in the
    reduced form of tests/recipe_runs.py (``--tag reduced``, data and experiments under a
    temporary ``root``, relative to the repository as in the default run, under umask 027: a
    shared cluster's group-readable setting), run once per session whichever test asks first."""
    from recipe_runs import REDUCED_RUNS, TAG

    done = {}

    def run(conf: str):
        if conf not in done:
            root = tmp_path_factory.mktemp(Path(conf).stem)
            old = os.umask(0o027)
            start, cpu = time.perf_counter(), _children_cpu()
            try:
                proc = _run_recipe("--conf", conf, "--tag", TAG, *REDUCED_RUNS[conf], root=root, relative=True)
            finally:
                os.umask(old)
            seconds = time.perf_counter() - start
            print(f"reduced run of {conf}: {seconds:.1f} s wall, {_children_cpu() - cpu:.1f} s CPU")
            done[conf] = (root, root / "exp" / f"{Path(conf).stem}_{TAG}", proc, seconds)
        return done[conf]

    return run

@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    small models run faster on one thread and do not fight other jobs for the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_disk(tmp_path):
    """A factory for a size-limited filesystem (a tmpfs mount): ``small_disk(kib)`` returns an empty
    folder on it, unmounted at the end of the test. Needs root (a mount); skips with the reason
    otherwise, so a full-disk test never runs on the real disk."""
    mounts = []

    def make(kib: int) -> Path:
        if not sys.platform.startswith("linux") or os.geteuid() != 0:
            pytest.skip("a full-disk test mounts a size-limited tmpfs, which needs root on Linux")
        point = tmp_path / f"small_disk_{len(mounts)}"
        point.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(kib)}k", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs for the full-disk test: {proc.stderr.strip()}")
        mounts.append(point)
        return point

    yield make
    for point in reversed(mounts):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
