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
    from audiogen.latents.record import LatentRecord

    m = read_meta(path)
    r = LatentRecord.from_meta(m, path)
    s = r.stats
    return {
        "kind": "latent dataset", "path": str(path), "format": f"{m['format']} v{m['version']}",
        **_record(r),
        **({"encoder_info": m["encoder_info"]} if m.get("encoder_info") else {}),
        "dtype": r.dtype,
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


def _record(r) -> dict:
    """The hand-off record's fields as ``info`` shows them."""
    ae = r.autoencoder
    return {"sample_rate": r.sample_rate, "hop": r.hop,
            "frame_rate": round(r.frame_rate, 4) if r.frame_rate else None, "latent_size": r.latent_size,
            "autoencoder": f"{ae.names} [{ae.kind}]" if ae else None,
            **({"encoder_mode": ae.encoder_mode} if ae and ae.encoder_mode else {}),
            **({"latency_samples": ae.latency} if ae and ae.latency is not None else {}),
            **({"plugins": sorted({f"{p['plugin']} {p['version']}" for p in ae.components.values()
                                   if isinstance(p, dict)})} if ae and ae.components else {})}


def _checkpoint(path: Path) -> dict:
    from audiogen.artifacts import load_checkpoint

    ck = load_checkpoint(path)
    a = ck["audiogen"]
    n_params = sum(v.numel() for v in ck["state_dict"].values())
    out = {
        "kind": f"checkpoint ({a.get('kind', '?')})", "path": ck["path"], "format": f"{a['format']} v{a['version']}",
        "components": a.get("components"), "sample_rate": a.get("sample_rate"), "hop": a.get("hop"),
        "latent_size": a.get("latent_size"), "global_step": a.get("global_step"), "parameters": n_params,
        **({"trained_on": a["trained_on"]} if a.get("trained_on") else {}),
    }
    if a.get("kind") == "prior":  # what the prior was trained on, from the record it carries
        from audiogen.latents.record import LatentRecord

        r = LatentRecord.from_prior(ck)
        out.update(dataset=r.dataset_path, **_record(r), normalized=r.normalization is not None)
    from audiogen.plugins import missing_plugins, provenance_of

    missing = missing_plugins(provenance_of(a))
    if missing:  # `sample`, `evaluate`, ... refuse this run until these are installed
        out["needs"] = missing
    if a.get("built_components"):
        out["built_by"] = {k: f"{v.get('plugin')} {v.get('version')}" for k, v in a["built_components"].items()
                           if isinstance(v, dict)}
    return {**out, "created_by": a.get("created_by"), "operative_config": a.get("operative_config", "")}
