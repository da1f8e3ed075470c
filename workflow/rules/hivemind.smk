# Paper 1 — Artificial Hivemind: many responses per open-ended prompt from each model of a
# population (one generation job per model, all its decoding settings), sentence embeddings,
# intra-/inter-model similarity against a random-pair baseline, claims and figures.
# Specs, declared inputs and the population's checks: pipeline.studies.hivemind.specs.
from pipeline.studies.hivemind import specs as hv_specs

HV = study_cfg("hivemind")
HV_DIR = "results/hivemind"
HV_FIGURES = {k: f"{HV_DIR}/figures/{k}.png" for k in ("intra", "heatmap", "projection")}
HV_MODELS = hv_specs.population(config, ENABLED)  # a missing local model stops the DAG build, by name
HV_GENERATIONS = expand(f"{HV_DIR}/generations/{{model}}.parquet", model=sorted(HV_MODELS))


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


rule hivemind:
    input:
        f"{HV_DIR}/claims.parquet",
        *HV_FIGURES.values(),


rule hivemind_prompts:
    input:
        user_data(
            "studies.hivemind.prompts.infinity_chat.path",
            study_cfg("hivemind")["prompts"]["infinity_chat"]["path"],
            lambda wc: hv_specs.prompt_inputs(config),
        ),
    output:
        f"{HV_DIR}/prompts.parquet",
    params:
        spec=as_params(hv_specs.prompts(config)),
    log:
        "logs/hivemind/prompts.log",
    script:
        "../scripts/hivemind/prompts.py"


rule hivemind_generate:
    input:
        prompts=f"{HV_DIR}/prompts.parquet",
        model_files=lambda wc: hv_specs.model_inputs(HV_MODELS[wc.model]),
    output:
        f"{HV_DIR}/generations/{{model}}.parquet",
    params:
        spec=lambda wc: as_params(hv_specs.generate(config, HV_MODELS[wc.model])),
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
        HV_GENERATIONS,
    output:
        f"{HV_DIR}/embeddings.parquet",
    params:
        spec=as_params(hv_specs.embed(config)),
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
        generations=HV_GENERATIONS,
    output:
        intra=f"{HV_DIR}/intra.parquet",
        inter=f"{HV_DIR}/inter.parquet",
        random_pairs=f"{HV_DIR}/random_pairs.parquet",
        summary=f"{HV_DIR}/summary.json",
        claims=f"{HV_DIR}/claims.parquet",
    params:
        spec=as_params(hv_specs.analyse(config)),
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
        generations=HV_GENERATIONS,
    output:
        intra=report(HV_FIGURES["intra"], category="Hivemind", caption="../report/hivemind_intra.rst"),
        heatmap=report(HV_FIGURES["heatmap"], category="Hivemind", caption="../report/hivemind_heatmap.rst"),
        projection=report(HV_FIGURES["projection"], category="Hivemind",
                          caption="../report/hivemind_projection.rst"),
    params:
        spec=as_params(hv_specs.figures(config)),
    log:
        "logs/hivemind/figures.log",
    script:
        "../scripts/hivemind/figures.py"
