# Paper 5 — Does RL really incentivize reasoning beyond the base model? A seeded verifiable
# task; a base (SFT), GRPO/RLOO runs × seeds from it, a larger teacher and students distilled
# from its solutions; n samples per held-out problem for every model; pass@k curves, coverage,
# base perplexity of responses, claims and figures.
from pipeline.models import store as hf_store
from pipeline.studies.rlvr.models import check_teacher as rlvr_check_teacher
from pipeline.studies.rlvr.task import checker_mode
from pipeline.studies.rlvr.task import length_errors as rl_length_errors

RL_CFG = study_cfg("rlvr")
RL_DIR = "results/rlvr"
RL_DATA = {k: f"{RL_DIR}/data/{k}" for k in ("train.parquet", "heldout.parquet", "tokenizer.json")}
RL_FIGURES = {k: f"{RL_DIR}/figures/{k}.png" for k in ("passk", "coverage", "perplexity")}
RL_CHECKER = checker_mode(RL_CFG["task"])
RL_MODELS = (["base", "teacher"]
             + [f"distill-s{s}" for s in RL_CFG["distill"]["seeds"]]
             + [f"{a}-s{s}" for a in RL_CFG["rl"]["algorithms"] for s in RL_CFG["rl"]["seeds"]])

if "rlvr" in ENABLED:
    if RL_CFG["eval"]["n_samples"] < 2 * RL_CFG["eval"]["k_max"]:
        raise ValueError(f"studies.rlvr.eval.n_samples={RL_CFG['eval']['n_samples']} must be at least "
                         f"2·studies.rlvr.eval.k_max={2 * RL_CFG['eval']['k_max']}")
    if RL_CFG["task"]["source"] == "generated" and RL_CFG["distill"]["n_prompts"] > RL_CFG["task"]["n_train"]:
        raise ValueError(f"studies.rlvr.distill.n_prompts={RL_CFG['distill']['n_prompts']} exceeds "
                         f"studies.rlvr.task.n_train={RL_CFG['task']['n_train']}")
    if RL_CFG["task"]["source"] == "file" and not RL_CFG["task"]["path"]:
        raise ValueError("studies.rlvr.task.source is 'file' but studies.rlvr.task.path is null")
    rlvr_check_teacher(RL_CFG["model"], RL_CFG["teacher"]["model"])
    for key, m in (("studies.rlvr.model", RL_CFG["model"]), ("studies.rlvr.teacher.model", RL_CFG["teacher"]["model"])):
        if m["kind"] == "hf":
            hf_store.resolve(m["path"])  # a missing model stops the DAG build, by path
            if m["chat_template"]:
                hf_store.check_chat_template(m["path"], f"{key}.chat_template")
    if rl_length_errors(RL_CFG):
        raise ValueError("; ".join(rl_length_errors(RL_CFG)))


wildcard_constraints:
    rlvr_algo="|".join(RL_CFG["rl"]["algorithms"]) or "none",
    rlvr_model=r"base|teacher|distill-s\d+|[a-z]+-s\d+",


def rlvr_model_dir(name):
    return f"{RL_DIR}/models/{name}"


def rlvr_model_files(name):
    return {"spec": f"{rlvr_model_dir(name)}/model.json", "weights": f"{rlvr_model_dir(name)}/weights/final.pt"}


def rlvr_common(name, block, seed, rule):
    """The part of every training spec that is not specific to SFT or RL."""
    return {"out_dir": rlvr_model_dir(name), "train": RL_CFG[block]["train"], "seed": int(seed),
            "tokenizer": RL_DATA["tokenizer.json"], "rule": rule, "config_key": f"studies.rlvr.{block}.train",
            "device": DEVICE, "wildcards": {"model": name}}


def rlvr_sft_spec(name, block, seed, model_cfg=None, init=None, data=RL_DATA["train.parquet"]):
    """SFT from a fresh `model_cfg` (base, teacher) or from a trained model directory (students)."""
    spec = rlvr_common(name, block, seed, block)
    spec.update(data=data, target_key="target", init=init, model=model_cfg)
    return spec


