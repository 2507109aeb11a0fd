#!/usr/bin/env python
"""Recipe stage 2 without training: the released checkpoint (or any model package) becomes the
experiment's ``best_model.pth``.

Reads ``import.model`` from a resolved recipe config: a released model's name
(``audiosep-base``: downloaded from the Hugging Face hub and converted), a released ``.ckpt``
file, or an Asteroid model package.

Usage: import_model.py --config exp/<name>/config.yaml
"""
import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from config import get_value, load_config  # noqa: E402

from asteroid_audiosep import AudioSepError  # noqa: E402
from asteroid_audiosep.official import KNOWN_MODELS, convert_official, download_official  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    exp = Path(get_value(cfg, "paths.exp_dir"))
    source = get_value(cfg, "import.model")
    out = exp / "best_model.pth"
    try:
        if not source:
            raise AudioSepError("set import.model (audiosep-base, a .ckpt or a model package)")
        if str(source) in KNOWN_MODELS:
            source = download_official(str(source))
        source = Path(source)
        if not source.is_file():
            raise AudioSepError(f"import.model: {source} not found")
        if source.suffix == ".ckpt":
            convert_official(source, out)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(".best_model.pth.tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(out)
    except AudioSepError as err:
        print(f"import_model.py: error: {err}", file=sys.stderr)
        return 1
    print(f"model package: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
