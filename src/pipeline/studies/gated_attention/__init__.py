"""Paper 2, Gated Attention for LLMs: gated vs vanilla attention, dense and MoE, at equal tokens."""
STUDY = "gated_attention"
