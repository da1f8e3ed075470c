"""Experiment pipeline reproducing five NeurIPS 2025 findings."""
