# Paper 4 — Why Diffusion Models Don't Memorize: DDPM trained on subsets of n images, EMA
# weights exported at log-spaced steps, one evaluation job per (n, seed, step): f_mem, FD in
# a classifier's features, train/held-out loss. Then τ_gen, τ_mem and their scaling with n,
# the analytic random-features model, claims and figures. Specs: pipeline.studies.diffusion.specs.
from pipeline.studies.diffusion import plan as diffusion_plan
from pipeline.studies.diffusion import specs as df_specs

DF = study_cfg("diffusion")
DF_DIR = df_specs.DIR
DF_RF = bool(DF["random_features"]["enabled"])
DF_FIGURES = {k: f"{DF_DIR}/figures/{k}.png"
              for k in ("fmem_steps", "fmem_steps_per_n", "timescales", "quality", "samples")
              + (("rf",) if DF_RF else ())}
DF_GRID_N = df_specs.grid_n(DF)
DF_GRID_SEED = DF["seeds"][0]

if "diffusion" in ENABLED:
    df_specs.check(DF)


wildcard_constraints:
    df_n=r"\d+",
    df_step=r"\d+",


DF_EVALS = diffusion_plan.evaluations(DF)
DF_GRID_STEPS = df_specs.grid_steps(DF)


rule diffusion:
    input:
        f"{DF_DIR}/claims.parquet",
        *DF_FIGURES.values(),


rule diffusion_data:
    input:
        user_data("studies.diffusion.data.path", DF["data"]["path"], lambda wc: df_specs.image_inputs(config)),
    output:
        f"{DF_DIR}/data/images.parquet",
    params:
        spec=as_params(df_specs.data(config)),
    log:
        "logs/diffusion/data.log",
    script:
        "../scripts/diffusion/prepare.py"


rule diffusion_subset:
    input:
        rules.diffusion_data.output,
    output:
        f"{DF_DIR}/data/subsets/n{{df_n}}_s{{seed}}.parquet",
    params:
        spec=lambda wc: as_params(df_specs.subset(config, wc)),
    log:
        "logs/diffusion/subset_n{df_n}_s{seed}.log",
    script:
        "../scripts/diffusion/subset.py"


rule diffusion_features:
    input:
        rules.diffusion_data.output,
    output:
        weights=f"{DF_DIR}/features/classifier.pt",
        meta=f"{DF_DIR}/features/classifier.json",
    params:
        spec=as_params(df_specs.features(config)),
    threads: THREADS
    log:
        "logs/diffusion/features.log",
    script:
        "../scripts/diffusion/features.py"


rule diffusion_train:
    input:
        subset=df_specs.subset_path("{df_n}", "{seed}"),
    output:
        metrics=f"{DF_DIR}/runs/n{{df_n}}/s{{seed}}/metrics.parquet",
        result=f"{DF_DIR}/runs/n{{df_n}}/s{{seed}}/result.json",
        weights=directory(df_specs.weights_dir("{df_n}", "{seed}")),
    params:
        # a function of the wildcards alone: Snakemake leaves params that take input or output out of its re-run trigger
        cmd=lambda wc: launch(
            "diffusion_train", wc, "pipeline.studies.diffusion.train:main",
            df_specs.train(config, wc, df_specs.subset_path(wc.df_n, wc.seed), df_specs.run_dir(wc.df_n, wc.seed),
                           df_specs.weights_dir(wc.df_n, wc.seed)), ranks(DF["train"])),
    threads: lambda wc: THREADS * ranks(DF["train"])
    resources:
        **train_resources(DF["train"], runtime=240),
    log:
        "logs/diffusion/train_n{df_n}_s{seed}.log",
    shell:
        "{params.cmd} > {log:q} 2>&1"


rule diffusion_evaluate:
    input:
        result=rules.diffusion_train.output.result,
        weights=rules.diffusion_train.output.weights,
        subset=df_specs.subset_path("{df_n}", "{seed}"),
        images=rules.diffusion_data.output[0],
        feature_weights=rules.diffusion_features.output.weights,
        feature_meta=rules.diffusion_features.output.meta,
    output:
        row=f"{DF_DIR}/eval/n{{df_n}}/s{{seed}}/step{{df_step}}.parquet",
        samples=f"{DF_DIR}/samples/n{{df_n}}/s{{seed}}/step{{df_step}}.parquet",
    params:
        spec=lambda wc: as_params(df_specs.evaluate(config, wc)),
    threads: THREADS
    resources:
        **eval_resources(DF["train"]["gpus_per_rank"], runtime=30),
    log:
        "logs/diffusion/evaluate_n{df_n}_s{seed}_step{df_step}.log",
    script:
        "../scripts/diffusion/evaluate.py"


rule diffusion_random_features:
    output:
        f"{DF_DIR}/rf/curves.parquet",
    params:
        spec=as_params(df_specs.random_features(config)),
    threads: THREADS
    log:
        "logs/diffusion/random_features.log",
    script:
        "../scripts/diffusion/random_features.py"


rule diffusion_analyse:
    input:
        rows=[df_specs.eval_path(n, s, step) for n, s, step in DF_EVALS],
        rf=rules.diffusion_random_features.output if DF_RF else [],
    output:
        evals=f"{DF_DIR}/evals.parquet",
        timescales=f"{DF_DIR}/timescales.parquet",
        fits=f"{DF_DIR}/fits.parquet",
        claims=f"{DF_DIR}/claims.parquet",
        **({"rf_timescales": f"{DF_DIR}/rf/timescales.parquet"} if DF_RF else {}),
    params:
        spec=as_params(df_specs.analyse(config)),
    log:
        "logs/diffusion/analyse.log",
    script:
        "../scripts/diffusion/analyse.py"


rule diffusion_figures:
    input:
        evals=rules.diffusion_analyse.output.evals,
        timescales=rules.diffusion_analyse.output.timescales,
        fits=rules.diffusion_analyse.output.fits,
        rf_timescales=f"{DF_DIR}/rf/timescales.parquet" if DF_RF else [],
        rf_curves=rules.diffusion_random_features.output if DF_RF else [],
        early=df_specs.samples_path(DF_GRID_N, DF_GRID_SEED, DF_GRID_STEPS[0]),
        late=df_specs.samples_path(DF_GRID_N, DF_GRID_SEED, DF_GRID_STEPS[-1]),
        subset=df_specs.subset_path(DF_GRID_N, DF_GRID_SEED),
    output:
        fmem_steps=report(DF_FIGURES["fmem_steps"], category="Diffusion", caption="../report/diffusion_fmem.rst"),
        fmem_steps_per_n=report(DF_FIGURES["fmem_steps_per_n"], category="Diffusion",
                                caption="../report/diffusion_fmem_per_n.rst"),
        timescales=report(DF_FIGURES["timescales"], category="Diffusion", caption="../report/diffusion_timescales.rst"),
        quality=report(DF_FIGURES["quality"], category="Diffusion", caption="../report/diffusion_quality.rst"),
        samples=report(DF_FIGURES["samples"], category="Diffusion", caption="../report/diffusion_samples.rst"),
        **({"rf": report(DF_FIGURES["rf"], category="Diffusion", caption="../report/diffusion_rf.rst")} if DF_RF else {}),
    params:
        spec=as_params(df_specs.figures(config)),
    log:
        "logs/diffusion/figures.log",
    script:
        "../scripts/diffusion/figures.py"
