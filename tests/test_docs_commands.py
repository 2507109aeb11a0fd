"""Every command shown in README.md and docs/*.md runs, in a reduced form, so the docs cannot rot.

Each fenced ``bash``/``python`` block of a page is one test. The blocks of a page run in order in
one sandbox folder, as a reader following the page would: a sandbox holds links to the
repository's ``run.sh``, ``cmd.sh``, ``conf/``, ``egs/``, ``utils/`` and ``benchmarks/``, the
input files the page names (generated: see :data:`INPUTS`), and a tiny stand-in for the released
model in its cache (``$ASTEROID_AUDIOSEP_CACHE/audiosep-base.pth``), so ``-m audiosep-base`` never
downloads. Commands are reduced by :data:`REDUCTIONS` (a few training steps, a smaller corpus); the blocks
of README.md run in the default suite, the others (and heavy reductions) with ``-m slow``.

Page conventions (checked here):

- A block that cannot run here is preceded by ``<!-- not-run: REASON -->`` (SLURM, real
  corpora, a download, GPUs); the reason is required.
- ``<!-- file: NAME -->`` before a block writes the block's text to ``NAME`` in the sandbox (a
  ``queries.yaml`` the next command reads).
- Every fenced block names its language; ``bash``/``sh``/``python`` blocks are commands, the
  others (``text``, ``yaml``, ``bibtex``...) are not. A command in an indented block is refused.
- Relative links and images resolve to files, and ``#anchors`` to headings.

Blocks that use ``asteroid_audiosep.Separator`` are expected to fail while the package has no
``Separator`` (the separator branch adds it; the xfail condition then turns false and they must
pass).
"""
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND_LANGS = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
OTHER_LANGS = {"text", "yaml", "yml", "bibtex", "json", "csv", "ini", "toml", "markdown", "diff", "console"}
#: Pages other branches are writing now; links to them are expected to fail until they are merged.
PENDING_PAGES = {"docs/demo.md": "the demo branch", "docs/security.md": "the safeload branch"}
#: Top-level entries of the repository that a sandbox links to (a reader runs commands from the root).
LINKED = ["run.sh", "cmd.sh", "conf", "egs", "utils", "benchmarks", "setup.cfg", "pyproject.toml",
          "constraints.txt", "asteroid_audiosep", "tests"]

# ------------------------------------------------------------------------------------------
# The reductions: extend this table when a page gains a command that needs one.

#: The default recipe (conf/mini.yaml) shrunk: a smaller 8 kHz corpus, a 2-level ResUNet, 2 steps.
MINI = [
    "--data.mini", "{seed: 0, sample_rate: 8000, clips_per_class: [3, 1, 1], clip_seconds: [1.0, 1.5], speech_pairs: [4, 3]}",
    "--model.channels", "[4, 8]", "--model.pool_sizes", "[[2, 2], [1, 2]]", "--model.bottleneck_channels", "8",
    "--training.max_steps", "2", "--training.val_check_interval", "2", "--training.checkpoint_every_n_steps", "2",
    "--training.batch_size", "4", "--training.log_every_n_steps", "1",
]
#: The picture stream of conf/mini_clip.yaml kept, the corpus and the steps shrunk as in MINI.
MINI_CLIP = [
    "--data.mini", "{seed: 0, sample_rate: 8000, folder: mini_clip, pictures: true, clips_per_class: [3, 1, 1], clip_seconds: [1.0, 1.5], speech_pairs: [4, 3]}",
    *MINI[2:],
]
MINI_CLAP = MINI

#: Pages whose blocks run in the default suite (about 3 min of CPU for README.md); the blocks of
#: the other pages run with ``-m slow`` (stand-in CLAP and CLIP models, benchmarks, training).
DEFAULT_SUITE_PAGES = {"README.md"}


