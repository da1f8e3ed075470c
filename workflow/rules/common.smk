# Shared helpers: config validation, the enabled studies, how training jobs are launched
# and what they ask a scheduler for.
import json
import os
import shlex

from snakemake.logging import logger

from pipeline.config import as_params, canonical, validate_config
from pipeline.io import is_placeholder
from pipeline.launch import export_runtime
from pipeline.tracking import PARENTS_ENV, end_parents, replay, start_parents

validate_config(config)  # stops the DAG build, naming the offending key
_sorted = canonical(config)  # key order in the YAML files changes no number: keep it out of the params
config.clear()
config.update(_sorted)

STUDIES = ["gated_attention", "diffusion", "crl", "rlvr", "hivemind"]
ENABLED = [s for s in STUDIES if config["studies"].get(s, {}).get("enabled", False)]
SCALE = config["scale"]
TRACKING = config["tracking"]
THREADS = config["train"]["threads"]
DEVICE = config["train"]["device"]

export_runtime(config)  # threads, tracking and the interpreter: by environment, so changing them re-runs nothing


wildcard_constraints:
    seed=r"\d+",


# One MLflow parent run per study for this invocation; every job's run is its child. With tracking.live
# off, jobs journal their runs and they reach MLflow here: at the end, and at the start for any journal a
# killed invocation left.
onstart:
    replay(TRACKING)
    os.environ[PARENTS_ENV] = json.dumps(start_parents(ENABLED + ["data", "claims"], TRACKING))


onsuccess:
    replay(TRACKING)
    end_parents(json.loads(os.environ.get(PARENTS_ENV, "{}")), TRACKING, "FINISHED")


onerror:
    replay(TRACKING)
    end_parents(json.loads(os.environ.get(PARENTS_ENV, "{}")), TRACKING, "FAILED")


_PLACEHOLDERS_SEEN = set()


def user_data(key, value, find):
    """The input function of data the user points at (`find(wc)` raises DataError naming `key`).

    A dry run of a preset whose `key` is still its placeholder (`/path/to/…`) says so once and builds
    the DAG without it, so a preset can be validated before the data is in place; a real run stops.
    """

    def inputs(wc):
        if workflow.dryrun and is_placeholder(value):
            if key not in _PLACEHOLDERS_SEEN:
                _PLACEHOLDERS_SEEN.add(key)
                logger.warning(f"dry run: {key} is still the preset's placeholder {value!r}; a real run stops here")
            return []
        return find(wc)

    return inputs


def study_cfg(study):
    return config["studies"][study]


def launch(rule, wc, target, spec, nproc=1):
    """Shell command running `target(spec)` on nproc ranks as job `rule` with wildcards `wc`; every value is quoted.

    `spec` (a study's typed spec) holds only what changes a result: it is a param, and a change re-runs
    the job. The interpreter and the runtime settings come from PIPELINE_PYTHON / PIPELINE_RUNTIME, set above.
    """
    job = {"rule": rule, "wildcards": dict(wc.items())}
    args = ["-m", "pipeline.launch", "--nproc", str(nproc), target, "--spec", json.dumps(as_params(spec), sort_keys=True),
            "--job", json.dumps(job, sort_keys=True)]
    return f'"$PIPELINE_PYTHON" {shlex.join(args)}'


def train_resources(t, runtime=60, mem_mb=4000):
    """Scheduler resources of a training job from its parallelism keys (nodes, ranks, GPUs).

    `mpi: srun` tells the SLURM executor that the job starts its own tasks (one per rank);
    `--signal` gives the ranks time to checkpoint before the time limit.
    """
    ranks_per_node, nodes = t["ranks_per_node"], t["nodes"]
    gpus = ranks_per_node * t["gpus_per_rank"]
    n = nodes * ranks_per_node
    # The SLURM plugin refuses `tasks` together with `tasks_per_node`, and `mpi` with one task;
    # `mpi` present (even "") runs the rule in the batch step, so the ranks pipeline.launch starts
    # with srun are the only processes --signal reaches.
    res = dict(nodes=nodes, cpus_per_task=THREADS, mpi="srun" if n > 1 else "", runtime=runtime,
               mem_mb=mem_mb * ranks_per_node, slurm_extra="--signal=USR1@180")
    if ranks_per_node > 1:
        res["tasks_per_node"] = ranks_per_node
    else:
        res["tasks"] = n
    if gpus:
        res.update(gres=f"gpu:{gpus}", tasks_per_gpu=0)
    return res


def eval_resources(gpus, runtime=60, mem_mb=4000):
    """Scheduler resources of a one-process job that may use `gpus` GPUs (an evaluation)."""
    return dict(runtime=runtime, mem_mb=mem_mb, **({"gres": f"gpu:{gpus}"} if gpus else {}))


def ranks(t):
    return t["nodes"] * t["ranks_per_node"]
