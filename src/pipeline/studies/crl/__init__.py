"""Contrastive RL with residual networks of growing depth (Wang et al., "1000 Layer Networks
for Self-Supervised RL"): torch-vectorised maze environments, the CRL agent, training,
evaluation, claims and figures."""
STUDY = "crl"
