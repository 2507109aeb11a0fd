#!/usr/bin/env python
"""Recipe stage 3: SI-SDR / SDRi (and CLAPScore) of the experiment's model on every evaluation set.

Reads ``evaluation`` from a resolved recipe config; each entry of ``evaluation.sets`` is either
an evaluation list in the common format (``list: <csv>``), a list of recordings without
references (``recordings: <csv>`` in the CLAPScore ``audio_file, text_query`` format, files
relative to ``audio_dir`` or the list's folder; or ``recordings_of: <evaluation list>`` with
``items: N``: that list's mixtures presented as recordings, the list written to
``<exp>/recordings/<name>.csv``), scored by CLAPScore and CLAPScore-i only, or
the released benchmark (``released: <dataset>``, ``csv: <its metadata CSV>``,
``data_dir: <evaluation/data/<dataset>>``), evaluated with each of its ``query_types``: a text
column of the list, or ``audio`` / ``image``, whose column names example files (relative to the
list's folder, or absolute) embedded by the model's encoder. Paths may
hold ``{data_dir}`` / ``{exp_dir}``. Queries are embedded once per set with the model's query
encoder, or looked up in ``evaluation.query_embeddings`` (a table file written by
``PrecomputedQueryEncoder.save``: embeddings computed elsewhere, e.g. on a machine with
the encoder's weights, for an offline cluster).
``evaluation.metrics: [clapscore]`` adds ``clapscore`` and ``clapscore_i`` columns beside SDR to
the sets with references; the CLAP encoder that scores is ``evaluation.score_encoder`` (a spec,
a CLAP checkpoint, ``clap``) or, when null, the model's own (it needs an audio tower; checked
before any separation). A recording that is missing or unreadable fails its item only: the
failure is logged, listed in ``<exp>/eval/<set>/<query_type>.failed.tsv``, and retried by a rerun.
Per-item scores go to ``<exp>/eval/<set>/<query_type>.csv`` as they are computed (a rerun
resumes), the aggregated table (the released rules) to ``<exp>/eval/summary.csv``.
``<exp>/eval/model.sha256`` records which model the scores belong to: when the model package
changes (retrained, another ``--model``), the old ``eval/`` is moved aside to ``eval.<time>/``
and the evaluation starts afresh instead of mixing scores of two models.

Usage: evaluate.py --config exp/<name>/config.yaml [--model PACKAGE]
"""
import argparse
import logging
import sys

import pandas as pd

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.config import check_required, data_path, get_value, load_config
from asteroid_audiosep.cpu_memory import retain_freed_memory
from asteroid_audiosep.devices import resolve_device
from asteroid_audiosep.evaluation import evaluate_separation
from asteroid_audiosep.experiment import claim_eval_dir, model_package, open_eval_set, query_table
from asteroid_audiosep.fileio import atomic_write
from asteroid_audiosep.metrics import aggregate_results
from asteroid_audiosep.reference_free import check_metrics, evaluate_recordings, write_failures
from asteroid_audiosep.threads import set_threads

log = logging.getLogger("evaluate")


