"""Query embeddings looked up from a file: the training cache and offline tests."""
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch

from ..errors import AudioSepError
from ..fileio import atomic_write
from .base import QueryEncoder, check_texts


class PrecomputedQueryEncoder(QueryEncoder):
    """Looks text queries up in a table of precomputed embeddings.

    The table is a ``torch.save``'d dict ``{"texts": [...], "embeddings": (N, D) tensor,
    "source": encoder spec}`` (see :meth:`save` and :meth:`from_encoder`).

    Args:
        path: the table file.
        table: alternatively, ``{text: embedding}`` in memory.
        source: spec of the encoder that made the embeddings (kept for provenance).
    """

    def __init__(
        self,
        path: Optional[Union[str, Path]] = None,
        table: Optional[Dict[str, torch.Tensor]] = None,
        source: Optional[dict] = None,
        embed_dim: Optional[int] = None,
    ):
        super().__init__()
        if (path is None) == (table is None):
            raise AudioSepError("give exactly one of `path` or `table` to PrecomputedQueryEncoder")
        self.path = str(path) if path is not None else None
        if path is not None:
            if not Path(path).is_file():
                raise AudioSepError(f"embedding table not found: {path}")
            data = torch.load(path, map_location="cpu", weights_only=True)
            texts, emb = data["texts"], data["embeddings"]
            source = source or data.get("source")
        else:
            texts = list(table)
            emb = torch.stack([torch.as_tensor(table[t]).float() for t in texts]) if texts else None
        if not texts:
            raise AudioSepError("the embedding table is empty")
        self.source = source
        self.index = {t: i for i, t in enumerate(texts)}
        self.register_buffer("embeddings", emb.float(), persistent=False)
        self.embed_dim = int(emb.shape[1])
        if embed_dim is not None and int(embed_dim) != self.embed_dim:
            raise AudioSepError(f"the table has {self.embed_dim}-d embeddings, not {embed_dim}")

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, text: str) -> bool:
        return text in self.index

    def _embed_text(self, texts: List[str]) -> torch.Tensor:
        missing = [t for t in texts if t not in self.index]
        if missing:
            shown = ", ".join(repr(t) for t in missing[:5])
            raise AudioSepError(
                f"{len(missing)} queries are not in the embedding table ({shown}...): "
                "recompute the table with these texts, or use a text encoder"
            )
        return self.embeddings[torch.tensor([self.index[t] for t in texts])]

    def spec(self) -> dict:
        if self.path is None:
            raise AudioSepError("an in-memory embedding table cannot be serialised; save() it first")
        return {"type": "precomputed", "path": self.path, "embed_dim": self.embed_dim}

    def save(self, path: Union[str, Path]) -> Path:
        """Write the table (atomically) and point this encoder at it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        texts = sorted(self.index, key=self.index.get)
        with atomic_write(path, mode=None) as tmp:
            torch.save({"texts": texts, "embeddings": self.embeddings.cpu(), "source": self.source}, tmp)
        self.path = str(path)
        return path

    @classmethod
    def from_encoder(
        cls, encoder: QueryEncoder, texts: Sequence[str], batch_size: int = 256, progress: bool = False
    ) -> "PrecomputedQueryEncoder":
        """Embed ``texts`` once with ``encoder`` (in batches) into an in-memory table."""
        unique = list(dict.fromkeys(check_texts(texts)))
        chunks = range(0, len(unique), batch_size)
        if progress:
            from ..progress import progress as show_progress

            chunks = show_progress(chunks, desc="embedding queries", unit="batch")
        embs = [encoder.encode_text(unique[i : i + batch_size]).float().cpu() for i in chunks]
        emb = torch.cat(embs)
        self = cls(table={t: e for t, e in zip(unique, emb)}, source=_safe_spec(encoder))
        return self


def _safe_spec(encoder: QueryEncoder) -> Optional[dict]:
    try:
        return encoder.spec()
    except Exception:  # an encoder without a serialisable identity
        return None
