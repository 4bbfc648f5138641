"""How a training run writes: checkpoints by same-folder temp file + fsync + rename, and a writable run folder
checked before any work starts.

Lightning's own save goes through fsspec, which stages the file in the system temp folder and *moves* it: across
file systems that is a copy, so a kill -9 or a full disk during the copy leaves a truncated ``last.ckpt`` (and the
staged file behind in /tmp). :class:`AtomicCheckpointIO` writes beside the target and renames, so a checkpoint
is either the previous complete one or the new complete one.
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from audiogen.artifacts import atomic_write_bytes
from audiogen.errors import ArtifactError


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        atomic_write_bytes(Path(path), buf.getvalue())


def writable_folder(folder: Path, what: str) -> Path:
    """Check, before any work, that ``folder`` can be written: by writing a file in it when it exists (root ignores
    permission bits), else by checking its nearest existing parent. Nothing is created, so a run that then fails on
    its configuration leaves no empty folder. Raises ArtifactError naming the folder and the reason."""
    folder = Path(folder)
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    reason = None
    if not parent.is_dir():
        reason = f"{parent} is not a folder"
    elif parent == folder:
        probe = folder / f".write-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or str(exc)
    elif not os.access(parent, os.W_OK | os.X_OK):
        reason = f"Permission denied in {parent}"
    if reason:
        raise ArtifactError(f"cannot write the {what} {folder} ({reason})", fix="choose a writable location for -o")
    return folder


def write_failure(folder: Path, exc: OSError) -> ArtifactError:
    """The message for a write that failed mid-run (disk full, file too large, folder removed or read-only)."""
    return ArtifactError(f"writing to {folder} failed ({exc.strerror or exc}"
                         f"{': ' + str(exc.filename) if exc.filename else ''})",
                         fix="free disk space (or fix the folder's permissions) and re-run the same command: it "
                             "resumes from the last complete checkpoint")
