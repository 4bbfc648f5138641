"""``audiogen info``: what an artifact says about itself."""

from __future__ import annotations

from pathlib import Path

from audiogen.errors import ArtifactError


def describe(path: Path) -> dict:
    path = Path(path)
    if not path.exists() and not path.with_name(path.name + ".partial").exists():
        raise ArtifactError(f"{path} does not exist", fix="pass a latent dataset folder or a checkpoint")
    if path.is_dir() and (path / "meta.json").exists() or path.name == "meta.json" or \
            path.with_name(path.name + ".partial").exists():
        return _dataset(path)
    if path.is_dir() or path.suffix == ".ckpt":
        return _checkpoint(path)
    raise ArtifactError(f"{path} is neither a latent dataset nor an audiogen checkpoint")


def _dataset(path: Path) -> dict:
    from audiogen.latents.dataset import read_meta

    m = read_meta(path)
    s = m["stats"]
    return {
        "kind": "latent dataset", "path": str(path), "format": f"{m['format']} v{m['version']}",
        "encoder": m.get("encoder"), "decoder": m.get("decoder"), "checkpoint": m.get("checkpoint"),
        **({"encoder_info": m["encoder_info"]} if m.get("encoder_info") else {}),
        "sample_rate": m["sample_rate"], "hop": m["hop"], "frame_rate": m["frame_rate"],
        "latent_size": m["latent_size"], "dtype": m["dtype"],
        "files": m["num_files"], "failed": len(m["failed"]), "shards": len(m["shards"]),
        # why each file was left out, and what was wrong with files that were encoded anyway
        "failed_files": [str(e.get("reason", e)) if isinstance(e, dict) else str(e) for e in m["failed"]],
        "warnings": [f"{f.get('source')}: {w}" for f in m["files"] if isinstance(f, dict)
                     for w in (f.get("warnings") or ())],
        "total_seconds": round(m["total_seconds"], 2), "total_frames": m["total_frames"],
        "latent_mean_range": [round(min(s["mean"]), 4), round(max(s["mean"]), 4)],
        "latent_std_range": [round(min(s["std"]), 4), round(max(s["std"]), 4)],
        "latent_min_max": [round(min(s["min"]), 4), round(max(s["max"]), 4)],
        "created_by": m.get("created_by"), "operative_config": m.get("operative_config", ""),
    }


def _checkpoint(path: Path) -> dict:
    from audiogen.artifacts import load_checkpoint

    ck = load_checkpoint(path)
    a = ck["audiogen"]
    n_params = sum(v.numel() for v in ck["state_dict"].values())
    return {
        "kind": f"checkpoint ({a.get('kind', '?')})", "path": ck["path"], "format": f"{a['format']} v{a['version']}",
        "components": a.get("components"), "sample_rate": a.get("sample_rate"), "hop": a.get("hop"),
        "latent_size": a.get("latent_size"), "global_step": a.get("global_step"), "parameters": n_params,
        "created_by": a.get("created_by"), "operative_config": a.get("operative_config", ""),
    }
