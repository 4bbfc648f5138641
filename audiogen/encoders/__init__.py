"""Encoders: audio (B, 1, T) -> latent frames (B, C, T / hop). Step one of encode -> prior -> decode."""
