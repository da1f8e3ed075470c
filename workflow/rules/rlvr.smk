# Paper 5 — Does RL really incentivize reasoning beyond the base model? A seeded verifiable
# task; a base (SFT), GRPO/RLOO runs × seeds from it, a larger teacher and students distilled
# from its solutions; n samples per held-out problem for every model; pass@k curves, coverage,
# base perplexity of responses, claims and figures. Specs and checks: pipeline.studies.rlvr.specs.
from pipeline.studies.rlvr import specs as rl_specs

RL_CFG = study_cfg("rlvr")
RL_DIR = rl_specs.DIR
RL_DATA = rl_specs.DATA
RL_FIGURES = {k: f"{RL_DIR}/figures/{k}.png" for k in ("passk", "coverage", "perplexity")}
RL_MODELS = rl_specs.model_names(config)

if "rlvr" in ENABLED:
    rl_specs.check(config)  # cross-field checks: a bad combination stops the DAG build, by key


wildcard_constraints:
    rlvr_algo="|".join(RL_CFG["rl"]["algorithms"]) or "none",
    rlvr_model=r"base|teacher|distill-s\d+|[a-z]+-s\d+",


rule rlvr:
    input:
        f"{RL_DIR}/claims.parquet",
        *RL_FIGURES.values(),


rule rlvr_data:
    input:
        rl_specs.task_files(config),
    output:
        train=RL_DATA["train.parquet"],
        heldout=RL_DATA["heldout.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    params:
        spec=as_params(rl_specs.data(config)),
    log:
        "logs/rlvr/data.log",
    script:
        "../scripts/rlvr/data.py"


rule rlvr_base:
    input:  # what SFT reads; the held-out problems are for evaluation only
        train=RL_DATA["train.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        **rl_specs.model_files("base"),
    params:
        cmd=lambda wc: launch("rlvr_base", wc, "pipeline.studies.rlvr.base:run_sft", rl_specs.base(config),
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
        **rl_specs.model_files("teacher"),
    params:
        cmd=lambda wc: launch("rlvr_teacher", wc, "pipeline.studies.rlvr.base:run_sft", rl_specs.teacher(config),
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
        **rl_specs.model_files("teacher"),
        train=RL_DATA["train.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        rl_specs.TEACHER_DATA,
    params:
        spec=as_params(rl_specs.teacher_data(config)),
    threads: THREADS
    log:
        "logs/rlvr/teacher_data.log",
    script:
        "../scripts/rlvr/teacher_data.py"


rule rlvr_distill:
    input:
        **rl_specs.model_files("base"),
        data=rules.rlvr_teacher_data.output[0],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        **rl_specs.model_files("distill-s{seed}"),
    params:
        cmd=lambda wc: launch("rlvr_distill", wc, "pipeline.studies.rlvr.base:run_sft", rl_specs.distill(config, wc),
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
        **rl_specs.model_files("base"),
        train=RL_DATA["train.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        **rl_specs.model_files("{rlvr_algo}-s{seed}"),
    params:
        cmd=lambda wc: launch("rlvr_rl", wc, "pipeline.studies.rlvr.rl:run_rl", rl_specs.rl(config, wc),
                              ranks(RL_CFG["rl"]["train"])),
    threads: lambda wc: THREADS * ranks(RL_CFG["rl"]["train"])
    resources:
        **train_resources(RL_CFG["rl"]["train"]),
    log:
        "logs/rlvr/rl_{rlvr_algo}_s{seed}.log",
    shell:
        "{params.cmd} > {log:q} 2>&1"


rule rlvr_evaluate:
    input:
        model=lambda wc: rl_specs.model_files(wc.rlvr_model)["weights"],
        base=rl_specs.model_files("base")["weights"],
        heldout=RL_DATA["heldout.parquet"],
        tokenizer=RL_DATA["tokenizer.json"],
    output:
        counts=f"{RL_DIR}/eval/{{rlvr_model}}/counts.parquet",
        samples=f"{RL_DIR}/eval/{{rlvr_model}}/samples.parquet",
    params:
        spec=lambda wc: as_params(rl_specs.evaluate(config, wc)),
    threads: THREADS
    resources:
        **eval_resources(RL_CFG["rl"]["train"]["gpus_per_rank"]),
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
        spec=as_params(rl_specs.analyse(config)),
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
        spec=as_params(rl_specs.figures(config)),
    log:
        "logs/rlvr/figures.log",
    script:
        "../scripts/rlvr/figures.py"
