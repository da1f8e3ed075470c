"""Hivemind study: are language models' answers to open-ended prompts homogeneous?

Reproduces the Infinity-Chat diversity measures of "Artificial Hivemind" (Jiang et al.,
NeurIPS 2025) at small scale: many sampled responses per prompt from each model of a
population, sentence embeddings, intra-model repetition and inter-model homogeneity against
a random-pair baseline. Modules: prompts → models → generate → embed → analysis → figures;
jobs.py holds the entry point of each Snakemake rule.
"""
