#!/usr/bin/env python
"""Recipe stage 2 without training: the released checkpoint (or any model package) becomes the
experiment's ``best_model.pth``.

Reads ``import.model`` from a resolved recipe config: a released model's name
(``audiosep-base``: downloaded from the Hugging Face hub and converted), a released ``.ckpt``
file, or an Asteroid model package (see :mod:`asteroid_audiosep.pretrained`).

Usage: import_model.py --config exp/<name>/config.yaml
"""
import argparse
import sys
from pathlib import Path

from asteroid_audiosep import AudioSepError
from asteroid_audiosep.config import get_value, load_config
from asteroid_audiosep.pretrained import import_package


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        out = Path(get_value(cfg, "paths.exp_dir")) / "best_model.pth"
        import_package(get_value(cfg, "import.model"), out)
    except AudioSepError as err:
        print(f"import_model.py: error: {err}", file=sys.stderr)
        return 1
    print(f"model package: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
