# Paper 1 — Artificial Hivemind: many responses per open-ended prompt from each model of a
# population (one generation job per model, all its decoding settings), sentence embeddings,
# intra-/inter-model similarity against a random-pair baseline, claims and figures.
from pipeline.studies.hivemind.population import check_paths as hv_check_paths

HV = study_cfg("hivemind")
HV_DIR = "results/hivemind"
HV_FIGURES = {k: f"{HV_DIR}/figures/{k}.png" for k in ("intra", "heatmap", "projection")}


def hv_models():
    """Enabled population entries; an entry with `requires: <study>` only when that study runs."""
    return [m for m in HV["models"]
            if m.get("enabled", True) and (not m.get("requires") or m["requires"] in ENABLED)]


HV_MODELS = {m["name"]: m for m in hv_models()}
if len(HV_MODELS) != len(hv_models()):
    raise ValueError("studies.hivemind.models: model names must be unique")
if "hivemind" in ENABLED:
    if not HV_MODELS:
        raise ValueError("studies.hivemind.models: no model is enabled")
    # A missing local model stops the DAG build, by name, before any job runs. Spine models
    # are produced by other studies of this run, so Snakemake checks those as inputs.
    hv_check_paths([m for m in HV_MODELS.values() if m["kind"] == "hf"])


def hv_generations():
    return expand(f"{HV_DIR}/generations/{{model}}.parquet", model=sorted(HV_MODELS))


def hv_model_inputs(wc):
    """Files a spine model needs from the study that trains it (nothing for local HF models)."""
    m = HV_MODELS[wc.model]
    if m["kind"] != "spine":
        return []
    files = [f"{m['model_dir']}/model.json", f"{m['model_dir']}/weights/final.pt", m["tokenizer"]]
    return files + ([m["prompts"]] if m.get("prompts") else [])


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


rule hivemind:
    input:
        f"{HV_DIR}/claims.parquet",
        *HV_FIGURES.values(),


def hv_prompt_files(wc):
    """The Infinity-Chat files, as declared inputs (a path finding none stops the DAG build)."""
    from pipeline.studies.hivemind.prompts import prompt_files

    ic = HV["prompts"]["infinity_chat"]
    return [str(f) for f in prompt_files(ic["path"])] if ic["enabled"] and ic["path"] else []


rule hivemind_prompts:
    input:
        hv_prompt_files,
    output:
        f"{HV_DIR}/prompts.parquet",
    params:
        prompts=HV["prompts"],
        seed=HV["seed"],
    log:
        "logs/hivemind/prompts.log",
    script:
        "../scripts/hivemind/prompts.py"


rule hivemind_generate:
    input:
        prompts=f"{HV_DIR}/prompts.parquet",
        model_files=hv_model_inputs,
    output:
        f"{HV_DIR}/generations/{{model}}.parquet",
    params:
        entry=lambda wc: HV_MODELS[wc.model],
        decoding=HV["decoding"],
        generation=HV["generation"],
        seed=HV["seed"],
        device=DEVICE,
    threads: THREADS
    resources:
        gpu=1 if DEVICE == "cuda" else 0,
        runtime=120,
        mem_mb=8000,
    log:
        "logs/hivemind/generate_{model}.log",
    script:
        "../scripts/hivemind/generate.py"


rule hivemind_embed:
    input:
        hv_generations(),
    output:
        f"{HV_DIR}/embeddings.parquet",
    params:
        embedding=HV["embedding"],
        device=DEVICE,
    threads: THREADS
    resources:
        gpu=1 if DEVICE == "cuda" else 0,
        runtime=60,
        mem_mb=4000,
    log:
        "logs/hivemind/embed.log",
    script:
        "../scripts/hivemind/embed.py"


rule hivemind_analyse:
    input:
        embeddings=f"{HV_DIR}/embeddings.parquet",
        generations=hv_generations(),
    output:
        intra=f"{HV_DIR}/intra.parquet",
        inter=f"{HV_DIR}/inter.parquet",
        random_pairs=f"{HV_DIR}/random_pairs.parquet",
        summary=f"{HV_DIR}/summary.json",
        claims=f"{HV_DIR}/claims.parquet",
    params:
        cfg={**HV["analysis"], "seed": HV["seed"], "rl_pairs": HV["rl_pairs"], "embedder": HV["embedding"]["model"]},
        scale=SCALE,
    log:
        "logs/hivemind/analyse.log",
    script:
        "../scripts/hivemind/analyse.py"


rule hivemind_figures:
    input:
        intra=f"{HV_DIR}/intra.parquet",
        random_pairs=f"{HV_DIR}/random_pairs.parquet",
        summary=f"{HV_DIR}/summary.json",
        embeddings=f"{HV_DIR}/embeddings.parquet",
        generations=hv_generations(),
    output:
        intra=report(HV_FIGURES["intra"], category="Hivemind", caption="../report/hivemind_intra.rst"),
        heatmap=report(HV_FIGURES["heatmap"], category="Hivemind", caption="../report/hivemind_heatmap.rst"),
        projection=report(HV_FIGURES["projection"], category="Hivemind",
                          caption="../report/hivemind_projection.rst"),
    params:
        threshold=HV["analysis"]["threshold"],
        n_prompts=HV["analysis"]["projection_prompts"],
    log:
        "logs/hivemind/figures.log",
    script:
        "../scripts/hivemind/figures.py"
