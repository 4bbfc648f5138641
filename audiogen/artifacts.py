"""Shared helpers for artifacts: atomic writes, hashes, provenance, checkpoint loading."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import platform
import re
import socket
import stat
import uuid
from pathlib import Path
from typing import Any

from audiogen.errors import ArtifactError

CHECKPOINT_FORMAT = "audiogen.checkpoint"
CHECKPOINT_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write beside the target, then rename: readers never see a half-written file. Mode 0666 & ~umask
    (mkstemp's 0600 would make artifacts unreadable to other users)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def take_lock(folder: Path, what: str) -> Path:
    """Take ``folder/lock`` ("PID HOST") for the one writer of ``folder`` (``what``: "encode", "training run").

    The lock appears with its content in one step (a filled temporary file hard-linked into place), so another
    process never reads an empty lock and takes it for a stale one. A lock from a dead process on this host is
    taken over (renamed away first, so two processes cannot both take over the same stale lock); one from another
    host (a shared file system) cannot be checked, so it is refused with the way out."""
    lock = Path(folder) / "lock"
    mine = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(3):
        if _create_filled(lock, mine):
            return lock
        held = refuse_live_lock(folder, what)
        if held is None:  # released meanwhile: try again
            continue
        _remove_stale(lock, held, what, folder)
    raise ArtifactError(f"another {what} keeps taking the lock of {folder}", fix="wait for it to finish")


def refuse_live_lock(folder: Path, what: str) -> str | None:
    """Raise if ``folder/lock`` is held by a live process (or one on another host, which cannot be checked);
    otherwise return its text (a stale lock) or None (no lock). Called before a folder's content is judged, so
    a second writer meets "another ... is writing" rather than whatever the first has half written there."""
    lock = Path(folder) / "lock"
    held = _read_lock(lock, what, folder)
    if held is None:
        return None
    pid_text, _, owner = held.strip().partition(" ")
    pid = int(pid_text) if re.fullmatch(r"[0-9]{1,9}", pid_text) else 0  # anything else: no audiogen wrote it
    if pid and owner and owner != socket.gethostname():
        raise ArtifactError(f"another {what} (pid {pid} on {owner}) is writing {folder}",
                            fix=f"wait for it to finish, or if no {what} runs there any more, delete {lock}")
    if pid and _alive(pid):
        raise ArtifactError(f"another {what} (pid {pid}) is writing {folder}",
                            fix=f"wait for it to finish, or choose another output folder; if pid {pid} is no "
                                f"audiogen {what} (a crashed run's pid reused by another program), delete "
                                f"{lock} and re-run")
    return held


def _read_lock(lock: Path, what: str, folder: Path) -> str | None:
    """The text of ``lock`` (None if there is none), read without following a link or waiting on a pipe, and at
    most 256 bytes: a ``lock`` that is no regular file (planted in a folder handed over, or made by hand) is refused
    with the way out, never read through."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(lock, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symbolic link
        kind = "a symbolic link" if lock.is_symlink() else exc.strerror
        raise _not_a_lock(lock, kind, what, folder) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_a_lock(lock, "a folder" if stat.S_ISDIR(mode) else "a special file", what, folder)
        return os.read(fd, 256).decode(errors="replace")
    finally:
        os.close(fd)


def _not_a_lock(lock: Path, kind: str, what: str, folder: Path) -> ArtifactError:
    return ArtifactError(f"{lock} is not a lock file ({kind}); audiogen writes 'PID HOST' there to lock {folder}",
                         fix=f"remove {lock} (it was not made by audiogen) and re-run, if no other {what} "
                             "writes there")