@dataclass
class Reduction:
    """How a documented command runs here: the first entry whose ``pattern`` matches (``re.search``
    on the command, comments removed) applies. ``insert`` goes right after the program name,
    ``append`` at the end (later overrides win in run.sh and egs/ scripts), ``slow`` puts the
    page's block behind ``-m slow``."""

    pattern: str
    insert: List[str] = field(default_factory=list)
    append: List[str] = field(default_factory=list)
    slow: bool = False


REDUCTIONS = [
    Reduction(r"^\./run\.sh\b.*--conf conf/mini_clip\.yaml", ["--skip_setup", "true"], MINI_CLIP, slow=True),
    Reduction(r"^\./run\.sh\b.*--conf conf/mini_clap\.yaml", ["--skip_setup", "true"], MINI_CLAP, slow=True),
    Reduction(r"^\./run\.sh\b", ["--skip_setup", "true"], MINI),
    # The suite itself: lint and collect only (running it here would run this test again).
    Reduction(r"^utils/test\.sh\b", append=["--collect-only", "-q", "tests/test_import.py"]),
    Reduction(r"^python egs/audiosep/train\.py\b.*conf/mini\.yaml", append=MINI[2:]),
    Reduction(r"^python egs/audiosep/prepare_data\.py mini\b",
              append=["--clips-per-class", "2", "1", "1", "--speech-pairs", "2", "2", "--sample-rate", "8000"]),
    Reduction(r"^python benchmarks/bench_gpu\.py\b", append=["--dry-run"], slow=True),
    Reduction(r"^python benchmarks/bench_inference\.py\b",
              append=["--sections", "speed", "seams", "--seconds", "1", "--repeats", "1", "--seam-seconds", "3",
                      "--skip-compile"], slow=True),
    Reduction(r"^python benchmarks/bench_training\.py\b", append=["--steps", "2", "--warmup", "1"], slow=True),
    Reduction(r"^python benchmarks/bench_import\.py\b", append=["--repeats", "1"], slow=True),
    Reduction(r"^python benchmarks/bench_mini_clip\.py\b", slow=True),
    Reduction(r"^python benchmarks/bench_deploy\.py\b", append=["--reduced", "--seconds", "1", "--repeats", "1",
                                                                  "--exporters", "legacy", "--no-streaming"], slow=True),
    # Picture queries need a CLIP model (a random ViT-B-32 is built: tens of seconds).
    Reduction(r"--query-image|--query-video", slow=True),
]

# ------------------------------------------------------------------------------------------
# Inputs a page may name, generated in its sandbox when the page's commands mention them.


def _tone(path: Path, seconds: float = 2.0, rate: int = 22050, channels: int = 1, freq: float = 440.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    wav = 0.3 * np.sin(2 * np.pi * freq * t)[:, None] + 0.05 * rng.standard_normal((t.size, channels))
    sf.write(path, wav.astype("float32"), rate)


def _picture(path: Path):
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 120, 40)).save(path)


def _video(path: Path):
    from asteroid_audiosep.video import write_video

    frames = [np.full((64, 64, 3), 30 * i, dtype=np.uint8) for i in range(8)]
    write_video(path, frames, fps=2)


def _folder(path: Path):
    _tone(path / "a.wav", 1.5, 16000)
    _tone(path / "sub" / "b.flac", 1.0, 44100, channels=2, freq=880.0)


def _released_ckpt(path: Path):
    from helpers import reference_dir

    subprocess.run([sys.executable, str(reference_dir() / "official_checkpoint.py"), str(path)], check=True)


INPUTS = {
    "recording.wav": lambda p: _tone(p, 2.0, 22050, 2),
    "mix.wav": lambda p: _tone(p, 1.5, 16000),
    "x.wav": lambda p: _tone(p, 1.5, 16000, 2),
    "mix.flac": lambda p: _tone(p, 1.5, 44100, 2),
    "park.flac": lambda p: _tone(p, 2.5, 32000),
    "bark.wav": lambda p: _tone(p, 1.0, 16000, freq=700.0),
    "bell1.wav": lambda p: _tone(p, 1.0, 16000, freq=1200.0),
    "bell2.wav": lambda p: _tone(p, 3.0, 16000, freq=1250.0),
    "dog.jpg": _picture,
    "clip.mp4": _video,
    "field_recordings": _folder,
    "recordings": _folder,
    "my_labels.txt": lambda p: p.write_text("dog\nsiren\nrain\n"),
    "audiosep_base_4M_steps.ckpt": _released_ckpt,
}

