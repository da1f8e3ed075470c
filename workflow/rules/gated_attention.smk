# Paper 2 — gated attention: {vanilla, gated} × {dense, MoE} × seeds at equal tokens, plus a
# learning-rate stress pair and a pair on text beside a synthetic main task; evaluation per run; claims and figures. Specs: pipeline.studies.gated_attention.specs.
from pipeline.studies.gated_attention import specs as ga_specs

GA = study_cfg("gated_attention")
GA_DIR = "results/gated_attention"
GA_RUNS = [f"{ffn}_{gate}_{regime}_s{seed}" for regime, ffn in ga_specs.regimes(GA)
           for gate in ("none", GA["gate"]) for seed in GA["seeds"]]
GA_FIGURES = {k: f"{GA_DIR}/figures/{k}.png" for k in ("loss", "sink", "activation", "context")}
# What a regime's runs train and evaluate on: fresh Bigram-Backcopy sequences (from the corpus's
# bigram counts, no tokenising) or windows of the tokenised corpus.
GA_DATA = lambda wc: ga_specs.data_file(GA, wc.regime, TEXT_DIR)

wildcard_constraints:
    ffn="dense|moe",
    gate="none|headwise|elementwise",
    regime="main|stress|text",


rule gated_attention:
    input:
        f"{GA_DIR}/claims.parquet",
        *GA_FIGURES.values(),


rule ga_train:
    input:
        GA_DATA,
    output:
        weights=f"{GA_DIR}/runs/{{ffn}}_{{gate}}_{{regime}}_s{{seed}}/weights/final.pt",
        metrics=f"{GA_DIR}/runs/{{ffn}}_{{gate}}_{{regime}}_s{{seed}}/metrics.parquet",
    params:
        # a params function of wildcards only: Snakemake leaves one that takes `output` out of its re-run trigger
        cmd=lambda wc: launch("ga_train", wc, "pipeline.studies.gated_attention.train:main",
                              ga_specs.train(config, wc, GA_DATA(wc), GA_DIR), ranks(ga_specs.train_config(GA, wc.regime))),
    threads: lambda wc: THREADS * ranks(GA["train"])
    resources:
        **train_resources(GA["train"]),
    log:
        "logs/gated_attention/train_{ffn}_{gate}_{regime}_s{seed}.log",
    shell:
        "{params.cmd} > {log:q} 2>&1"


rule ga_evaluate:
    input:
        weights=rules.ga_train.output.weights,
        metrics=rules.ga_train.output.metrics,
        data=GA_DATA,
    output:
        f"{GA_DIR}/eval/{{ffn}}_{{gate}}_{{regime}}_s{{seed}}.parquet",
    params:
        spec=lambda wc: as_params(ga_specs.evaluate(config, wc)),
    threads: THREADS
    log:
        "logs/gated_attention/evaluate_{ffn}_{gate}_{regime}_s{seed}.log",
    script:
        "../scripts/gated_attention/evaluate.py"


rule ga_analyse:
    input:
        evals=expand(f"{GA_DIR}/eval/{{run}}.parquet", run=GA_RUNS),
        metrics=expand(f"{GA_DIR}/runs/{{run}}/metrics.parquet", run=GA_RUNS),
    output:
        claims=f"{GA_DIR}/claims.parquet",
        loss=report(GA_FIGURES["loss"], category="Gated attention", caption="../report/ga_loss.rst"),
        sink=report(GA_FIGURES["sink"], category="Gated attention", caption="../report/ga_sink.rst"),
        activation=report(GA_FIGURES["activation"], category="Gated attention", caption="../report/ga_activation.rst"),
        context=report(GA_FIGURES["context"], category="Gated attention", caption="../report/ga_context.rst"),
    params:
        spec=as_params(ga_specs.analyse(config)),
    log:
        "logs/gated_attention/analyse.log",
    script:
        "../scripts/gated_attention/analyse.py"
