"""Embeddings kept on disk, valid for one key: :class:`EmbeddingCache` (load, compute once, save).

Every embedding cache of the package (caption texts, training clips, training pictures, tagging
labels) is one file written atomically as ``{"key": key, ...content}``, read back with
``torch.load(weights_only=True)`` (no code runs on load), and recomputed when it is missing,
damaged or was made for another key (another encoder, another list of texts or files).
"""
import json
import logging
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

import torch

from .fileio import atomic_write

__all__ = ["EmbeddingCache"]

log = logging.getLogger("asteroid_audiosep")

Content = Dict[str, Any]


class EmbeddingCache:
    """One cache file whose content is valid for ``key``.

    Args:
        path: the file.
        key: what made the content (plain types: an encoder spec, texts, file names...);
            stored as canonical JSON and compared on load.
    """

    def __init__(self, path: Union[str, Path], key: Any):
        self.path = Path(path)
        self.key = json.dumps(key, sort_keys=True, default=str)

    def load(self) -> Optional[Content]:
        """The stored content when the file exists, is readable and has this key; else None."""
        if not self.path.is_file():
            return None
        try:
            data = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged or foreign file is recomputed
            log.warning("ignoring the embedding cache %s: %s", self.path, err)
            return None
        if not isinstance(data, dict) or data.get("key") != self.key:
            return None
        return data

    def save(self, content: Content) -> Path:
        """Write ``content`` with the key, atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, mode=None) as tmp:
            torch.save({**content, "key": self.key}, tmp)
        return self.path

    def get_or_compute(self, compute: Callable[[], Content], write: bool = True,
                       valid: Optional[Callable[[Content], bool]] = None) -> Content:
        """The stored content (when it has the key and ``valid(content)``), else ``compute()``,
        saved when ``write`` (e.g. by rank 0 only)."""
        content = self.load()
        if content is not None and (valid is None or valid(content)):
            return content
        content = compute()
        if write:
            self.save(content)
        return content
