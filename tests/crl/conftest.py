"""Shared fixtures of the CRL tests: the smoke config block and single-threaded torch."""
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def smoke_block() -> dict:
    return yaml.safe_load((ROOT / "config/presets/smoke.yaml").read_text())["studies"]["crl"]
