"""The objects a training run starts from: the initial model (fine-tuning), the query-embedding
cache, the model of the config, and the checkpoint to resume from."""
import inspect
import logging
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import AudioSepError
from ..models import AudioSep, AudioSepDP
from .hardware import is_main_process

logger = logging.getLogger("train")

CACHE_FILE = "query_embeddings.pt"


def load_initial_model(init_from: str, exp_dir: Path, sample_rate: int, wait_seconds: float = 600.0,
                       trust: bool = False) -> AudioSep:
    """The model to fine-tune: anything :func:`asteroid_audiosep.pretrained.package_path`
    accepts (a model package, a released checkpoint, a released name). A released checkpoint is
    converted once into ``<exp_dir>/init/`` by rank 0; the other ranks wait for it.

    Args:
        trust: ``training.trust_init_from``: read a file that holds more than the allowed types
            by full unpickling, which runs the code it holds (see
            :mod:`asteroid_audiosep.checkpoints`).

    Raises:
        AudioSepError: nothing of that name, an unreadable or untrusted file, or a model at
            another sample rate than the data.
    """
    from ..hub import KNOWN_MODELS
    from ..pretrained import CHECKPOINT, load_model, package_path, read_model_file

    path = Path(init_from)
    if init_from not in KNOWN_MODELS and not path.is_file():
        raise AudioSepError(
            f"training.init_from: {init_from} not found: give a model package (.pth), a released "
            f"checkpoint (.ckpt) or one of {sorted(KNOWN_MODELS)}"
        )
    convert_dir = Path(exp_dir) / "init"
    if path.is_file() and not is_main_process() and read_model_file(path, trust_checkpoint=trust)[0] == CHECKPOINT:
        converted = convert_dir / f"{path.stem}.pth"
        deadline = time.time() + wait_seconds
        while not converted.is_file() and time.time() < deadline:
            time.sleep(2)
    try:
        package = package_path(init_from, convert_dir=convert_dir, trust_checkpoint=trust)
        model = load_model(package, trust_checkpoint=trust)
    except AudioSepError as err:
        raise type(err)(f"training.init_from: {err}") from err
    if model.sample_rate != sample_rate:
        raise AudioSepError(
            f"sample-rate mismatch: training.init_from is a {int(model.sample_rate)} Hz model but "
            f"data.sample_rate is {sample_rate}: set data.sample_rate to {int(model.sample_rate)}"
        )
    return model


def build_query_cache(encoder_spec: dict, texts: List[str], exp_dir: Path, batch_size: int, write: bool):
    """The caption embedding cache: ``exp_dir/query_embeddings.pt`` when it was made with the
    encoder of the config and covers ``texts``, otherwise computed once (batched) and saved (by
    rank 0 only). The file is also an embedding table (``--query-embeddings``).

    Returns:
        ``(cache, full_encoder_spec)``.
    """
    from ..embedding_cache import EmbeddingCache
    from ..encoders import PrecomputedQueryEncoder, build_query_encoder

    cache = EmbeddingCache(exp_dir / CACHE_FILE, encoder_spec)
    content = cache.load()
    if content is not None and set(texts) <= set(content["texts"]):
        logger.info("query embeddings: %d texts from %s", len(content["texts"]), cache.path)
        return PrecomputedQueryEncoder(path=cache.path), dict(content["source"])
    encoder = build_query_encoder(encoder_spec)
    start = time.perf_counter()
    table = PrecomputedQueryEncoder.from_encoder(encoder, texts, batch_size=batch_size, progress=write)
    logger.info("query embeddings: %d texts embedded in %.1f s", len(table), time.perf_counter() - start)
    if write:
        cache.save({"texts": sorted(table.index, key=table.index.get), "embeddings": table.embeddings.cpu(),
                    "source": table.source})
        table.path = str(cache.path)
    return table, encoder.spec()


