#!/usr/bin/env python
"""Recipe step: prepare corpora into datafiles and evaluation lists (thin wrapper of
``asteroid_audiosep.data``; every option maps to a function argument, see docs/data.md).

Subcommands:
    prepare_data.py mini OUT [--seed 0 --sample-rate 16000 ...]
    prepare_data.py {audioset,vggsound,audiocaps,clotho,wavcaps,esc50,music} ROOT OUT [...]
    prepare_data.py make-shards DATAFILE OUT [--max-count 1000 --sample-rate 32000]
    prepare_data.py eval-mixtures {audiocaps,clotho,esc50,music,vggsound,voicebank_demand} ROOT OUT [...]
Recipe mode (run.sh stage 0):
    prepare_data.py --config exp/<name>/config.yaml
    reads ``paths.data_dir`` and the ``data`` section:
        data.mini: {seed, sample_rate, clips_per_class, clip_seconds, speech_pairs, classes}
                   (absent or null: no mini corpus) -> <data_dir>/mini
        data.corpora.<name>: {root: ..., <other arguments of prepare_<name>>} -> <data_dir>/<name>
"""
import argparse
import inspect
import logging
import sys
from pathlib import Path

from asteroid_audiosep.data import generate_mini_corpus, write_shards
from asteroid_audiosep.data.corpora import EVAL_BUILDERS, PREPARERS
from asteroid_audiosep.errors import AudioSepError

logger = logging.getLogger("prepare_data")


def _call(function, *args, **options):
    """Call ``function`` with the options it accepts that were given (not None)."""
    accepted = inspect.signature(function).parameters
    kwargs = {k: v for k, v in options.items() if v is not None and k in accepted}
    return function(*args, **kwargs)


def _run_config(path: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from config import (  # the recipe's YAML reader (egs/audiosep/config.py)
        get_value,
        load_config,
    )

    cfg = load_config(path)
    data_dir = Path(get_value(cfg, "paths.data_dir", "data"))
    mini = get_value(cfg, "data.mini")
    if mini is not None:
        options = {k: tuple(v) if isinstance(v, list) and k != "classes" else v for k, v in dict(mini).items()}
        for name, written in _call(generate_mini_corpus, data_dir / "mini", **options).items():
            logger.info("mini %s: %s", name, written)
    for name, options in (get_value(cfg, "data.corpora") or {}).items():
        if options is None:  # a corpus switched off (e.g. by a config that extends another)
            continue
        if name not in PREPARERS:
            raise AudioSepError(f"unknown corpus data.corpora.{name}; choose among {sorted(PREPARERS)}")
        options = dict(options or {})
        root = options.pop("root", None)
        if not root or root == "???":
            raise AudioSepError(f"set data.corpora.{name}.root to the downloaded corpus (see docs/data.md)")
        _call(PREPARERS[name], root, data_dir / name, **options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="recipe mode: a resolved recipe config (see above)")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("mini", help="synthesise the built-in mini corpus")
    p.add_argument("out")
    p.add_argument("--seed", type=int)
    p.add_argument("--sample-rate", dest="sample_rate", type=int)
    p.add_argument("--clips-per-class", dest="clips_per_class", type=int, nargs=3, metavar=("TRAIN", "VALID", "TEST"))
    p.add_argument("--clip-seconds", dest="clip_seconds", type=float, nargs=2, metavar=("MIN", "MAX"))
    p.add_argument("--speech-pairs", dest="speech_pairs", type=int, nargs=2, metavar=("TRAIN", "TEST"))
    p.add_argument("--classes", nargs="+")

    for name in sorted(PREPARERS):
        p = sub.add_parser(name, help=f"write {name} training datafiles from its published layout")
        p.add_argument("root", help="the downloaded corpus")
        p.add_argument("out", help="folder for the datafiles")
        p.add_argument("--splits", nargs="+")
        p.add_argument("--sources", nargs="+", help="wavcaps: sources to prepare")
        p.add_argument("--audio-dir", dest="audio_dir", help="audio folder when not <root>/audio")
        p.add_argument("--audio-root", dest="audio_root", help="wavcaps: where the audio folders are")
        p.add_argument("--videos-json", dest="videos_json", help="music: MUSIC_solo_videos.json")
        p.add_argument("--strict", action="store_true", help="fail when a listed clip has no audio")

    p = sub.add_parser("make-shards", help="pack a datafile into webdataset tar shards")
    p.add_argument("datafile")
    p.add_argument("out")
    p.add_argument("--max-count", dest="max_count", type=int, default=1000)
    p.add_argument("--sample-rate", dest="sample_rate", type=int, help="re-encode at this rate (FLAC)")

    p = sub.add_parser("eval-mixtures", help="build a corpus's evaluation set with the paper's protocol")
    p.add_argument("corpus", choices=sorted(EVAL_BUILDERS))
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--sample-rate", dest="sample_rate", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--audioset-root", dest="audioset_root", help="audiocaps: AudioSet lists, for the tags")
    p.add_argument("--audio-dir", dest="audio_dir")
    p.add_argument("--num-mixtures", dest="num_mixtures", type=int, help="vggsound")
    p.add_argument("--pairs-per-class", dest="pairs_per_class", type=int, help="esc50")
    p.add_argument("--backgrounds-per-clip", dest="backgrounds_per_clip", type=int, help="audiocaps")
    p.add_argument("--segment-seconds", dest="segment_seconds", type=float, help="music")
    p.add_argument("--segments-per-video", dest="segments_per_video", type=int, help="music")
    p.add_argument("--split", help="voicebank_demand: test, train or train56")
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = _parser()
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    try:
        if args.config:
            if args.command:
                parser.error("--config runs the recipe step; give no subcommand with it")
            _run_config(args.config)
        elif args.command == "mini":
            out = options.pop("out")
            options = {k: tuple(v) if isinstance(v, list) and k != "classes" else v for k, v in options.items()}
            for name, path in _call(generate_mini_corpus, out, **options).items():
                print(f"{name}: {path}")
        elif args.command in PREPARERS:
            options["skip_missing"] = not options.pop("strict")
            for name, path in _call(PREPARERS[args.command], options.pop("root"), options.pop("out"), **options).items():
                print(f"{name}: {path}")
        elif args.command == "make-shards":
            paths = write_shards(args.datafile, args.out, args.max_count, args.sample_rate)
            print(f"{len(paths)} shards in {args.out}")
        elif args.command == "eval-mixtures":
            print(_call(EVAL_BUILDERS[options.pop("corpus")], options.pop("root"), options.pop("out"), **options))
        else:
            parser.print_help()
            return 1
    except AudioSepError as err:
        print(f"prepare_data.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
