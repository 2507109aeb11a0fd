"""The training config: defaults (``resources/train_defaults.yaml``), the strict key check, path
expansion, and every check that can fail before training starts (cheapest first)."""
import copy
import difflib
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from ..config import REQUIRED, RESOURCES, expand_path, load_config
from ..errors import AudioSepError
from .hardware import resolve_hardware

DEFAULTS_FILE = RESOURCES / "train_defaults.yaml"
_DEFAULTS: Optional[Dict[str, Any]] = None


def train_defaults() -> Dict[str, Any]:
    """The ``data``, ``model`` and ``training`` defaults (a copy)."""
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = load_config(DEFAULTS_FILE)
    return copy.deepcopy(_DEFAULTS)


def _merge_section(name: str, given: Any, defaults: Dict[str, Any], strict: bool) -> Dict[str, Any]:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise AudioSepError(f"config section '{name}' must be a mapping, got {given!r}")
    unknown = [k for k in given if k not in defaults]
    if strict and unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hints.append(f"{name}.{key}" + (f" (did you mean {name}.{close[0]}?)" if close else ""))
        raise AudioSepError(
            f"unknown config keys {', '.join(hints)}; the {name} section accepts: {', '.join(sorted(defaults))}"
        )
    merged = copy.deepcopy(defaults)
    merged.update(copy.deepcopy(given))
    return merged


def resolve_train_config(cfg: Dict[str, Any], exp_dir: Optional[str] = None) -> Dict[str, Any]:
    """The config with training defaults filled in, unknown model/training keys rejected and
    ``{data_dir}`` / ``{exp_dir}`` expanded in path values.

    Raises:
        AudioSepError: an unknown key (with the closest known one), or no experiment directory.
    """
    cfg = copy.deepcopy(cfg)
    paths = dict(cfg.get("paths") or {})
    if exp_dir is not None:
        paths["exp_dir"] = str(exp_dir)
    if not paths.get("exp_dir"):
        raise AudioSepError("no experiment directory: set paths.exp_dir in the config or pass --exp_dir DIR")
    paths.setdefault("data_dir", "data")
    cfg["paths"] = paths
    defaults = train_defaults()
    cfg["data"] = _merge_section("data", cfg.get("data"), defaults["data"], strict=False)
    cfg["model"] = _merge_section("model", cfg.get("model"), defaults["model"], strict=True)
    cfg["training"] = _merge_section("training", cfg.get("training"), defaults["training"], strict=True)
    for section, key in (("data", "train_datafiles"), ("data", "valid_list"), ("training", "init_from")):
        cfg[section][key] = expand_path(cfg, cfg[section][key])
    if isinstance(cfg["data"]["train_datafiles"], str):
        cfg["data"]["train_datafiles"] = [cfg["data"]["train_datafiles"]]
    return cfg


def _audio_rate(path: str) -> int:
    from ..audio import audio_info

    return int(audio_info(path).samplerate)