def rlvr_eval_resources():
    gpus = RL_CFG["rl"]["train"]["gpus_per_rank"]
    return dict(runtime=60, mem_mb=4000, **({"gres": f"gpu:{gpus}"} if gpus else {}))


def rlvr_rl_spec(wc):
    name = f"{wc.rlvr_algo}-s{wc.seed}"
    spec = rlvr_common(name, "rl", wc.seed, "rl")
    rl = {k: RL_CFG["rl"][k] for k in ("group_size", "temperature", "top_p", "kl_coef")}
    rl.update(algorithm=wc.rlvr_algo, max_new_tokens=RL_CFG["sampling"]["max_new_tokens"])
    spec.update(init=rlvr_model_dir("base"), data=RL_DATA["train.parquet"], checker=RL_CHECKER, rl=rl)
    return spec


rule rlvr:
    input:
        f"{RL_DIR}/claims.parquet",
        *RL_FIGURES.values(),


def rlvr_task_files(wc):
    """The user's task files (a declared input: editing them re-runs everything downstream)."""
    t = RL_CFG["task"]
    return [p for p in (t["path"], t["heldout_path"]) if p] if t["source"] == "file" else []


rule rlvr_data:
    input:
        rlvr_task_files,
    output:
        train=RL_DATA["train.parquet"],
        heldout=RL_DATA["heldout.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    params:
        task=RL_CFG["task"],
    log:
        "logs/rlvr/data.log",
    script:
        "../scripts/rlvr/data.py"


rule rlvr_base:
    input:  # what SFT reads; the held-out problems are for evaluation only
        train=RL_DATA["train.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        **rlvr_model_files("base"),
    params:
        cmd=lambda wc: launch("rlvr_base", wc, "pipeline.studies.rlvr.base:run_sft",
                              rlvr_sft_spec("base", "base", RL_CFG["base"]["seed"], RL_CFG["model"]),
                              ranks(RL_CFG["base"]["train"])),
    threads: lambda wc: THREADS * ranks(RL_CFG["base"]["train"])
    resources:
        **train_resources(RL_CFG["base"]["train"]),
    log:
        "logs/rlvr/base.log",
    shell:
        "{params.cmd} > {log:q} 2>&1"


rule rlvr_teacher:
    input:
        train=RL_DATA["train.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        **rlvr_model_files("teacher"),
    params:
        cmd=lambda wc: launch("rlvr_teacher", wc, "pipeline.studies.rlvr.base:run_sft",
                              rlvr_sft_spec("teacher", "teacher", RL_CFG["teacher"]["seed"],
                                            RL_CFG["teacher"]["model"]),
                              ranks(RL_CFG["teacher"]["train"])),
    threads: lambda wc: THREADS * ranks(RL_CFG["teacher"]["train"])
    resources:
        **train_resources(RL_CFG["teacher"]["train"]),
    log:
        "logs/rlvr/teacher.log",
    shell:
        "{params.cmd} > {log:q} 2>&1"


rule rlvr_teacher_data:
    input:
        **rlvr_model_files("teacher"),
        train=RL_DATA["train.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        f"{RL_DIR}/distill/teacher_solutions.parquet",
    params:
        teacher_dir=rlvr_model_dir("teacher"),
        distill={**{k: RL_CFG["distill"][k] for k in ("n_prompts", "samples_per_prompt", "temperature", "top_p",
                                                     "filter_correct")},
                 "seed": RL_CFG["distill"]["data_seed"], "max_new_tokens": RL_CFG["sampling"]["max_new_tokens"]},
        batch_size=RL_CFG["sampling"]["batch_size"],
        checker=RL_CHECKER,
        device=DEVICE,
    threads: THREADS
    log:
        "logs/rlvr/teacher_data.log",
    script:
        "../scripts/rlvr/teacher_data.py"


rule rlvr_distill:
    input:
        **rlvr_model_files("base"),
        data=rules.rlvr_teacher_data.output[0],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        **rlvr_model_files("distill-s{seed}"),
    params:
        cmd=lambda wc: launch("rlvr_distill", wc, "pipeline.studies.rlvr.base:run_sft",
                              rlvr_sft_spec(f"distill-s{wc.seed}", "distill", wc.seed, init=rlvr_model_dir("base"),
                                            data=rules.rlvr_teacher_data.output[0]),
                              ranks(RL_CFG["distill"]["train"])),
    threads: lambda wc: THREADS * ranks(RL_CFG["distill"]["train"])
    resources:
        **train_resources(RL_CFG["distill"]["train"]),
    log:
        "logs/rlvr/distill_s{seed}.log",
    shell:
        "{params.cmd} > {log:q} 2>&1"


rule rlvr_rl:
    input:
        **rlvr_model_files("base"),
        train=RL_DATA["train.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        **rlvr_model_files("{rlvr_algo}-s{seed}"),
    params:
        cmd=lambda wc: launch("rlvr_rl", wc, "pipeline.studies.rlvr.rl:run_rl", rlvr_rl_spec(wc), ranks(RL_CFG["rl"]["train"])),
    threads: lambda wc: THREADS * ranks(RL_CFG["rl"]["train"])
    resources:
        **train_resources(RL_CFG["rl"]["train"]),
    log:
        "logs/rlvr/rl_{rlvr_algo}_s{seed}.log",
    shell:
        "{params.cmd} > {log:q} 2>&1"


rule rlvr_evaluate:
    input:
        model=lambda wc: rlvr_model_files(wc.rlvr_model)["weights"],
        base=rlvr_model_files("base")["weights"],
        heldout=RL_DATA["heldout.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        counts=f"{RL_DIR}/eval/{{rlvr_model}}/counts.parquet",
        samples=f"{RL_DIR}/eval/{{rlvr_model}}/samples.parquet",
    params:
        model_dir=lambda wc: rlvr_model_dir(wc.rlvr_model),
        base_dir=rlvr_model_dir("base"),
        eval={**RL_CFG["eval"], "max_new_tokens": RL_CFG["sampling"]["max_new_tokens"],
              "batch_size": RL_CFG["sampling"]["batch_size"]},
        checker=RL_CHECKER,
        device=DEVICE,
    threads: THREADS
    resources:
        **rlvr_eval_resources(),
    log:
        "logs/rlvr/evaluate_{rlvr_model}.log",
    script:
        "../scripts/rlvr/evaluate.py"


rule rlvr_analyse:
    input:
        counts=expand(f"{RL_DIR}/eval/{{m}}/counts.parquet", m=RL_MODELS),
        samples=expand(f"{RL_DIR}/eval/{{m}}/samples.parquet", m=RL_MODELS),
    output:
        claims=f"{RL_DIR}/claims.parquet",
        passk=f"{RL_DIR}/passk.parquet",
        coverage=f"{RL_DIR}/coverage.parquet",
        perplexity=f"{RL_DIR}/perplexity.parquet",
    params:
        models=RL_MODELS,
        k_max=RL_CFG["eval"]["k_max"],
        algorithms=RL_CFG["rl"]["algorithms"],
        subset_threshold=RL_CFG["analysis"]["subset_threshold"],
        scale=SCALE,
    log:
        "logs/rlvr/analyse.log",
    script:
        "../scripts/rlvr/analyse.py"


rule rlvr_figures:
    input:
        passk=rules.rlvr_analyse.output.passk,
        coverage=rules.rlvr_analyse.output.coverage,
        perplexity=rules.rlvr_analyse.output.perplexity,
    output:
        passk=report(RL_FIGURES["passk"], category="RLVR", caption="../report/rlvr_passk.rst"),
        coverage=report(RL_FIGURES["coverage"], category="RLVR", caption="../report/rlvr_coverage.rst"),
        perplexity=report(RL_FIGURES["perplexity"], category="RLVR", caption="../report/rlvr_perplexity.rst"),
    params:
        k_max=RL_CFG["eval"]["k_max"],
    log:
        "logs/rlvr/figures.log",
    script:
        "../scripts/rlvr/figures.py"