# ------------------------------------------------------------------------------------------
# Pages -> blocks.

FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)\s*$")
MARKER = re.compile(r"^<!--\s*(not-run|file):\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    page: Path
    line: int           # 1-based line of the opening fence
    lang: str
    text: str
    marker: Optional[Tuple[str, str]]  # ("not-run", reason) or ("file", name)

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def parse_blocks(page: Path) -> List[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3).lower(), i
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        mk = MARKER.match(prev.strip())
        indent = len(m.group(1))
        text = "\n".join(line[indent:] for line in lines[start + 1:j]) + "\n"
        blocks.append(Block(page, start + 1, lang, text, (mk.group(1), mk.group(2)) if mk else None))
        i = j + 1
    return blocks


def commands(block: Block) -> List[str]:
    """The commands of a bash block, one per logical line (continuations joined)."""
    out, current = [], ""
    for line in block.text.splitlines():
        current += line
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip() and not current.strip().startswith("#"):
            out.append(current.strip())
        current = ""
    return out


CONTROL = {"&&", "||", "|", ";", ">", ">>", "<", "2>", "&"}


def reduce_command(command: str) -> Tuple[str, bool]:
    """``command`` as it runs here (comments dropped, the first matching reduction applied), and
    whether it belongs to the slow tier."""
    words = shlex.split(command, comments=True)
    plain = " ".join(words)
    for red in REDUCTIONS:
        if re.search(red.pattern, plain):
            words = words[:1] + red.insert + words[1:] + red.append
            return " ".join(w if w in CONTROL else shlex.quote(w) for w in words), red.slow
    return " ".join(w if w in CONTROL else shlex.quote(w) for w in words), False


def uses_separator(block: Block) -> bool:
    return re.search(r"\bSeparator\(", block.text) is not None


def all_blocks() -> List[Block]:
    return [b for page in PAGES for b in parse_blocks(page)]


def runnable(blocks: List[Block]) -> List[Block]:
    return [b for b in blocks if b.lang in COMMAND_LANGS and b.marker is None]


def _is_slow(block: Block) -> bool:
    if str(block.page.relative_to(REPO)) not in DEFAULT_SUITE_PAGES:
        return True
    return block.lang in ("bash", "sh", "shell") and any(reduce_command(c)[1] for c in commands(block))


def _params():
    import asteroid_audiosep

    params = []
    for b in runnable(all_blocks()):
        marks = [pytest.mark.slow] if _is_slow(b) else []
        if uses_separator(b):
            marks.append(pytest.mark.xfail(
                not hasattr(asteroid_audiosep, "Separator"), strict=True,
                reason="uses asteroid_audiosep.Separator, which the separator branch adds"))
        params.append(pytest.param(b, id=b.id, marks=marks))
    return params


# ------------------------------------------------------------------------------------------
# Sandboxes: one per page, shared by its blocks in order.


def _standin_released(path: Path):
    """A tiny randomly initialised model in the released model's cache slot, with a randomly
    initialised HTSAT-tiny CLAP (text and audio towers, byte-level tokenizer): every query kind
    of a CLAP model works, offline, in seconds."""
    import torch
    from helpers import nontrivial, small_model_args

    from asteroid_audiosep import AudioSep

    encoder = {"type": "clap", "checkpoint": None, "amodel": "HTSAT-tiny", "tokenizer": "byte-level",
               "text_config": dict(num_hidden_layers=1, intermediate_size=128, vocab_size=300),
               "max_length": 32, "seed": 0}
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**small_model_args(condition_dim=512), query_encoder=encoder))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.serialize(), path)


