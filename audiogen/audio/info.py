"""What a file header says (``AudioInfo``), shared by probing (``audio.io``) and manifests (``audio.manifest``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Plausible audio sample rates; others are damaged headers (see probe).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 1_536_000


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`probe` learns from a file header."""

    path: Path
    sample_rate: int
    frames: int
    channels: int
    subtype: str
    warnings: tuple[str, ...] = ()  # what is wrong but still readable (a truncated copy), said once per file

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate
