"""Priors / latent models: score and sample latent sequences (B, C, L). Step two of the pipeline."""
