#!/usr/bin/env python
"""Recipe step: prepare corpora into datafiles and evaluation lists (thin wrapper of
``asteroid_audiosep.data``; every option maps to a function argument, see docs/data.md).

Subcommands:
    prepare_data.py mini OUT [--seed 0 --sample-rate 16000 ...]
    prepare_data.py {audioset,vggsound,audiocaps,clotho,wavcaps,esc50,music} ROOT OUT [...]
    prepare_data.py make-shards DATAFILE OUT [--max-count 1000 --sample-rate 32000]
    prepare_data.py eval-mixtures {audiocaps,clotho,esc50,music,vggsound,voicebank_demand} ROOT OUT [...]
    prepare_data.py check-overlap --train DATAFILE... --eval CSV... [--strict]
Recipe mode (run.sh stage 0):
    prepare_data.py --config exp/<name>/config.yaml [--strict]
    runs :func:`asteroid_audiosep.data.stage.prepare_from_config` (the ``data`` section: the
    mini corpus, ``data.corpora.<name>``, then the training/evaluation overlap check;
    ``--strict`` or ``data.eval_overlap: fail`` fails on an overlap instead of dropping clips).
"""
import argparse
import logging
import sys

from asteroid_audiosep.config import check_required, load_config
from asteroid_audiosep.data import generate_mini_corpus, write_shards
from asteroid_audiosep.data.corpora import EVAL_BUILDERS, PREPARERS, call_with_options
from asteroid_audiosep.data.overlap import eval_list_clips, remove_eval_overlap
from asteroid_audiosep.data.stage import mini_options, prepare_from_config
from asteroid_audiosep.errors import AudioSepError

logger = logging.getLogger("prepare_data")


def _call(function, *args, **options):
    """Call ``function`` with the given (not None) options; one it does not take is an error."""
    return call_with_options(function, args, options, function.__name__)


def _run_config(path: str, strict: bool) -> None:
    cfg = load_config(path)
    check_required(cfg, [0], path)
    prepare_from_config(cfg, strict=strict)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="recipe mode: a resolved recipe config (see above)")
    parser.add_argument("--strict", dest="strict_overlap", action="store_true",
                        help="recipe mode: fail when training clips are evaluation clips")
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
        if name in ("audioset", "vggsound"):
            p.add_argument("--video-dir", dest="video_dir", help="videos when not <root>/video")
            p.add_argument("--extract-audio", dest="extract_audio", action="store_true", default=None,
                           help="extract the videos' audio tracks into OUT/audio first (resumable)")
        p.add_argument("--videos-json", dest="videos_json", help="music: MUSIC_solo_videos.json")
        p.add_argument("--blacklist", nargs="+", help="wavcaps: blacklist files or folders "
                       "(default: json_files/blacklist/ test-set lists)")
        p.add_argument("--no-blacklist", dest="no_blacklist", action="store_true", default=None,
                       help="wavcaps: apply no blacklist (test clips stay in; warned)")
        p.add_argument("--strict", action="store_true", help="fail when a listed clip has no audio")

    p = sub.add_parser("make-shards", help="pack a datafile into webdataset tar shards")
    p.add_argument("datafile")
    p.add_argument("out")
    p.add_argument("--max-count", dest="max_count", type=int, default=1000)
    p.add_argument("--sample-rate", dest="sample_rate", type=int, help="re-encode at this rate (FLAC)")

    p = sub.add_parser("check-overlap", help="drop training clips that are evaluation clips")
    p.add_argument("--train", nargs="+", required=True, help="training datafiles")
    p.add_argument("--eval", nargs="+", required=True, help="evaluation lists (CSV)")
    p.add_argument("--strict", action="store_true", help="fail instead of dropping")

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
    p.add_argument("--ontology", help="audiocaps: ontology.json (default: in --audioset-root)")
    p.add_argument("--allow-missing-tags", dest="allow_missing_tags", action="store_true",
                   default=None, help="audiocaps: build even when test clips have no tags (warned)")
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = _parser()
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items()
               if k not in ("command", "config", "strict_overlap")}
    try:
        if args.config:
            if args.command:
                parser.error("--config runs the recipe step; give no subcommand with it")
            _run_config(args.config, args.strict_overlap)
        elif args.command == "mini":
            out = options.pop("out")
            options = mini_options(options)
            for name, path in _call(generate_mini_corpus, out, **options).items():
                print(f"{name}: {path}")
        elif args.command in PREPARERS:
            options["skip_missing"] = not options.pop("strict")
            written = _call(PREPARERS[args.command], options.pop("root"), options.pop("out"), **options)
            for name, path in written.items():
                print(f"{name}: {path}")
            logger.info("not yet checked for clips that are also evaluation clips (training refuses them "
                        "until then): run stage 0, or prepare_data.py check-overlap --train %s --eval <lists>",
                        " ".join(map(str, written.values())))
        elif args.command == "check-overlap":
            overlaps = remove_eval_overlap(args.train, {e: eval_list_clips(e) for e in args.eval},
                                           strict=args.strict)
            print(f"{sum(len(o.wavs) for o in overlaps)} training clips were evaluation clips")
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