def _standin_clip(path: Path):
    """A tiny model with a randomly initialised CLIP ViT-B-32 (text and picture towers)."""
    import torch
    from helpers import small_model_args

    from asteroid_audiosep import AudioSep

    encoder = {"type": "clip", "model_name": "ViT-B-32", "pretrained": None, "seed": 0}
    torch.manual_seed(0)
    model = AudioSep(**small_model_args(condition_dim=512), query_encoder=encoder)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.serialize(), path)


#: Model files a page may name that no earlier command of the page writes.
STANDIN_MODELS = {
    "exp/mini/best_model.pth": _standin_released,
    "exp/mini_clip_tr05/best_model.pth": _standin_clip,
}


def _page_text_of_commands(page: Path) -> str:
    return "\n".join(b.text for b in runnable(parse_blocks(page)))


def make_sandbox(page: Path, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    _standin_released(root / "cache" / "audiosep-base.pth")
    text = _page_text_of_commands(page)
    for name, make in INPUTS.items():
        if re.search(r"(?<![\w/.-])" + re.escape(name) + r"(?![\w-])", text):
            make(root / name)
    for name, make in STANDIN_MODELS.items():
        if name in text and not any(name.startswith(c) for c in _written_by_page(text)):
            make(root / name)
    return root


def _written_by_page(text: str) -> List[str]:
    """Experiments the page's own run.sh commands write (``exp/<conf>[_<tag>]``)."""
    out = []
    for m in re.finditer(r"\./run\.sh([^\n]*)", text):
        args = m.group(1)
        conf = re.search(r"--conf conf/(\w+)\.yaml", args)
        tag = re.search(r"--tag (\S+)", args)
        out.append(f"exp/{conf.group(1) if conf else 'mini'}{'_' + tag.group(1) if tag else ''}/")
    return out


def _env(sandbox: Path) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep),
        ASTEROID_AUDIOSEP_CACHE=str(sandbox / "cache"),
        VIRTUAL_ENV=sys.prefix,       # utils/test.sh then uses this environment as it is
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
    )
    return env


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory):
    """page -> its sandbox, made when the page's first block runs."""
    made = {}

    def get(page: Path) -> Path:
        if page not in made:
            made[page] = make_sandbox(page, tmp_path_factory.mktemp(page.stem.lower()) / "repo")
        return made[page]

    return get


def run_block(block: Block, sandbox: Path) -> subprocess.CompletedProcess:
    if COMMAND_LANGS[block.lang] == "python":   # from stdin: no file left for ruff to find
        argv, stdin = [sys.executable, "-"], block.text
    else:
        script = "\n".join(["set -euo pipefail"] + [reduce_command(c)[0] for c in commands(block)])
        argv, stdin = ["bash", "-c", script], ""
    return subprocess.run(argv, input=stdin, cwd=sandbox, env=_env(sandbox), capture_output=True, text=True)


def _write_marked_files(block: Block, sandbox: Path):
    """The page's ``file:`` blocks, written into the sandbox (a page may show a file after the
    command that reads it)."""
    for b in parse_blocks(block.page):
        if b.marker and b.marker[0] == "file":
            (sandbox / b.marker[1]).write_text(b.text)


# ------------------------------------------------------------------------------------------
# Tests.


@pytest.mark.parametrize("block", _params())
def test_documented_block_runs(block, sandboxes):
    sandbox = sandboxes(block.page)
    _write_marked_files(block, sandbox)
    proc = run_block(block, sandbox)
    ran = block.text if block.lang == "python" else "\n".join(reduce_command(c)[0] for c in commands(block))
    assert proc.returncode == 0, (
        f"{block.id} failed (exit {proc.returncode}); ran:\n{ran}\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-4000:]}")