def build_model(
    cfg: Dict[str, Any], encoder_spec: dict, embed_dim: int, initial: Optional[AudioSep] = None
) -> AudioSep:
    """The AudioSep model of the config, or ``initial`` (the model of ``training.init_from``)
    checked against the query encoder."""
    model_conf, sample_rate = dict(cfg["model"]), cfg["data"]["sample_rate"]
    if initial is not None:
        model = initial
        check_dprnn(model, model_conf.get("dprnn"))
        if model.condition_dim != embed_dim:
            raise AudioSepError(
                f"the model of training.init_from expects {model.condition_dim}-d queries but the "
                f"{encoder_spec['type']} encoder gives {embed_dim}-d embeddings"
            )
        model.query_encoder_spec = encoder_spec
        return model
    model_conf.pop("query_encoder")
    model_conf.pop("sample_rate", None)
    if model_conf["condition_dim"] is None:
        model_conf["condition_dim"] = embed_dim
    elif model_conf["condition_dim"] != embed_dim:
        raise AudioSepError(
            f"model.condition_dim={model_conf['condition_dim']} but the {encoder_spec['type']} query encoder "
            f"gives {embed_dim}-d embeddings: set model.condition_dim: {embed_dim} (or remove it)"
        )
    model_class = AudioSepDP if model_conf.get("dprnn") else AudioSep
    if not model_conf.get("dprnn"):
        model_conf.pop("dprnn", None)
    accepted = set(inspect.signature(AudioSep.__init__).parameters) - {"self"} | {"dprnn"}
    unknown = set(model_conf) - accepted
    if unknown:
        raise AudioSepError(f"unknown model arguments {sorted(unknown)}; AudioSep accepts {sorted(accepted)}")
    try:
        return model_class(sample_rate=sample_rate, query_encoder=encoder_spec, **model_conf)
    except (ValueError, TypeError) as err:
        raise AudioSepError(f"the model section is not a valid AudioSep: {err}") from err


def check_dprnn(model: AudioSep, wanted: Optional[dict]) -> None:
    """Fail when the config's ``model.dprnn`` block and the ``training.init_from`` model's
    disagree (a plain AudioSep, or another layer count or hidden size)."""
    if not wanted:
        return
    from ..models.audiosep_dp import dprnn_args

    have = model.get_model_args().get("dprnn")
    wanted = dprnn_args(wanted)
    differ = [k for k in ("layers", "hidden", "rnn_layers") if not have or have[k] != wanted[k]]
    if differ:
        got = "no dual-path block" if not have else ", ".join(f"{k}={have[k]}" for k in differ)
        raise AudioSepError(
            f"training.init_from has {got} but model.dprnn asks for "
            + ", ".join(f"{k}={wanted[k]}" for k in differ)
            + ": set model.dprnn to the checkpoint's values (or null to take them from it)"
        )


def find_resume_checkpoint(ckpt_dir: Path) -> Optional[Path]:
    """The newest complete checkpoint of a run: ``last.ckpt``, else the periodic one with the
    highest step (a checkpoint torn by a kill is skipped)."""
    if not ckpt_dir.is_dir():
        return None
    candidates = [ckpt_dir / "last.ckpt"] + sorted(ckpt_dir.glob("step*.ckpt"), reverse=True)
    for path in candidates:
        if path.is_file() and zipfile.is_zipfile(path):
            return path
        if path.is_file():
            logger.warning("skipping the unreadable checkpoint %s", path)
    return None


def check_resumable(exp_dir: Path, cfg: dict) -> None:
    """Fail when ``exp_dir`` holds checkpoints of a run with another model or sample rate."""
    from ..config import load_config

    previous = Path(exp_dir) / "train_config.yaml"
    if not previous.is_file():
        return
    old = load_config(previous)
    if old.get("model") != cfg["model"] or old["data"].get("sample_rate") != cfg["data"]["sample_rate"]:
        raise AudioSepError(
            f"{exp_dir} holds a run with another model or sample rate (see {previous}): use another "
            "experiment directory (--tag / --exp_dir), or delete its checkpoints/ to start over"
        )
