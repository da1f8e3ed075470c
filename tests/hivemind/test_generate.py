"""Generation from the real SmolLM2-135M-Instruct (GGUF): seeded, batched, every field recorded."""
import pyarrow as pa
import pytest

from pipeline.studies.hivemind import generate as G
from pipeline.studies.hivemind import population as P

pytestmark = pytest.mark.slow

PROMPTS = pa.table({"prompt_id": ["a", "b", "c"], "source": ["project"] * 3, "category": ["creative_writing"] * 3,
                    "prompt": ["Write a haiku about the sea.", "What is the meaning of life?",
                               "Suggest a name for a new coffee shop."]})
DECODINGS = P.decodings({"top_p": {"temperature": 1.0, "top_p": 0.9, "min_p": 0.0, "top_k": 0},
                         "min_p": {"temperature": 1.0, "top_p": 1.0, "min_p": 0.1, "top_k": 0}},
                        ["top_p", "min_p"], "smollm2")


def test_seeded_batched_chat_generation(smollm2):
    """One test on purpose: the GGUF takes ~25 s to load, and xdist would load it per worker."""
    # A fixed seed reproduces every generation; another seed changes them.
    kw = dict(n_samples=2, max_new_tokens=6, batch_size=4, seed=11)
    a = G.sample_responses(smollm2, DECODINGS, PROMPTS, **kw)
    assert a.equals(G.sample_responses(smollm2, DECODINGS, PROMPTS, **kw))
    assert a.num_rows == 3 * 2 * 2 and a.schema.equals(G.GENERATION_SCHEMA)
    c = G.sample_responses(smollm2, DECODINGS, PROMPTS, **{**kw, "seed": 12})
    assert c.column("response").to_pylist() != a.column("response").to_pylist()

    # Every row records its prompt, model, sampling settings and batch seed.
    t = G.sample_responses(smollm2, DECODINGS[:1], PROMPTS, n_samples=3, max_new_tokens=6, batch_size=4, seed=0)
    rows = t.to_pylist()
    assert {r["generator"] for r in rows} == {"smollm2@top_p"}
    assert all(r["temperature"] == 1.0 and r["top_p"] == 0.9 and r["top_k"] == 0 for r in rows)
    assert [r["sample"] for r in rows if r["prompt_id"] == "a"] == [0, 1, 2]
    seeds = [r["seed"] for r in rows]  # 9 generations in batches of 4: three batch seeds, in order
    assert len(set(seeds)) == 3 and seeds == sorted(seeds, key=seeds.index)
    assert all(0 < r["n_tokens"] <= 6 and not r["empty"] for r in rows)
    texts = dict(zip(PROMPTS["prompt_id"].to_pylist(), PROMPTS["prompt"].to_pylist()))
    assert all(r["prompt"] == texts[r["prompt_id"]] for r in rows)

    # Prompts go through the chat template, padded on the left.
    enc = smollm2._encode(["Hi", "Write a long poem about the sea and the sky."])
    assert smollm2.tokenizer.padding_side == "left"
    assert enc["attention_mask"][0, 0] == 0 and enc["attention_mask"][1, 0] == 1
    text = smollm2.tokenizer.decode(enc["input_ids"][1])
    assert "<|im_start|>user" in text and text.rstrip().endswith("<|im_start|>assistant")
