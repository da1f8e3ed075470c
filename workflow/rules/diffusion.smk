# Paper 4 — Why Diffusion Models Don't Memorize: DDPM trained on subsets of n images, EMA
# weights exported at log-spaced steps, one evaluation job per (n, seed, step): f_mem, FD in
# a classifier's features, train/held-out loss. Then τ_gen, τ_mem and their scaling with n,
# the analytic random-features model, claims and figures.
from pipeline.studies.diffusion import plan as diffusion_plan

DF = study_cfg("diffusion")
DF_DIR = "results/diffusion"
DF_RF = bool(DF["random_features"]["enabled"])
DF_FIGURES = {k: f"{DF_DIR}/figures/{k}.png"
              for k in ("fmem_steps", "fmem_steps_per_n", "timescales", "quality", "samples")
              + (("rf",) if DF_RF else ())}
DF_GRID_N = DF["figures"]["grid_n"] or min(DF["sizes"])
DF_GRID_SEED = DF["seeds"][0]

if "diffusion" in ENABLED:
    if DF_GRID_N not in DF["sizes"]:
        raise ValueError(f"studies.diffusion.figures.grid_n={DF_GRID_N} is not one of studies.diffusion.sizes {DF['sizes']}")
    if len(set(DF["sizes"])) != len(DF["sizes"]) or len(set(DF["seeds"])) != len(DF["seeds"]):
        raise ValueError("studies.diffusion.sizes and studies.diffusion.seeds must not repeat values")


wildcard_constraints:
    df_n=r"\d+",
    df_step=r"\d+",


def df_run_dir(n, seed):
    return f"{DF_DIR}/runs/n{n}/s{seed}"


def df_subset(n, seed):
    return f"{DF_DIR}/data/subsets/n{n}_s{seed}.parquet"


def df_eval_row(n, seed, step):
    return f"{DF_DIR}/eval/n{n}/s{seed}/step{int(step):08d}.parquet"


def df_samples(n, seed, step):
    return f"{DF_DIR}/samples/n{n}/s{seed}/step{int(step):08d}.parquet"


def df_train_spec(wc):
    return {
        "subset": df_subset(wc.df_n, wc.seed), "out_dir": df_run_dir(wc.df_n, wc.seed),
        "n": int(wc.df_n), "seed": int(wc.seed), "model": DF["model"], "ddpm": DF["ddpm"],
        "train": DF["train"], "checkpoints": DF["checkpoints"],
        "device": DEVICE,
    }


DF_EVAL_CFG = {k: DF[k] for k in ("model", "ddpm", "sampling", "memorization", "loss_points")}
DF_EVAL_CFG["seed"] = DF["eval_seed"]
DF_EVALS = diffusion_plan.evaluations(DF)
DF_GRID_STEPS = diffusion_plan.export_steps(DF_GRID_N, DF)


def df_gpu_resources():
    gpus = DF["train"]["gpus_per_rank"]
    return {"gres": f"gpu:{gpus}"} if gpus else {}


rule diffusion:
    input:
        f"{DF_DIR}/claims.parquet",
        *DF_FIGURES.values(),


def diffusion_image_folder(wc):
    """An image folder is a declared input (adding or removing images re-runs the data job)."""
    d = DF["data"]
    return [d["path"]] if d["source"] == "folder" and d["path"] else []


rule diffusion_data:
    input:
        diffusion_image_folder,
    output:
        f"{DF_DIR}/data/images.parquet",
    params:
        data=DF["data"],
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
        mode=DF["data"]["subsets"],
        data_seed=DF["data"]["seed"],
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
        cfg=DF["features"],
    threads: THREADS
    log:
        "logs/diffusion/features.log",
    script:
        "../scripts/diffusion/features.py"


rule diffusion_train:
    input:
        subset=df_subset("{df_n}", "{seed}"),
    output:
        metrics=f"{DF_DIR}/runs/n{{df_n}}/s{{seed}}/metrics.parquet",
        result=f"{DF_DIR}/runs/n{{df_n}}/s{{seed}}/result.json",
    params:
        cmd=lambda wc: launch("diffusion_train", wc, "pipeline.studies.diffusion.train:main", df_train_spec(wc), ranks(DF["train"])),
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
        subset=df_subset("{df_n}", "{seed}"),
        images=rules.diffusion_data.output[0],
        feature_weights=rules.diffusion_features.output.weights,
        feature_meta=rules.diffusion_features.output.meta,
    output:
        row=f"{DF_DIR}/eval/n{{df_n}}/s{{seed}}/step{{df_step}}.parquet",
        samples=f"{DF_DIR}/samples/n{{df_n}}/s{{seed}}/step{{df_step}}.parquet",
    params:
        weights=lambda wc: f"{df_run_dir(wc.df_n, wc.seed)}/weights/step{wc.df_step}.pt",
        cfg=DF_EVAL_CFG,
        device=DEVICE,
    threads: THREADS
    resources:
        runtime=30,
        mem_mb=4000,
        **df_gpu_resources(),
    log:
        "logs/diffusion/evaluate_n{df_n}_s{seed}_step{df_step}.log",
    script:
        "../scripts/diffusion/evaluate.py"


rule diffusion_random_features:
    output:
        f"{DF_DIR}/rf/curves.parquet",
    params:
        cfg=DF["random_features"],
    threads: THREADS
    log:
        "logs/diffusion/random_features.log",
    script:
        "../scripts/diffusion/random_features.py"


rule diffusion_analyse:
    input:
        rows=[df_eval_row(n, s, step) for n, s, step in DF_EVALS],
        rf=rules.diffusion_random_features.output if DF_RF else [],
    output:
        evals=f"{DF_DIR}/evals.parquet",
        timescales=f"{DF_DIR}/timescales.parquet",
        fits=f"{DF_DIR}/fits.parquet",
        claims=f"{DF_DIR}/claims.parquet",
        **({"rf_timescales": f"{DF_DIR}/rf/timescales.parquet"} if DF_RF else {}),
    params:
        cfg=DF,
        scale=SCALE,
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
        early=df_samples(DF_GRID_N, DF_GRID_SEED, DF_GRID_STEPS[0]),
        late=df_samples(DF_GRID_N, DF_GRID_SEED, DF_GRID_STEPS[-1]),
        subset=df_subset(DF_GRID_N, DF_GRID_SEED),
    output:
        fmem_steps=report(DF_FIGURES["fmem_steps"], category="Diffusion", caption="../report/diffusion_fmem.rst"),
        fmem_steps_per_n=report(DF_FIGURES["fmem_steps_per_n"], category="Diffusion",
                                caption="../report/diffusion_fmem_per_n.rst"),
        timescales=report(DF_FIGURES["timescales"], category="Diffusion", caption="../report/diffusion_timescales.rst"),
        quality=report(DF_FIGURES["quality"], category="Diffusion", caption="../report/diffusion_quality.rst"),
        samples=report(DF_FIGURES["samples"], category="Diffusion", caption="../report/diffusion_samples.rst"),
        **({"rf": report(DF_FIGURES["rf"], category="Diffusion", caption="../report/diffusion_rf.rst")} if DF_RF else {}),
    params:
        cfg=DF,
        early_step=DF_GRID_STEPS[0],
        late_step=DF_GRID_STEPS[-1],
    log:
        "logs/diffusion/figures.log",
    script:
        "../scripts/diffusion/figures.py"
