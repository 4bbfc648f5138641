"""Decoders: latent frames (B, C, L) -> audio or output-distribution parameters. Step three of the pipeline."""
