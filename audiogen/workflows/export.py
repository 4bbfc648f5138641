"""``audiogen export``: one TorchScript file for nn~ (Max/MSP, Pure Data) from an autoencoder run, with a streaming
``prior`` method for a prior run. The modules and their scripting are ``audiogen/export.py``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from audiogen.export import build_export


def export(run: Path, out: Path, window_frames: int | None = None, context_frames: int | None = None,
           ddim_steps: int | None = None, overwrite: bool = False) -> dict:
    """Script and write the export to ``out`` (atomically); returns the record written into it."""
    from audiogen.artifacts import check_output

    check_output(out, overwrite, runs=[run], folder=False)
    module, record = build_export(run, window_frames, context_frames, ddim_steps)
    for p in module.parameters():  # a player runs inference only: outputs must not carry autograd
        p.requires_grad_(False)
    with warnings.catch_warnings():  # torch marks TorchScript deprecated; nn~ still loads only TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(module.eval())
        out = Path(out)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            scripted.save(str(tmp))
            os.replace(tmp, out)
        except (OSError, RuntimeError) as exc:  # torch.jit.save reports an unwritable path as a RuntimeError
            from audiogen.errors import ArtifactError

            raise ArtifactError(f"cannot write the export to {out} ({str(exc).splitlines()[0][:160]})",
                                fix="pass -o a writable file path, e.g. -o model.ts") from None
        finally:
            if tmp.is_file():
                tmp.unlink()
    record["methods"] = list(scripted.get_methods())
    return record

