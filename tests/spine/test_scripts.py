"""Every `script:` of the workflow compiles and sets itself up through `pipeline.job.start` first.

Why: a script is only run when its rule runs, so a broken one would otherwise surface minutes
into a pipeline run; every job gets its log, threads, device, seed and tracker run from the one
set-up helper; and a script that imports DeepSpeed or transformers before the set-up points its
output at the log lets their native output reach Snakemake's console instead of the job's log.
"""
import ast
import re
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[2] / "workflow" / "scripts").rglob("*.py"))
# What a script may import before its set-up: the set-up itself, its study's name and specs, the standard library.
LIGHT = re.compile(r"(pipeline\.job|pipeline\.io|pipeline\.studies\.\w+(\.specs)?|pathlib|sys|json|time)")


def test_there_are_scripts():
    assert len(SCRIPTS) > 20


def imported(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):  # `from pipeline import job` is pipeline.job; `from x.specs import Y` is x.specs
        return [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" == "pipeline.job" else node.module
                for a in node.names]
    return []


def is_setup(node: ast.stmt) -> bool:
    return isinstance(node, ast.With) and any(
        isinstance(item.context_expr, ast.Call) and ast.unparse(item.context_expr.func) == "job.start"
        and any(k.arg == "snakemake" for k in item.context_expr.keywords) for item in node.items)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_compiles_and_sets_up_through_pipeline_job_first(path):
    tree = ast.parse(path.read_text(), filename=str(path))  # a SyntaxError fails here, naming the file
    setups = [n for n in tree.body if is_setup(n)]
    assert setups, f"{path}: no top-level `with job.start(..., snakemake=snakemake)`"
    heavy = [m for n in tree.body[:tree.body.index(setups[0])] for m in imported(n) if not LIGHT.fullmatch(m)]
    assert not heavy, f"{path} imports {heavy} before its set-up (move them inside the `with job.start` block)"


def test_to_log_captures_native_writes_and_child_processes(tmp_path):
    """What a child process or C code writes to fds 1 and 2 lands in the log."""
    import subprocess
    import sys

    log = tmp_path / "job.log"
    code = ("import os, subprocess, sys; from pipeline.joblog import to_log; to_log(sys.argv[1]); "
            "print('py-out'); print('py-err', file=sys.stderr); os.write(2, b'native-err\\n'); "
            "subprocess.run(['sh', '-c', 'echo child-out; echo child-err >&2'], check=True)")
    out = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True, text=True, check=True)
    assert out.stdout == "" and out.stderr == ""
    assert set(log.read_text().split()) == {"py-out", "py-err", "native-err", "child-out", "child-err"}