def recording_sets(sets, exp, path):
    """``evaluation.sets`` with each ``recordings_of`` entry turned into a ``recordings`` one (its
    list written to ``<exp>/recordings/<name>.csv``); default query types filled in."""
    from asteroid_audiosep.data.recordings import QUERY_COLUMN, recordings_from_eval_list

    resolved = []
    for entry in sets:
        entry = dict(entry)
        if "recordings_of" in entry:
            name = entry.get("name") or "recordings"
            entry["recordings"] = recordings_from_eval_list(
                path(entry.pop("recordings_of")), exp / "recordings" / f"{name}.csv",
                query_column=str(entry.pop("query_column", "label")), items=entry.pop("items", None))
        default = QUERY_COLUMN if "recordings" in entry else "caption"
        entry["query_types"] = entry.get("query_types") or [default]
        resolved.append(entry)
    return resolved


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--model", help="model package (default: <exp>/best_model.pth)")
    args = parser.parse_args(argv)
    retain_freed_memory()  # the process's allocator choice (see asteroid_audiosep.cpu_memory)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (evaluate) %(message)s")
    try:
        cfg = load_config(args.config)
        check_required(cfg, [3], args.config)
        exp = data_path(cfg, get_value(cfg, "paths.exp_dir"))
        package = model_package(exp, args.model)
        device = resolve_device(get_value(cfg, "evaluation.device", "auto"))
        set_threads(get_value(cfg, "evaluation.num_threads"))
        claim_eval_dir(exp / "eval", package)
        model = AudioSep.from_pretrained(str(package)).eval().to(device)
        log.info("model %s on %s (%d parameters)", package, device, sum(p.numel() for p in model.parameters()))
        sets = get_value(cfg, "evaluation.sets") or []
        if not sets:
            raise AudioSepError("evaluation.sets is empty: nothing to evaluate")
        metrics = check_metrics(get_value(cfg, "evaluation.metrics") or [])
        embeddings = get_value(cfg, "evaluation.query_embeddings")
        embeddings = data_path(cfg, embeddings) if embeddings else None
        tables = []

        def path(value):
            return data_path(cfg, value)

        # Every set is opened (its files checked) and the scorer built before any separation starts.
        sets = recording_sets(sets, exp, path)
        opened = [(entry, query_type, open_eval_set(entry, query_type, int(model.sample_rate), path=path))
                  for entry in sets for query_type in entry["query_types"]]
        scorer = None
        if "clapscore" in metrics or any("recordings" in entry for entry in sets):
            from asteroid_audiosep.metrics.clap_score import ClapScorer

            scorer = ClapScorer(get_value(cfg, "evaluation.score_encoder"), model=model)
        failures = []
        for entry, query_type, dataset in opened:
            name = entry.get("name") or entry.get("released")
            base = path(entry["list"]).parent if "list" in entry else path(entry.get("data_dir", "."))
            table = query_table(model, dataset.queries(), embeddings, query_type=query_type, base_dir=base)
            out_dir = exp / "eval" / str(name)
            if "recordings" in entry:
                result = evaluate_recordings(
                    model, dataset, out_dir / f"{query_type}.csv", dataset_name=str(name),
                    query_type=query_type, scorer=scorer, embed=table.encode_text,
                    precision=str(get_value(cfg, "evaluation.precision", "fp32")))
                write_failures(out_dir / f"{query_type}.failed.tsv", result.failures)
                failures += [(name, query_type, f) for f in result.failures]
                tables.append(pd.read_csv(result.csv, keep_default_na=False, na_values=["nan"]))
                continue
            csv = evaluate_separation(
                model, dataset, out_dir / f"{query_type}.csv", dataset_name=str(name),
                query_type=query_type, embed=table.encode_text,
                batch_size=int(get_value(cfg, "evaluation.batch_size", 1)),
                extra_metrics=tuple(get_value(cfg, "evaluation.extra_metrics") or ()),
                estimates_dir=out_dir / "examples" / query_type,
                num_estimates=int(get_value(cfg, "evaluation.num_examples", 2)),
                precision=str(get_value(cfg, "evaluation.precision", "fp32")),
                scorer=scorer if "clapscore" in metrics else None,
            )
            tables.append(pd.read_csv(csv, keep_default_na=False, na_values=["nan"]))
        summary = aggregate_results(pd.concat(tables, ignore_index=True))
        with atomic_write(exp / "eval" / "summary.csv", mode=None) as tmp:
            summary.to_csv(tmp, index=False)
        with pd.option_context("display.width", 120, "display.precision", 2):
            print(summary.to_string(index=False))
        for name, query_type, failure in failures:
            log.warning("failed: %s/%s item %s (%s): %s", name, query_type, failure.id, failure.file, failure.reason)
        if failures:
            log.warning("%d item(s) failed and are not in the scores (listed in eval/<set>/<query_type>.failed.tsv); "
                        "fix or remove their files and rerun stage 3 to score them", len(failures))
    except AudioSepError as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
