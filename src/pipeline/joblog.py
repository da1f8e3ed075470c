"""Send all a `script:` job writes to its Snakemake log, as `shell:` rules do with `> {log} 2>&1`.

Why at the file-descriptor level: DeepSpeed probes its C++ ops by running the compiler, and
torch and tokenizers write from native code; replacing `sys.stderr` alone let that output
reach Snakemake's console (e.g. `ld: cannot find -laio`) instead of the job's log.
"""
from __future__ import annotations

import os
import sys


def to_log(path: str | os.PathLike) -> None:
    """Point this process's stdout and stderr (fds 1 and 2) at `path`, truncating it."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
