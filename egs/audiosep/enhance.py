#!/usr/bin/env python
"""Recipe stage 4: speech enhancement with a text query, scored like the paper's Table IV.

Reads ``enhancement`` from a resolved recipe config: ``list`` (an evaluation list whose
mixtures are the noisy and targets the clean utterances, e.g. Voicebank-DEMAND's test set or
the mini noisy-speech set), ``query`` ("speech"), ``dataset`` (name in the report). Writes the
enhanced wavs to ``<exp>/enhance/<dataset>/wav/`` and per-utterance PESQ, CSIG, CBAK, COVL,
SSNR and STOI, for the noisy input too, to ``<exp>/enhance/<dataset>/scores.csv`` (resumable;
restarted, the old folder moved aside, when the model package changes).

Usage: enhance.py --config exp/<name>/config.yaml [--model PACKAGE]
"""
import argparse
import logging
import sys

import pandas as pd

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.config import data_path, get_value, load_config
from asteroid_audiosep.cpu_memory import retain_freed_memory
from asteroid_audiosep.data.evallist import read_eval_list
from asteroid_audiosep.devices import resolve_device
from asteroid_audiosep.evaluation import enhance_speech
from asteroid_audiosep.experiment import claim_eval_dir, model_package, query_table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--model", help="model package (default: <exp>/best_model.pth)")
    args = parser.parse_args(argv)
    retain_freed_memory()  # the process's allocator choice (see asteroid_audiosep.cpu_memory)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (enhance) %(message)s")
    try:
        cfg = load_config(args.config)
        exp = data_path(cfg, get_value(cfg, "paths.exp_dir"))
        if not get_value(cfg, "enhancement.list"):
            print("enhance.py: no enhancement.list in the config; nothing to do")
            return 0
        package = model_package(exp, args.model)
        claim_eval_dir(exp / "enhance", package)  # scores of another model are moved aside
        model = AudioSep.from_pretrained(str(package)).eval()
        model.to(resolve_device(get_value(cfg, "evaluation.device", "auto")))
        items = read_eval_list(data_path(cfg, get_value(cfg, "enhancement.list")))
        pairs = [{"id": it.id, "noisy": it.mixture, "clean": it.target} for it in items]
        name = str(get_value(cfg, "enhancement.dataset", "speech"))
        out = exp / "enhance" / name
        query = str(get_value(cfg, "enhancement.query", "speech"))
        embeddings = get_value(cfg, "evaluation.query_embeddings")
        embeddings = data_path(cfg, embeddings) if embeddings else None
        csv = enhance_speech(model, pairs, out / "wav", out / "scores.csv", query=query,
                             embed=query_table(model, [query], embeddings).encode_text)
        means = pd.read_csv(csv).drop(columns=["id", "uid", "query"]).groupby("system", sort=False).mean()
        with pd.option_context("display.precision", 2):
            print(means.to_string())
    except AudioSepError as err:
        print(f"enhance.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
