"""Paper 4, Why Diffusion Models Don't Memorize: DDPM on subsets of n images, memorisation and quality over training."""
STUDY = "diffusion"
