"""Decode latents (a latent dataset, or .npy / .safetensors files) back to wav files."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path, PurePath, PurePosixPath

import numpy as np
import torch

from audiogen.audio.io import save_audio
from audiogen.errors import ArtifactError
from audiogen.latents.dataset import LatentDataset, _is_int, read_meta
from audiogen.latents.record import LatentRecord
from audiogen.progress import bar


def common_root(paths: list[str]) -> Path:
    """The folder below which decoded files keep their sources' relative layout."""
    if len(paths) == 1:
        return Path(paths[0]).parent
    return Path(os.path.commonpath([str(Path(p).parent) for p in paths]))


def iter_latents(inputs: list[str], latent_size: int | None = None) -> list[tuple[str, np.ndarray, int | None]]:
    """(output name, latents (C, L), source length in samples or None) for every item, all checked before anything
    is decoded: a damaged input fails before the first file is written. Datasets keep their sources' relative
    layout and length; names that would collide are made unique (``unique_names``). Latents stay memory-mapped."""
    items: list[tuple[str, np.ndarray, int | None]] = []
    kinds: list[str] = []  # what each name came from, to tell colliding names apart
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            ds = LatentDataset(p)
            if latent_size is not None and ds.latent_size != latent_size:
                raise ArtifactError(f"latent dataset {p} has latent_size {ds.latent_size} but the decoder takes "
                                    f"{latent_size}", fix="decode with the autoencoder that made it (--run)")
            for name, z, samples, kind in _dataset_items(ds):
                items.append((name, z, samples))
                kinds.append(kind)
        elif p.suffix == ".npy":
            items.append((p.stem + ".wav", _check_shape(_load_npy(p), p, latent_size), None))
            kinds.append("npy")
        elif p.suffix == ".safetensors":
            from safetensors.numpy import load_file

            try:
                tensors = load_file(str(p))
            except Exception as exc:  # a damaged header or payload: SafetensorError, OSError, ...
                raise ArtifactError(f"cannot read latents {p} ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                                    fix="save latents with safetensors.numpy.save_file") from None
            if len(tensors) == 1:
                (name, arr), = tensors.items()
                items.append((p.stem + ".wav", _check_shape(arr, p, latent_size), None))
            else:
                for name, arr in sorted(tensors.items()):
                    items.append((f"{p.stem}_{name}.wav", _check_shape(arr, p, latent_size), None))
            kinds += ["safetensors"] * len(tensors)
        elif not p.exists():
            raise ArtifactError(f"latents {p} do not exist")
        else:
            raise ArtifactError(f"{p}: unsupported latents (expected a latent dataset folder, .npy or .safetensors)")
    names = unique_names([name for name, _, _ in items], kinds)
    return [(name, z, samples) for name, (_, z, samples) in zip(names, items)]


def _dataset_items(ds: LatentDataset):
    """(relative output name, latents (C, L), source samples, source extension) of every file of a dataset. Names
    come from ``files[].source``, which must be an absolute path without ``..``: a dataset decides where in ``-o``
    its files land, never outside it. NaN or inf anywhere is found here, before anything is written."""
    meta_path = ds.path / "meta.json"
    position = {id(f): j for j, f in enumerate(ds.meta["files"])}  # index in meta.json, for messages
    sources = []
    for f in ds.files:
        src, samples = f.get("source"), f.get("samples")
        pure = PurePath(src) if isinstance(src, str) and src else None
        if pure is None or not pure.is_absolute() or not pure.name or ".." in pure.parts or "\0" in src:
            raise ArtifactError(f"{meta_path}: files[{position[id(f)]}].source is {src!r}; decoded files are named "
                                "after their absolute source paths, which may not contain '..'",
                                fix="re-encode the dataset with `audiogen encode`")
        if samples is not None and not _is_int(samples):
            raise ArtifactError(f"{meta_path}: files[{position[id(f)]}].samples is {samples!r}, not a length",
                                fix="re-encode the dataset with `audiogen encode`")
        sources.append(src)
    root = common_root(sources)
    for i, (f, src) in enumerate(zip(ds.files, sources)):
        z = ds.sequence(i).T
        if not np.isfinite(z).all():
            raise ArtifactError(f"{meta_path}: the latents of files[{position[id(f)]}] ({src}) contain NaN or inf",
                                fix="re-encode the dataset with `audiogen encode`")
        yield str(Path(src).relative_to(root).with_suffix(".wav")), z, f.get("samples"), PurePath(src).suffix[1:]


def unique_names(names: list[str], kinds: list[str]) -> list[str]:
    """Names made unique, deterministically (same inputs, same names): a name shared by several items becomes
    ``stem_<kind>.wav`` (``a.wav`` and ``a.flac`` give ``a_wav.wav`` and ``a_flac.wav``); one still taken gets
    ``_2``, ``_3``... in input order. Compared as some file systems do: case-insensitively, and composed and
    decomposed accents alike (macOS)."""
    def key(name: str) -> str:
        return unicodedata.normalize("NFC", name).casefold()

    counts = Counter(key(n) for n in names)
    taken: set[str] = set()
    out = []
    for name, kind in zip(names, kinds):
        p = PurePosixPath(name)
        if counts[key(name)] > 1 and kind:
            p = p.with_name(f"{p.stem}_{kind}{p.suffix}")
        cand, k = str(p), 2
        while key(cand) in taken:
            cand, k = str(p.with_name(f"{p.stem}_{k}{p.suffix}")), k + 1
        taken.add(key(cand))
        out.append(cand)
    return out


def _load_npy(path: Path) -> np.ndarray:
    """A memory map of a .npy file. Damage (a bad header, pickled objects, a header that promises more data than
    the file holds) is an ArtifactError naming the file; nothing large is read."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        size = path.stat().st_size
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError, UnpicklingError... for damaged files
        raise ArtifactError(f"cannot read latents {path} ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                            fix="save latents with numpy.save as a (latent_size, frames) float array") from None
    if not isinstance(arr, np.ndarray) or getattr(arr, "offset", 0) + arr.nbytes > size:
        raise ArtifactError(f"{path} is truncated: its header promises more data than the file holds",
                            fix="save the latents again with numpy.save")
    return arr


def _check_shape(arr: np.ndarray, path: Path, latent_size: int | None) -> np.ndarray:
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise ArtifactError(f"{path} holds {getattr(arr, 'dtype', type(arr).__name__)} values, not real numbers",
                            fix="save latents as a float array")
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or (latent_size is not None and arr.shape[0] != latent_size):
        raise ArtifactError(f"{path} holds an array of shape {arr.shape}; expected (latent_size, frames)"
                            + (f" with latent_size {latent_size}" if latent_size else ""),
                            fix="save latents channels-first, as encoders return them")
    if arr.shape[1] == 0:
        raise ArtifactError(f"{path} holds no frames (shape {arr.shape})", fix="decode latents of at least one frame")
    if not np.isfinite(arr).all():
        raise ArtifactError(f"{path} contains NaN or inf latents")
    return arr


def _check_targets(out: Path, names: list[str]) -> None:
    """Every output path lies inside ``out`` and can be a file there (no folder in its place, no file where a
    folder must go, no symbolic link on the way), checked before anything is decoded."""
    root = os.path.normpath(os.path.abspath(out))
    for name in names:
        pure = PurePath(name)
        target = os.path.normpath(os.path.join(root, name))
        if "\0" in name:  # no file system takes it (a safetensors tensor name can hold one)
            raise ArtifactError(f"the decoded file name {name!r} holds a NUL character",
                                fix="rename the tensors (or files) so their names are plain text")
        if pure.is_absolute() or ".." in pure.parts or os.path.commonpath([root, target]) != root or target == root:
            raise ArtifactError(f"the decoded file {name!r} would be written outside {out}",
                                fix="decode only latents whose names stay inside the output folder")
        path = Path(target)
        # -o itself may be a link (the user's choice); a folder below it that the names reach into may not: a link
        # there (planted by an unpacked archive, say) would carry the files out of -o
        link = next((q for q in reversed(path.parents) if len(q.parts) > len(Path(root).parts) and q.is_symlink()),
                    None)
        if link is not None:
            raise ArtifactError(f"cannot write {path}: {link} is a symbolic link, and decoded files are only written "
                                f"into real folders inside {out}", fix=f"remove the link {link}, or choose another -o")
        if path.is_dir():
            raise ArtifactError(f"cannot write {path}: a folder of that name exists", fix="choose another -o")
        blocker = next((q for q in path.parents if q.exists() and not q.is_dir()), None)
        if blocker is not None:
            raise ArtifactError(f"cannot write {path}: {blocker} is a file, not a folder", fix="choose another -o")


def _few(names: list[str], k: int = 5) -> str:
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "") if names else "none"


def decode_to_files(decoder: torch.nn.Module, items, out: Path, sample_rate: int) -> list[Path]:
    """Decode ``(name, latents (C, L), samples or None)`` items to ``out/name``. All are written to a hidden folder
    inside ``out`` first and moved into place once every one is written: a failed write (full disk, file size
    limit, permissions) leaves none of them behind, and the message says so."""
    out = Path(out)
    items = list(items)
    names = [name for name, _, _ in items]
    _check_targets(out, names)
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".decode-", suffix=".partial", dir=out))
    except OSError as exc:
        raise ArtifactError(f"cannot create output folder {out} ({exc.strerror or exc})",
                            fix="choose a writable location for -o") from None
    try:
        with torch.inference_mode():
            for name, z, samples in bar(items, desc="decode", unit="file"):
                # a writable copy: a memory-mapped shard is read-only (torch warns about views of it)
                audio = decoder(torch.from_numpy(np.array(z, dtype=np.float32, order="C"))[None])[0, 0].numpy()
                audio = audio[:samples] if samples else audio  # a dataset's files come back at their source length
                if not np.isfinite(audio).all():
                    raise ArtifactError(f"the decoder produced NaN or inf samples for {name}; nothing was written",
                                        fix="check the checkpoint (a diverged run has NaN weights)")
                try:
                    save_audio(stage / name, audio, sample_rate)
                except OSError as exc:
                    raise ArtifactError(f"writing {name} in {out} failed ({exc.strerror or exc}); nothing was "
                                        f"written (decode keeps all {len(items)} files or none)",
                                        fix="free disk space (or fix the permissions) and re-run the command") \
                        from None
        return _move_into_place(stage, out, names)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _move_into_place(stage: Path, out: Path, names: list[str]) -> list[Path]:
    moved: list[str] = []
    try:
        for name in names:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / name, out / name)
            moved.append(name)
    except OSError as exc:
        left = names[len(moved):]
        raise ArtifactError(f"moving the decoded files into {out} failed ({exc.strerror or exc}): written "
                            f"{_few(moved)}; not written {_few(left)}",
                            fix="fix the output folder and re-run the command") from None
    return [out / name for name in names]


def dataset_record(inputs: list[str]) -> LatentRecord | None:
    """The record of the first latent dataset among the inputs (it names the decoder to use); every other dataset
    must have been made like it (one decoder for all), else an error naming both."""
    records = []
    for inp in inputs:
        p = Path(inp)
        if p.is_dir() or p.with_name(p.name + ".partial").is_dir():  # read_meta names an interrupted encode
            records.append(LatentRecord.from_meta(read_meta(inp), p / "meta.json"))
    for other in records[1:]:
        records[0].check_same_kind(other, fix="decode each dataset with its own command (one decoder per call)")
    return records[0] if records else None


def decoder_pipeline(record: LatentRecord | None, ckpt=None, gin_files=(), bindings=(), option: str = "--run"):
    """The autoencoder pipeline whose decoder turns these latents into audio: ``ckpt`` if given, else the
    checkpoint recorded with the latents (refused if it changed since: its decoder would not match), else the
    recorded operative config (weightless decoders such as a RAVE model file named in gin, whose sha256 is checked
    the same way). The decoder is checked against the record (latent size, hop, sample rate). ``option``: how the
    command spells ``ckpt`` (`sample` reads it as --decoder-run), named in the fixes."""
    from audiogen.errors import ConfigError
    from audiogen.pipeline import load_pipeline, refuse_untrained
    from audiogen.plugins import check_provenance, provenance_of

    base = None
    ae = record.autoencoder if record is not None else None
    if ckpt is None and ae is not None:
        if ae.checkpoint:
            ckpt = Path(ae.checkpoint["path"])
            _check_unchanged(ckpt, ae.checkpoint.get("sha256"), "checkpoint", record.source,
                             f"pass {option} with the autoencoder that made them")
        else:
            base = ae.operative_config or None
            # encoder/decoder as older encodes recorded them, then every component built (built_components)
            check_provenance(provenance_of({"components": {"encoder": ae.encoder, "decoder": ae.decoder},
                                            "built_components": ae.components}), f"the autoencoder of {record.source}")
        if ae.model:  # a pretrained model file (RAVE export) the config reads by path
            _check_unchanged(Path(ae.model["path"]), ae.model.get("sha256"), "model file", record.source,
                             "pass --gin/--bind naming the model file that encoded them")
    if ckpt is None and base is None and not gin_files and not bindings:
        raise ConfigError("these latents do not name the autoencoder that made them",
                          fix=f"pass {option} of the autoencoder (or --gin for a pretrained one)")
    guard = contextlib.nullcontext()
    if ae is not None and base is not None and not gin_files and not bindings:
        from audiogen.rave.torchscript import only_model_file

        guard = only_model_file(Path(ae.model["path"]) if ae.model else None, record.source)
    with guard:  # a model file the stored config names is refused before it is loaded unless it is the recorded one
        pipe, _ = load_pipeline(ckpt, gin_files, bindings, base=base,
                                base_source=record.source if record is not None else "a latent dataset")
    if pipe.decoder is None or pipe.latent_model is not None or pipe.decoder.out_channels != 1:
        raise ConfigError("decoding needs an autoencoder whose decoder outputs audio; this pipeline "
                          + ("has no decoder" if pipe.decoder is None else "decodes to distribution parameters"),
                          fix=f"pass {option} of an autoencoder (e.g. trained with pipelines/conv_ae.gin)")
    if ae is not None and base is not None and not gin_files and not bindings:
        # built from the recorded config: it must read the model file whose sha256 was checked above (a record
        # without encoder_info would otherwise decode with whatever file its config names, unchecked)
        built = getattr(pipe.decoder, "describe", lambda: {})()
        if built.get("model_sha256") and built["model_sha256"] != (ae.model or {}).get("sha256"):
            recorded = f"records model file {ae.model['path']}" if ae.model else "records no model file (sha256)"
            raise ConfigError(f"{record.source} {recorded} but its operative config builds a decoder from "
                              f"{built.get('model_path')}", fix="pass --gin/--bind naming the model file that "
                              "encoded them, or re-encode")
    if record is not None:
        from audiogen.settings import audio_settings_for

        record.check_decoder(pipe.decoder, str(ckpt) if ckpt is not None else "the given config",
                             audio_settings_for(pipe.decoder, "decoder").sample_rate)
    if ckpt is None:  # a config alone: only a pretrained decoder (a RAVE export) has its weights
        refuse_untrained(pipe.decoder, "decoder")
    return pipe


def _check_unchanged(path: Path, sha256: str | None, what: str, source: str, fix: str) -> None:
    from audiogen.artifacts import sha256_file
    from audiogen.errors import ConfigError

    if not path.exists():
        raise ConfigError(f"the {what} {path} named by {source} no longer exists", fix=fix)
    if not path.is_file():  # a folder, or a device or pipe whose sha256 would never end
        raise ConfigError(f"the {what} {path} named by {source} is not a file", fix=fix)
    if sha256 and sha256_file(path) != sha256:
        raise ConfigError(f"the {what} {path} has changed since the latents in {source} were made (sha256 differs): "
                          f"its decoder would not match them", fix=f"{fix}, or re-encode with the new one")
