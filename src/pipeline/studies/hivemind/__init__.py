"""Hivemind study: are language models' answers to open-ended prompts homogeneous?

Reproduces the Infinity-Chat diversity measures of "Artificial Hivemind" (Jiang et al.,
NeurIPS 2025) at small scale: many sampled responses per prompt from each model of a
population, sentence embeddings, intra-model repetition and inter-model homogeneity against
a random-pair baseline. Modules: specs (every job's spec) → prompts → models → generate →
embed → analysis → figures; each Snakemake rule's script runs one of them through `pipeline.job`.
"""
import os

STUDY = "hivemind"


def hf_job_env() -> None:
    """The environment of a job that loads Hugging Face models; call it before anything imports torch.

    No network (nothing outside is reachable on compute nodes); no tokenizers fork warning; no
    raw tqdm bar from transformers' GGUF loader in the job's log (tqdm reads TQDM_DISABLE once, on
    import, and torch imports it).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
