"""RLVR study: does RL with verifiable rewards expand what the base model can solve?

Reproduces Yue et al. (NeurIPS 2025) at small scale: a seeded arithmetic task with an exact
checker, an SFT base, GRPO/RLOO on the shared engine, distillation from a larger teacher,
and pass@k / coverage / perplexity analysis over held-out problems.
"""
STUDY = "rlvr"
