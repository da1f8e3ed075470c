"""The one character-level tokenizer (the spine transformer's vocabulary for character tasks).

The RLVR task's arithmetic uses a dozen symbols, so characters are the natural unit: every answer
digit is one token, which keeps the checker's view and the model's view aligned. The file is saved
beside the data so that every job decodes with the same table; the hivemind study samples a spine
model of another run through the same file and class.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from pipeline.io import DataError, read_json, write_json

SPECIALS = ("<pad>", "<bos>", "<eos>")


class CharTokenizer:
    """Maps characters to ids after three specials: pad=0, bos=1, eos=2."""

    pad_id, bos_id, eos_id = 0, 1, 2
    stop_ids = (eos_id,)  # what generation stops on (an HF codec may have several)

    def __init__(self, chars: Iterable[str]) -> None:
        chars = sorted(set(chars))
        bad = [c for c in chars if len(c) != 1]
        if bad:
            raise ValueError(f"CharTokenizer takes single characters, got {bad[:5]}")
        self.chars = chars
        self._id = {c: i + len(SPECIALS) for i, c in enumerate(chars)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "CharTokenizer":
        seen: set[str] = set()
        for t in texts:
            seen.update(t)
        return cls(seen)

    @property
    def vocab_size(self) -> int:
        return len(SPECIALS) + len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self._id[c] for c in text]
        except KeyError as exc:
            raise ValueError(f"character {exc.args[0]!r} is not in the character vocabulary {''.join(self.chars)!r}") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids up to the first EOS; pad/bos are dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i >= len(SPECIALS):
                out.append(self.chars[i - len(SPECIALS)])
        return "".join(out)

    def prompt_ids(self, prompt: str) -> list[int]:
        return [self.bos_id, *self.encode(prompt)]

    def target_ids(self, completion: str) -> list[int]:
        return [*self.encode(completion), self.eos_id]

    def save(self, path: str | os.PathLike) -> Path:
        return write_json({"kind": "char", "chars": "".join(self.chars)}, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CharTokenizer":
        data = read_json(path)
        if not isinstance(data, dict) or data.get("kind") != "char" or "chars" not in data:
            raise DataError(f"{path}: not a character tokenizer file (want keys kind='char', chars)")
        return cls(data["chars"])
