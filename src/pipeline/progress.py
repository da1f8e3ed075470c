"""Progress bars that stay quiet in logs: tqdm only when stderr is a terminal."""
from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(it: Iterable[T] | None = None, *, desc: str = "", total: int | None = None,
             initial: int = 0, enabled: bool = True, **kw) -> tqdm:
    """A tqdm bar, disabled when not a TTY or on non-zero ranks."""
    return tqdm(it, desc=desc, total=total, initial=initial, dynamic_ncols=True,
                disable=not (enabled and sys.stderr.isatty()), **kw)
