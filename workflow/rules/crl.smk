# Paper 3 — 1000 Layer Networks for Self-Supervised RL: contrastive RL (CRL) with residual
# networks of growing depth. One training job per network × seed (the depth sweep plus shallow
# networks widened to the parameter count of deep ones), a final evaluation per run, then the
# summary table, the claims rows and three figures. Specs: pipeline.studies.crl.specs.
from pipeline.studies.crl import specs as crl_specs

CRL = study_cfg("crl")
CRL_DIR = "results/crl"
CRL_NETS = crl_specs.networks(config)
CRL_RUNS = [f"{CRL_DIR}/runs/{net}/seed{seed}" for net in CRL_NETS for seed in CRL["seeds"]]
CRL_FIGURES = {k: f"{CRL_DIR}/figures/{k}.png" for k in ("time_at_goal_vs_depth", "learning_curves", "depth_vs_width")}


wildcard_constraints:
    crl_net="|".join(CRL_NETS) or "none",


rule crl:
    input:
        f"{CRL_DIR}/claims.parquet",
        f"{CRL_DIR}/summary.parquet",
        *CRL_FIGURES.values(),


rule crl_train:
    output:
        weights=f"{CRL_DIR}/runs/{{crl_net}}/seed{{seed}}/final.pt",
        metrics=f"{CRL_DIR}/runs/{{crl_net}}/seed{{seed}}/metrics.parquet",
        run=f"{CRL_DIR}/runs/{{crl_net}}/seed{{seed}}/run.json",
    params:
        # A function of the wildcards alone: Snakemake leaves params that take `output` out of its re-run trigger.
        cmd=lambda wc: launch("crl_train", wc, "pipeline.studies.crl.train:main",
                              crl_specs.train(config, wc, f"{CRL_DIR}/runs/{wc.crl_net}/seed{wc.seed}")),
    threads: THREADS
    resources:
        # one process: CRL trains without DeepSpeed, on one device
        **train_resources({"nodes": 1, "ranks_per_node": 1, "gpus_per_rank": CRL["train"]["gpus_per_rank"]}, runtime=240),
    log:
        "logs/crl/train_{crl_net}_seed{seed}.log",
    shell:
        "{params.cmd} > {log:q} 2>&1"


rule crl_evaluate:
    input:
        weights=rules.crl_train.output.weights,
        run=rules.crl_train.output.run,
    output:
        f"{CRL_DIR}/runs/{{crl_net}}/seed{{seed}}/eval.parquet",
    params:
        spec=lambda wc: as_params(crl_specs.evaluate(config, wc)),
    threads: THREADS
    log:
        "logs/crl/evaluate_{crl_net}_seed{seed}.log",
    script:
        "../scripts/crl/evaluate.py"


rule crl_analyse:
    input:
        evals=[f"{r}/eval.parquet" for r in CRL_RUNS],
        runs=[f"{r}/run.json" for r in CRL_RUNS],
        metrics=[f"{r}/metrics.parquet" for r in CRL_RUNS],
    output:
        summary=f"{CRL_DIR}/summary.parquet",
        claims=f"{CRL_DIR}/claims.parquet",
    params:
        spec=as_params(crl_specs.analyse(config)),
    log:
        "logs/crl/analyse.log",
    script:
        "../scripts/crl/analyse.py"


rule crl_figures:
    input:
        summary=f"{CRL_DIR}/summary.parquet",
        metrics=[f"{r}/metrics.parquet" for r in CRL_RUNS],
    output:
        time_at_goal_vs_depth=report(CRL_FIGURES["time_at_goal_vs_depth"], category="CRL depth",
                                     caption="../report/crl_time_at_goal_vs_depth.rst"),
        learning_curves=report(CRL_FIGURES["learning_curves"], category="CRL depth",
                               caption="../report/crl_learning_curves.rst"),
        depth_vs_width=report(CRL_FIGURES["depth_vs_width"], category="CRL depth",
                              caption="../report/crl_depth_vs_width.rst"),
    log:
        "logs/crl/figures.log",
    script:
        "../scripts/crl/figures.py"