def test_every_block_is_run_or_marked():
    problems = []
    for b in all_blocks():
        if b.marker and b.marker[0] == "not-run" and not b.marker[1]:
            problems.append(f"{b.id}: not-run needs a reason")
        elif not b.lang:
            problems.append(f"{b.id}: name the block's language (bash, python; text for output or layouts)")
        elif b.lang not in COMMAND_LANGS and b.lang not in OTHER_LANGS:
            problems.append(f"{b.id}: unknown language {b.lang!r}")
        elif b.marker and b.marker[0] == "not-run" and b.lang not in COMMAND_LANGS:
            problems.append(f"{b.id}: not-run on a {b.lang} block (nothing would run anyway)")
    assert not problems, "\n".join(problems)
    assert runnable(all_blocks()), "no runnable block found"


COMMAND_START = re.compile(r"^( {4,}|\t)(\./run\.sh|python |asteroid-audiosep |pip |utils/|prepare_data\.py )")


def test_no_command_hides_in_an_indented_block():
    """Indented code blocks escape the runner: commands go in fenced blocks."""
    problems = []
    for page in PAGES:
        inside = False
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if FENCE.match(line):
                inside = not inside
            elif not inside and COMMAND_START.match(line):
                problems.append(f"{page.relative_to(REPO)}:{n}: {line.strip()}")
    assert not problems, "put these commands in a fenced bash block:\n" + "\n".join(problems)


def test_reductions_table():
    """The reductions apply as documented: comments dropped, options inserted and appended."""
    cmd, slow = reduce_command("./run.sh --stage 3 --stop_stage 5   # re-evaluate")
    assert cmd.startswith("./run.sh --skip_setup true --stage 3 --stop_stage 5 --data.mini ")
    assert "re-evaluate" not in cmd and not slow
    assert reduce_command("./run.sh --conf conf/mini_clip.yaml --tag tr05")[1]
    assert reduce_command('asteroid-audiosep separate -q "dog barking" x.wav') == (
        "asteroid-audiosep separate -q 'dog barking' x.wav", False)
    block = Block(REPO / "README.md", 1, "bash", "a \\\n  b  # c\n# only a comment\nd\n", None)
    assert commands(block) == ["a    b  # c", "d"]


# ------------------------------------------------------------------------------------------
# Links.

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set:
    out, inside = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside and line.startswith("#"):
            out.add(_slug(line.lstrip("#")))
    return out


def _links():
    found = []
    for page in PAGES:
        inside = False
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if FENCE.match(line):
                inside = not inside
                continue
            if inside:
                continue
            for target in LINK.findall(line):
                if not re.match(r"^[a-z]+:", target):
                    found.append((page, n, target))
    return found


def _link_problem(page: Path, target: str) -> Optional[str]:
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    if not dest.exists():
        return f"{path} does not exist"
    if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
        return f"no heading #{anchor} in {dest.relative_to(REPO)}"
    return None


def _target(page: Path, target: str) -> str:
    """The repository-relative file a link points to ("" for an anchor on the same page)."""
    path = target.partition("#")[0]
    return os.path.relpath((page.parent / path).resolve(), REPO) if path else ""


def test_links_resolve():
    links = _links()
    assert links, "no relative link found"
    problems = [f"{p.relative_to(REPO)}:{n}: {t}: {why}" for p, n, t in links
                if _target(p, t) not in PENDING_PAGES and (why := _link_problem(p, t))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", sorted(PENDING_PAGES))
def test_pages_other_branches_write(page):
    """README links to these pages; they come with other branches (xfail until merged)."""
    links = [(p, n, t) for p, n, t in _links() if _target(p, t) == page]
    assert links, f"nothing links to {page}: drop it from PENDING_PAGES"
    if not (REPO / page).is_file():
        pytest.xfail(f"{page} comes with {PENDING_PAGES[page]}")
    problems = [f"{p.relative_to(REPO)}:{n}: {t}: {why}" for p, n, t in links if (why := _link_problem(p, t))]
    assert not problems, "\n".join(problems)


def test_readme_is_short():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 200
