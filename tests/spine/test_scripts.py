"""Every `script:` of the workflow compiles and hands its output to its log before anything else.

Why: a script is only run when its rule runs, so a broken one would otherwise surface minutes
into a pipeline run; and a script that imports torch or DeepSpeed before `to_log` lets their
native output reach Snakemake's console instead of the job's log.
"""
import ast
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[2] / "workflow" / "scripts").rglob("*.py"))


def test_there_are_scripts():
    assert len(SCRIPTS) > 20


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_compiles_and_logs_first(path):
    tree = ast.parse(path.read_text(), filename=str(path))  # a SyntaxError fails here, naming the file
    calls = [n for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
    first_call = ast.unparse(calls[0]) if calls else ""
    assert first_call == "to_log(snakemake.log[0])", f"{path}: first call is {first_call!r}"
    before = tree.body[:tree.body.index(calls[0])]
    imported = {a.name for n in before if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert imported <= {"sys", "to_log"}, f"{path} imports {imported - {'sys', 'to_log'}} before to_log"


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
