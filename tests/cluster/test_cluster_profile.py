"""profiles/slurm/config.yaml: documented, free of site values, accepted by Snakemake and the plugin.

Why: users copy this profile and fill in their site settings; an undocumented key, a
hard-coded account or a key the plugin does not know would bite them on their first run.
These checks need no SLURM (the real-cluster checks are in the other test_cluster_* modules).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from cluster_support import PROFILE, SITE_SETTINGS, VENV_BIN

pytestmark = pytest.mark.xdist_group("cluster")


def test_every_setting_is_commented():
    lines = PROFILE.read_text().splitlines()
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([\w-]+):", line)
        if not m:
            continue
        above = lines[i - 1].strip() if i else ""
        if "#" not in line and not above.startswith("#"):
            undocumented.append(m.group(2))
    assert not undocumented, f"settings without a comment: {undocumented}"


def test_no_site_values_are_hard_coded():
    profile = yaml.safe_load(PROFILE.read_text())
    resources = profile.get("default-resources", {})
    assert "slurm_account" not in resources and "slurm_partition" not in resources
    assert "slurm-no-account" not in profile
    assert "gpu_model" not in resources  # would give every job a GPU
    # The SITE comments name exactly what a user sets (and what the cluster tests override).
    text = PROFILE.read_text()
    for what in ("slurm_account", "slurm_partition", "slurm-status-command", "gpu_model"):
        assert re.search(rf"SITE.*\n(#.*\n)*.*{what}", text), what
    assert set(SITE_SETTINGS) <= {"slurm-status-command", "slurm-no-account", "default-resources"}
    assert set(SITE_SETTINGS["default-resources"]) <= {"slurm_account", "slurm_partition"}


def test_snakemake_and_the_plugin_accept_every_setting(tmp_path):
    (tmp_path / "Snakefile").write_text('rule all:\n    output: "x"\n    shell: "touch {output}"\n')
    out = subprocess.run([sys.executable, "-m", "snakemake", "--profile", str(PROFILE.parent), "-n",
                          "--workflow-profile", "none"],
                         cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "unrecognized arguments" not in out.stderr