def _check_rates(paths: Sequence[str], sample_rate: int, source: str, what: str) -> None:
    """Fail when the audio is at a lower rate than the model (upsampling would train on an
    empty band); a higher rate is resampled down, as the released recipe does."""
    if not paths:
        return
    count = min(len(paths), 8)
    picks = [paths[i * (len(paths) - 1) // max(count - 1, 1)] for i in range(count)]
    for path in picks:
        try:
            rate = _audio_rate(path)
        except Exception:  # unreadable files are reported by the datasets
            continue
        if rate < sample_rate:
            raise AudioSepError(
                f"sample-rate mismatch: data.sample_rate is {sample_rate} Hz but the {what} of {source} is at "
                f"{rate} Hz (e.g. {path}): set data.sample_rate to {rate} (and build the data at the rate you "
                "want the model to run at); audio is only resampled down"
            )


def check_encoder_spec(spec: Any, use_text_ratio: float, query_modality: str = "audio") -> Dict[str, Any]:
    """Validate ``model.query_encoder`` (and what hybrid training needs of it) without building it."""
    from ..encoders import available_query_encoders

    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise AudioSepError(f"model.query_encoder must be a mapping with a 'type', got {spec!r}")
    if spec["type"] not in available_query_encoders():
        raise AudioSepError(
            f"unknown query encoder model.query_encoder.type={spec['type']!r}: set it to one of "
            f"{available_query_encoders()}"
        )
    if query_modality not in ("audio", "image"):
        raise AudioSepError(f"training.query_modality must be audio or image, got {query_modality!r}")
    if use_text_ratio < 1.0 and query_modality == "image" and spec["type"] != "clip":
        raise AudioSepError(
            f"training.use_text_ratio={use_text_ratio} with query_modality image (hybrid text/picture queries) "
            "needs an encoder with an image tower: set model.query_encoder.type: clip, or "
            "training.use_text_ratio: 1.0"
        )
    if use_text_ratio < 1.0 and query_modality == "audio" and spec["type"] != "clap":
        raise AudioSepError(
            f"training.use_text_ratio={use_text_ratio} (hybrid text/audio queries) needs an encoder with an "
            f"audio tower: set model.query_encoder.type: clap, or training.use_text_ratio: 1.0"
        )
    return dict(spec)


def _check_fault_settings(training: Dict[str, Any]) -> None:
    """The settings of docs/reliability.md: a positive timeout, a whole number of steps."""
    timeout = training["collective_timeout_s"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise AudioSepError(f"training.collective_timeout_s must be a positive number of seconds, got {timeout!r}")
    steps = training["max_nonfinite_steps"]
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise AudioSepError(f"training.max_nonfinite_steps must be a whole number >= 0 (0: never stop), got {steps!r}")


def check_config(cfg: Dict[str, Any]):
    """Every check that can fail before training, cheapest first; builds the training set.

    Returns:
        ``(hardware, train_set)``.

    Raises:
        AudioSepError: with a message naming the setting to change.
    """
    from ..data import LASSTrainDataset
    from ..losses import get_loss_func

    data, model, training = cfg["data"], cfg["model"], cfg["training"]
    datafiles = data["train_datafiles"]
    if not datafiles or datafiles == [REQUIRED]:
        raise AudioSepError("data.train_datafiles is not set: list the training datafiles "
                            "(run stage 0 to prepare them)")
    for datafile in datafiles:
        if not Path(datafile).is_file():
            raise AudioSepError(
                f"data.train_datafiles: {datafile} not found: run stage 0 (data preparation) or fix the path"
            )
    from ..data.overlap import check_overlap_recorded
    from ..data.stage import configured_eval_lists

    # a corpus datafile must have passed stage 0's train/evaluation overlap check
    check_overlap_recorded(datafiles, configured_eval_lists(cfg))
    if data["valid_list"] and not Path(data["valid_list"]).is_file():
        raise AudioSepError(
            f"data.valid_list: {data['valid_list']} not found: run stage 1 (validation mixtures), fix the path, "
            "or set it to null to train without validation"
        )
    _check_fault_settings(training)
    sample_rate = data["sample_rate"]
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise AudioSepError(f"data.sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    if model["sample_rate"] not in (None, sample_rate):
        raise AudioSepError(
            f"sample-rate mismatch: model.sample_rate={model['sample_rate']} but data.sample_rate={sample_rate}: "
            "remove model.sample_rate (the model runs at data.sample_rate)"
        )
    check_encoder_spec(model["query_encoder"], float(training["use_text_ratio"]), training["query_modality"])
    get_loss_func(training["loss"])
    for key in ("batch_size", "max_steps", "val_check_interval", "checkpoint_every_n_steps", "val_batch_size"):
        if not isinstance(training[key], int) or training[key] < 1:
            raise AudioSepError(f"training.{key} must be a positive integer, got {training[key]!r}")
    hardware = resolve_hardware(training)
    train_set = LASSTrainDataset(
        datafiles, sample_rate, data["segment_seconds"], seed=training["seed"], skip_missing=data["skip_missing"]
    )
    if training["query_modality"] == "image" and float(training["use_text_ratio"]) < 1.0:
        from .pictures import check_pictures

        train_set.picture_sources = check_pictures(train_set.entries, data["skip_missing"], ", ".join(datafiles))
    per_step = training["batch_size"] * hardware.world_size
    if per_step > len(train_set):
        raise AudioSepError(
            f"training.batch_size={training['batch_size']} on {hardware.world_size} process(es) takes "
            f"{per_step} clips per step but data.train_datafiles list only {len(train_set)}: lower "
            f"training.batch_size to at most {max(len(train_set) // hardware.world_size, 1)}, or add data"
        )
    if per_step < 2:
        raise AudioSepError("mixtures are made within a batch: training.batch_size must be at least 2")
    for datafile in datafiles:
        from ..data import read_datafile

        _check_rates([e["wav"] for e in read_datafile(datafile)], sample_rate, datafile, "training audio")
    if data["valid_list"]:
        from ..data.evallist import read_eval_list

        items = read_eval_list(data["valid_list"])
        _check_rates([str(it.mixture) for it in items], sample_rate, data["valid_list"], "validation audio")
    return hardware, train_set
