"""The model population as configured: entries, decoding settings, and their checks.

Why apart from models.py: the DAG build checks that every model's files exist (so a missing
model is named before any job is submitted) without importing torch or transformers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from pipeline.models import store

KINDS = ("hf", "spine")


class ModelLoadError(RuntimeError):
    """A model of the population is missing or cannot be loaded; the message names it."""


@dataclass(frozen=True)
class Decoding:
    """One sampling setting; top_k 0 disables top-k so top-p / min-p act alone."""

    name: str
    temperature: float = 1.0
    top_p: float = 1.0
    min_p: float = 0.0
    top_k: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"decoding": self.name, "temperature": self.temperature, "top_p": self.top_p,
                "min_p": self.min_p, "top_k": self.top_k}


def decodings(cfg: Mapping[str, Mapping[str, Any]], names: Sequence[str], model: str) -> list[Decoding]:
    """The named decoding settings of one model; unknown names fail naming the model."""
    missing = [n for n in names if n not in cfg]
    if missing:
        raise ModelLoadError(f"model {model!r} asks for undefined decoding settings {missing} "
                             f"(defined: {sorted(cfg)})")
    return [Decoding(name=n, **{k: v for k, v in cfg[n].items() if v is not None}) for n in names]


@dataclass
class Completion:
    text: str
    n_tokens: int
    finished: bool  # ended with EOS rather than at the token budget


class LanguageModel(Protocol):
    name: str

    def complete(self, prompts: Sequence[str], decoding: Decoding, *, max_new_tokens: int,
                 seed: int) -> list[Completion]: ...


def check_paths(models: Sequence[Mapping[str, Any]]) -> None:
    """Raise one ModelLoadError naming every model whose files are missing (or whose tokenizer has
    no chat template when one is asked for); the caller passes the enabled ones (specs.population)."""
    problems = []
    for m in models:
        try:
            if m["kind"] == "hf":
                store.resolve(m["path"])
                if m["chat_template"]:
                    store.check_chat_template(m["path"], f"studies.hivemind.models[{m['name']}].chat_template")
            elif m["kind"] == "spine":
                for key in ("model_dir", "tokenizer"):
                    if not Path(m[key]).exists():
                        raise FileNotFoundError(f"{key} {m[key]} does not exist")
            else:
                raise FileNotFoundError(f"unknown kind {m['kind']!r} (want one of {KINDS})")
        except (FileNotFoundError, KeyError, ValueError) as exc:
            problems.append(f"model {m['name']!r}: {exc}")
    if problems:
        raise ModelLoadError("cannot find models of studies.hivemind.models:\n  " + "\n  ".join(problems))
