"""Training: distributed set-up, the DeepSpeed engine, checkpoints."""
