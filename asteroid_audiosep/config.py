"""Recipe configuration files: YAML with inheritance, command-line overrides, required values.

A config is a mapping of sections (``paths``, ``data``, ``model``, ``training``, ...). A top-level
``base: other.yaml`` is read first and the file's values are merged over it; the base is looked
up next to the file, then among the package's shipped configs (``asteroid_audiosep/resources``,
which hold ``train_defaults.yaml``: every training key with its default). A value ``???`` is a
required setting that the user must give. Path values may name other ``paths`` entries as
``{data_dir}``, ``{exp_dir}``, ... (:func:`expand_path`).

Values are read by :func:`load_yaml`: safe YAML, except that an unquoted scalar written as a
Python number is a number (YAML 1.1 reads ``2e-3`` and ``1e4``, which lack a dot, as strings).
"""
import copy
import re
from pathlib import Path
from typing import Any, Dict, List, Sequence

import yaml

from .errors import AudioSepError
from .fileio import atomic_write

REQUIRED = "???"
RESOURCES = Path(__file__).resolve().parent / "resources"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading exponent numbers without a dot (``2e-3``) as floats."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_yaml(text):
    """``text`` (a string or a stream) parsed as safe YAML, numbers such as ``2e-3`` as floats."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


class ConfigError(AudioSepError):
    """A configuration problem (a missing file, bad YAML, an unset required value)."""

    def __init__(self, message: str):
        super().__init__(f"config error: {message}")


def merge(base: Dict[str, Any], child: Dict[str, Any]) -> Dict[str, Any]:
    """``child`` deep-merged over ``base`` (mappings merge key by key; other values replace)."""
    out = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _find_base(name: str, including: Path) -> Path:
    base = Path(name).expanduser()
    if base.is_absolute():
        return base
    for folder in (including.parent, RESOURCES):
        if (folder / base).is_file():
            return folder / base
    raise ConfigError(f"{including}: base {name} not found next to it nor in {RESOURCES}")


def load_config(path) -> Dict[str, Any]:
    """Read a YAML config (a mapping), with its ``base:`` chain merged under it.

    Raises:
        ConfigError: missing file, invalid YAML, not a mapping, missing base.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found")
    try:
        with open(path) as f:
            cfg = load_yaml(f) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    if "base" in cfg:
        cfg = merge(load_config(_find_base(str(cfg.pop("base")), path)), cfg)
    return cfg


def save_config(cfg: Dict[str, Any], path) -> Path:
    """Write a config atomically (mode as the umask says)."""
    with atomic_write(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False, default_flow_style=None)
    return Path(path)


def get_value(cfg: Dict[str, Any], dotted: str, default: Any = None) -> Any:
    """``cfg["a"]["b"]`` for ``"a.b"``, or ``default`` when absent."""
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def set_value(cfg: Dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``cfg["a"]["b"] = value`` for ``"a.b"``, creating sections as needed."""
    keys = dotted.split(".")
    node = cfg
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def parse_overrides(argv: Sequence[str]) -> List[tuple]:
    """``["--a.b", "3", "--c=x"]`` -> ``[("a.b", 3), ("c", "x")]`` (values parsed by
    :func:`load_yaml`: ``--training.lr 2e-3`` gives the float 0.002)."""
    pairs, items, i = [], list(argv), 0
    while i < len(items):
        arg = items[i]
        if not arg.startswith("--"):
            raise ConfigError(f"expected --section.key value, got {arg!r}")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(items):
                raise ConfigError(f"option {arg} needs a value")
            key, raw = arg[2:], items[i + 1]
            i += 2
        pairs.append((key, load_yaml(raw) if raw != "" else ""))
    return pairs


def apply_overrides(cfg: Dict[str, Any], argv: Sequence[str]) -> Dict[str, Any]:
    """A copy of ``cfg`` with the command-line overrides applied."""
    cfg = copy.deepcopy(cfg)
    for key, value in parse_overrides(argv):
        set_value(cfg, key, value)
    return cfg


def expand_path(cfg: Dict[str, Any], value: Any) -> Any:
    """Replace ``{name}`` in a path value (or a list of them) by ``paths.<name>``
    (``{data_dir}``, ``{exp_dir}``, ``{benchmark_dir}``, ...)."""
    if isinstance(value, list):
        return [expand_path(cfg, v) for v in value]
    if not isinstance(value, str):
        return value
    for name, path in (get_value(cfg, "paths") or {}).items():
        value = value.replace("{" + name + "}", str(path))
    return value


def data_path(cfg: Dict[str, Any], value: Any):
    """A path value of the config (or a list of them) as :class:`~pathlib.Path`, ``{name}``
    expanded."""
    if isinstance(value, (list, tuple)):
        return [data_path(cfg, v) for v in value]
    return Path(expand_path(cfg, str(value)))


def missing_values(cfg: Any, prefix: str = "") -> List[str]:
    """Dotted names of every required (``???``) value still unset."""
    if isinstance(cfg, dict):
        out = []
        for key, value in cfg.items():
            out += missing_values(value, f"{prefix}{key}.")
        return out
    return [prefix[:-1]] if cfg == REQUIRED else []


#: The first recipe stage that reads each part of the config (the longest matching prefix wins).
STAGE_OF = {"data.corpora": 0, "data.mini": 0, "data.eval_mixtures": 1, "data": 2, "model": 2,
            "training": 2, "import": 2, "evaluation": 3, "paths.benchmark_dir": 3, "paths.dcase_validation_dir": 3,
            "enhancement": 4, "report": 5}


def stage_of(dotted: str) -> int:
    """The stage that needs the value ``dotted`` (0 when unknown: needed from the start)."""
    best = ""
    for prefix in STAGE_OF:
        if (dotted == prefix or dotted.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return STAGE_OF.get(best, 0)


def check_required(cfg: Dict[str, Any], stages: Sequence[int], where: str = "the config") -> None:
    """Fail naming every required (``???``) value that one of ``stages`` reads.

    Raises:
        ConfigError: with one line per value and the option that sets it.
    """
    unset = [k for k in missing_values(cfg) if stage_of(k) in set(stages)]
    if unset:
        lines = "\n".join(f"  {k}: set it with --{k} VALUE (or in the YAML file)" for k in unset)
        raise ConfigError(f"required settings are not set in {where}:\n{lines}")
