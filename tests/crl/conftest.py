"""Shared fixtures of the CRL tests: the smoke config block and single-threaded torch."""
from pathlib import Path

import pytest
import torch

from pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def smoke_block() -> dict:
    return load_config("config/presets/smoke.yaml")["studies"]["crl"]
