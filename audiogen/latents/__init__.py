"""Latent datasets: the artifact between the encoder and the prior (format, writer, reader, decode)."""