def _create_filled(lock: Path, text: str) -> bool:
    tmp = lock.with_name(f".{lock.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    try:
        os.link(tmp, lock)  # fails if the lock exists; never leaves it empty
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: exclusive create, then fill
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.write(fd, text.encode())
        os.close(fd)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale(lock: Path, held: str, what: str, folder: Path) -> None:
    grave = lock.with_name(f".{lock.name}.stale.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(lock, grave)
    except FileNotFoundError:  # another process took it over first
        return
    if _read_lock(grave, what, folder) != held:  # a live process's fresh lock replaced the stale one meanwhile: give it back
        with contextlib.suppress(OSError):
            os.link(grave, lock)
        grave.unlink(missing_ok=True)
        raise ArtifactError(f"another {what} is writing {folder}", fix="wait for it to finish")
    grave.unlink(missing_ok=True)


def release_lock(lock: Path) -> None:
    """Remove ``lock`` if this process holds it (never another writer's)."""
    with contextlib.suppress(OSError, ArtifactError):
        if (_read_lock(lock, "", lock.parent) or "").strip().partition(" ")[0] == str(os.getpid()):
            lock.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def folder_lock(folder: Path, what: str, hold: bool = True):
    """``take_lock`` for the duration of the block (nothing when ``hold`` is False: the other ranks of a
    distributed job work under rank 0's lock). Folders created for the lock are removed again if the block
    leaves them empty (a run refused on its configuration leaves no empty folder)."""
    if not hold:
        yield None
        return
    folder = Path(folder)
    top = folder
    while not top.parent.exists() and top.parent != top.parent.parent:
        top = top.parent
    created = not top.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = take_lock(folder, what)
    try:
        yield lock
    finally:
        release_lock(lock)
        if created:
            for d in (folder, *folder.parents):
                if d == top.parent or not _rmdir_if_empty(d):
                    break


def _rmdir_if_empty(d: Path) -> bool:
    try:
        d.rmdir()
        return True
    except OSError:
        return False


def refuse_existing(out: Path, overwrite: bool, what: str = "output") -> None:
    """Refuse to write over an existing file, or into a folder that holds anything, unless ``overwrite``: a command
    never replaces earlier results silently (a re-run that resumes, as train and encode do, is not an overwrite)."""
    out = Path(out)
    if overwrite or not (out.exists() or out.is_symlink()):
        return
    if out.is_dir() and not any(out.iterdir()):
        return
    raise ArtifactError(f"{what} {out} already exists" + (" and is not empty" if out.is_dir() else ""),
                        fix="pass --overwrite to write over it, or choose another -o")


# What marks a folder as an audiogen training run (train, train-prior): the only folders --overwrite empties for them
RUN_MARKERS = ("checkpoints", "model.ckpt", "operative_config.gin", "index/train.json", "logs/tensorboard")


def is_run(path: Path) -> bool:
    """``path`` is a checkpoint file or a training run's folder (it holds one of ``RUN_MARKERS``)."""
    path = Path(path)
    return path.suffix == ".ckpt" or path.is_dir() and any((path / m).exists() for m in RUN_MARKERS)


def check_output(out: Path, overwrite: bool = False, inputs=(), *, runs=(), folder: bool = True,
                 markers: tuple[str, ...] | None = (), what: str = "output", resumes: bool = False,
                 clear: bool = True, ignore: tuple[str, ...] = ()) -> Path:
    """The one check of ``-o`` for every command that writes, before any work:

    - it can be written: neither ``out`` (for a folder output) nor a folder above it is a file;
    - it is none of the ``inputs`` (audio and latent files, folders, lists), lies inside none (for a folder output)
      and holds none (resolved paths, links followed), whatever ``overwrite`` says: an output never replaces, or
      is read back as, an input; it is no run folder or checkpoint of ``runs`` and holds none (it may lie inside
      a run folder: `sample -o RUN/samples`);
    - a folder output that holds anything is refused without ``overwrite`` (``resumes``: one that holds one of
      ``markers``, the command's own earlier output, is kept for the command to resume); with ``overwrite`` it is
      emptied first (links in it removed, never followed) if it holds one of ``markers`` (paths relative to it), so
      it ends with one run's outputs only, and refused if it holds none, or if ``out`` itself is a symbolic link.
      ``markers`` None: the folder is written over without being emptied (outputs that carry no marker).
    ``clear`` False: everything is checked but the folder is left for the caller to empty (under its lock).
    ``ignore``: names that neither fill the folder nor mark it (a run's ``lock``, which the lock itself checks).
    Returns ``out``."""
    out = Path(out)
    blocker = next((q for q in ([out] if folder else []) + list(out.parents)
                    if (q.exists() or q.is_symlink()) and not q.is_dir()), None)
    if blocker is not None:
        raise ArtifactError(f"cannot write {out}: {blocker} is a file, not a folder",
                            fix="choose another -o (a folder that does not exist yet, or one audiogen wrote)")
    if not folder and out.is_dir():
        raise ArtifactError(f"cannot write {out}: a folder of that name exists", fix="choose another -o")
    _refuse_inputs(out, inputs, inside=folder)
    _refuse_inputs(out, runs, inside=False)
    if not folder:
        refuse_existing(out, overwrite, what)
        return out
    if not out.is_dir() or not any(p.name not in ignore for p in out.iterdir()):
        return out
    own = markers is not None and any((out / m).exists() or (out / m).is_symlink() for m in markers)
    marks = ", ".join(markers or ())
    if not overwrite:
        if resumes and own:
            return out
        raise ArtifactError(
            f"{what} {out} already exists and is not empty" + (f" (it is no audiogen {what}: it holds none of {marks})"
                                                               if resumes else ""),
            fix="choose another -o" + ("" if resumes and not own else ", or pass --overwrite to replace it"))
    if markers is None:
        return out
    if not own:
        raise ArtifactError(f"{what} {out} holds files audiogen did not write there (none of {marks}); --overwrite "
                            "only empties a folder that holds an earlier output of this command",
                            fix="choose another -o, or empty the folder yourself")
    if out.is_symlink():
        raise ArtifactError(f"{what} {out} is a symbolic link; --overwrite empties only a real folder",
                            fix=f"pass the folder it points to ({out.resolve()}) as -o, or choose another -o")
    if clear:
        clear_folder(out)
    return out


def _refuse_inputs(out: Path, inputs, inside: bool) -> None:
    o = out.resolve()
    for i in inputs:
        if i is None:
            continue
        r = Path(i).resolve()
        if o == r:
            how = "is"
        elif inside and r in o.parents:
            how = "lies inside"
        elif o in r.parents:
            how = "holds"
        else:
            continue
        raise ArtifactError(f"-o {out} {how} the input {i}: an output never replaces or mixes with what it reads",
                            fix="choose an -o outside the inputs (and the run folders read)")


def clear_folder(out: Path, keep: tuple[str, ...] = ()) -> None:
    """Delete everything inside ``out`` but the names in ``keep``. Links are removed, never followed: a symbolic
    link in the folder to data elsewhere leaves that data alone (``shutil.rmtree`` does not follow links inside the
    trees it removes either)."""
    import shutil

    with os.scandir(out) as entries:
        for entry in entries:
            if entry.name in keep:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def versions() -> dict[str, str]:
    import torch

    from audiogen import __version__

    return {"audiogen": __version__, "torch": str(torch.__version__), "python": platform.python_version()}


def check_format_version(where, meta: dict, supported: int, what: str, fix_old: str) -> None:
    """Refuse format versions this audiogen cannot read (checkpoints, latent datasets), saying which was found,
    which is read, who wrote it and what to do."""
    version, by = meta.get("version"), meta.get("created_by")
    made_by = f" (written by audiogen {by.get('audiogen')})" if isinstance(by, dict) and by.get("audiogen") else ""
    if not isinstance(version, int) or isinstance(version, bool) or version < supported:
        raise ArtifactError(f"{where} has {what} format version {version!r}{made_by}; this audiogen reads version "
                            f"{supported}", fix=fix_old)
    if version > supported:
        raise ArtifactError(f"{where} has {what} format version {version}{made_by}, newer than this audiogen reads "
                            f"({supported})", fix="upgrade audiogen (pip install -U audiogen)")


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load an audiogen checkpoint (a file, or a run folder holding model.ckpt) with ``weights_only=True``."""
    path = Path(path)
    if path.is_dir():
        for cand in (path / "model.ckpt", path / "checkpoints" / "last.ckpt"):
            if cand.is_file():
                path = cand
                break
        else:
            raise ArtifactError(f"no model.ckpt or checkpoints/last.ckpt in run folder {path}",
                                fix="pass the checkpoint file, or train first with `audiogen train`")
    if not path.is_file():
        raise ArtifactError(f"checkpoint {path} does not exist",
                            fix="pass a run folder (holding model.ckpt) or a .ckpt file that exists; `audiogen train` "
                                "writes RUN/model.ckpt")
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if path.name == "last.ckpt" and path.parent.name == "checkpoints":  # a run's resume point, torn or damaged
            fix = f"restore {path} from a backup, or delete it to start the run again from step 0"
        else:
            fix = ("copy the file again (it may be truncated); checkpoints are loaded with weights_only=True, so "
                   "only checkpoints written by audiogen load")
        detail = (str(exc).splitlines() or [""])[0].split(". ")[0]  # torch's own advice follows the first sentence
        why = "empty (0 bytes)" if path.stat().st_size == 0 else f"{type(exc).__name__}: {detail}"
        raise ArtifactError(f"cannot read checkpoint {path} ({why})", fix=fix) from None
    meta = ckpt.get("audiogen") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise ArtifactError(f"{path} is not an audiogen checkpoint (no 'audiogen' metadata)")
    check_format_version(path, meta, CHECKPOINT_VERSION, "checkpoint",
                         "retrain with this audiogen, or use the audiogen version that wrote it (the old format has "
                         "no upgrade path)")
    missing = [k for k in ("kind", "operative_config") if not isinstance(meta.get(k), str)]
    if missing or not isinstance(ckpt.get("state_dict"), dict):
        raise ArtifactError(f"{path} is damaged: its metadata lacks {', '.join(missing or ['state_dict'])}",
                            fix="use another checkpoint of the run (checkpoints/last.ckpt) or retrain")
    # weights_only admits any nesting of str, int, dict...: what the readers below use must have its type
    odd = next((k for k, v in ckpt["state_dict"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)),
               None)
    if odd is not None:
        raise ArtifactError(f"{path} is damaged: its state_dict entry {str(odd)[:100]!r} is not a tensor",
                            fix="use another checkpoint of the run (checkpoints/last.ckpt) or retrain")
    for k in ("built_components", "components"):
        if meta.get(k) is not None and not isinstance(meta[k], dict):
            raise ArtifactError(f"{path} is damaged: its {k} is {str(meta[k])[:100]}, not a mapping",
                                fix="use another checkpoint of the run (checkpoints/last.ckpt) or retrain")
    ckpt["path"] = str(path.resolve())
    return ckpt


def strip_prefix(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


_RESTORING = contextvars.ContextVar("audiogen_restoring_weights", default=False)


@contextlib.contextmanager
def weights_from_checkpoint():
    """While a pipeline is rebuilt to receive all its weights from a checkpoint: components that initialise from a
    file (a pretrained CPC encoder) skip reading it, so the checkpoint does not depend on that file still existing."""
    token = _RESTORING.set(True)
    try:
        yield
    finally:
        _RESTORING.reset(token)


def restoring_weights() -> bool:
    return _RESTORING.get()
