"""`decode` writes only inside -o, never with random weights, and fails as one message with nothing half-written.

Datasets are a real encode edited the way an attacker or a broken disk would edit them; a full disk is
RLIMIT_FSIZE in a child process (as in test_faults.py).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_main as _cli
from conftest import refused as _refused
from conftest import run_cli, tiny_binds
from test_faults import _run_limited

from audiogen.latents.dataset import LatentDataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_run, corpus) -> Path:
    lat = tmp_path_factory.mktemp("decode") / "lat"
    _cli("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    return lat


def _edited(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    meta = json.loads((dst / "meta.json").read_text())
    edit(meta)
    (dst / "meta.json").write_text(json.dumps(meta))
    return dst


def _wavs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.wav")) if folder.exists() else []


# ------------------------------------------------------------------------------------------------- paths and names
def test_sources_that_leave_the_output_are_refused(tmp_path, dataset):
    target = tmp_path / "elsewhere" / "owned.wav"
    target.parent.mkdir()

    def escape(meta):
        first = Path(meta["files"][0]["source"])
        up = "/".join([".."] * len(first.parent.parts))
        meta["files"][1]["source"] = str(first.parent / up / target.relative_to("/"))

    out = tmp_path / "dec"
    msg = _refused("decode", _edited(dataset, tmp_path / "up", escape), "-o", out)
    assert "files[1]" in msg and ".." in msg, msg
    assert not target.exists() and not _wavs(out) and not list(tmp_path.rglob("owned*"))

    def relative(meta):
        meta["files"][0]["source"] = "some/relative.wav"

    msg = _refused("decode", _edited(dataset, tmp_path / "rel", relative), "-o", out)
    assert "files[0]" in msg and "some/relative.wav" in msg and not _wavs(out), msg

    def nul(meta):
        meta["files"][2]["source"] = meta["files"][2]["source"] + "\0.wav"

    msg = _refused("decode", _edited(dataset, tmp_path / "nul", nul), "-o", out)
    assert "files[2]" in msg and not _wavs(out), msg

    def root(meta):
        meta["files"][1]["source"] = "/"

    msg = _refused("decode", _edited(dataset, tmp_path / "root", root), "-o", out)
    assert "files[1]" in msg and not _wavs(out), msg


def test_names_that_would_collide_are_made_unique(tmp_path, dataset):
    def same_stem(meta):
        folder = Path(meta["files"][0]["source"]).parent
        meta["files"][0]["source"] = str(folder / "a.wav")
        meta["files"][1]["source"] = str(folder / "a.flac")
        meta["files"][2]["source"] = str(folder / "a_flac.wav")  # already the name a.flac would get

    ds = _edited(dataset, tmp_path / "same", same_stem)
    n = len(LatentDataset(ds))
    _cli("decode", ds, "-o", tmp_path / "d1")
    _cli("decode", ds, "-o", tmp_path / "d2")
    names = [p.name for p in _wavs(tmp_path / "d1")]
    assert len(names) == n and {"a_wav.wav", "a_flac.wav", "a_flac_2.wav"} <= set(names), names
    assert names == [p.name for p in _wavs(tmp_path / "d2")]  # deterministic
    for name in ("a_wav.wav", "a_flac.wav"):  # each holds its own file, not one overwritten by the other
        assert (tmp_path / "d1" / name).read_bytes() == (tmp_path / "d2" / name).read_bytes()
    assert (tmp_path / "d1" / "a_wav.wav").read_bytes() != (tmp_path / "d1" / "a_flac.wav").read_bytes()


def test_npy_files_of_one_name_from_two_folders(tmp_path, tiny_run):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        np.save(tmp_path / d / "a.npy", np.random.default_rng(len(d)).normal(size=(4, 6)).astype(np.float32))
    _cli("decode", "--run", tiny_run, tmp_path / "x" / "a.npy", tmp_path / "y" / "a.npy", "-o", tmp_path / "o")
    assert [p.name for p in _wavs(tmp_path / "o")] == ["a_npy.wav", "a_npy_2.wav"]


# ------------------------------------------------------------------------------------------------ random weights
def test_decode_without_weights_is_refused(tmp_path, dataset):
    def no_checkpoint(meta):
        meta["checkpoint"] = None

    out = tmp_path / "o"
    msg = _refused("decode", _edited(dataset, tmp_path / "nock", no_checkpoint), "-o", out)
    assert "untrained" in msg and "--run" in msg and not _wavs(out), msg
    np.save(tmp_path / "z.npy", np.zeros((4, 8), np.float32))
    msg = _refused("decode", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), tmp_path / "z.npy", "-o", out)
    assert "untrained" in msg and not _wavs(out), msg


# --------------------------------------------------------------------------------------------------- damaged input
def _npy_header_only(path: Path, shape: tuple) -> Path:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        f.write(b"\0" * 64)
    return path


@pytest.mark.parametrize("case", ["bad_header", "object", "huge_header", "zero_frames", "empty_file", "complex"])
def test_damaged_npy_is_one_message(case, tmp_path, tiny_run):
    p = tmp_path / f"{case}.npy"
    if case == "bad_header":
        p.write_bytes(b"\x93NUMPY\x01\x00garbage that is not a header")
    elif case == "object":
        np.save(p, np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    elif case == "huge_header":
        _npy_header_only(p, (16, 2**31))
    elif case == "zero_frames":
        np.save(p, np.zeros((4, 0), np.float32))
    elif case == "empty_file":
        p.write_bytes(b"")
    else:
        np.save(p, np.zeros((4, 5), np.complex64))
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((4, 6), np.float32))
    out = tmp_path / "o"
    msg = _refused("decode", "--run", tiny_run, good, p, "-o", out)
    assert str(p) in msg, msg
    assert not _wavs(out)  # checked before anything is written


def test_nan_inside_a_shard_is_found_before_writing(tmp_path, dataset):
    ds = _edited(dataset, tmp_path / "nan", lambda meta: None)
    meta = json.loads((ds / "meta.json").read_text())
    last = meta["files"][-1]
    shard = ds / "shards" / meta["shards"][last["shard"]]["name"]
    arr = np.load(shard)
    arr[last["offset"] + last["length"] - 1, 0] = np.nan
    np.save(shard, arr)
    out = tmp_path / "o"
    msg = _refused("decode", ds, "-o", out)
    assert "NaN" in msg and Path(last["source"]).name in msg and not _wavs(out), msg


# -------------------------------------------------------------------------------------------------- write failures
def test_unwritable_output_is_one_message(tmp_path, tiny_run):
    np.save(tmp_path / "z.npy", np.zeros((4, 8), np.float32))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    msg = _refused("decode", "--run", tiny_run, tmp_path / "z.npy", "-o", blocker / "o")
    assert str(blocker) in msg and blocker.read_text() == "x", msg
    (tmp_path / "o" / "z.wav").mkdir(parents=True)  # a folder where a file must go
    msg = _refused("decode", "--run", tiny_run, tmp_path / "z.npy", "-o", tmp_path / "o")
    assert "not empty" in msg and "--overwrite" in msg, msg  # -o holds something: refused before anything else
    msg = _refused("decode", "--run", tiny_run, tmp_path / "z.npy", "-o", tmp_path / "o", "--overwrite")
    assert "z.wav" in msg, msg


def test_full_disk_leaves_nothing_half_written_and_says_so(tmp_path, tiny_run):
    """Small files fit under the limit, the long one does not: no wav is left, and the message says so."""
    names = []
    for i, frames in enumerate([4, 4, 4000, 4]):
        names.append(tmp_path / f"z{i}.npy")
        np.save(names[-1], np.zeros((4, frames), np.float32))  # hop 16: 4000 frames are 128 kB of PCM_16
    out = tmp_path / "o"
    proc = _run_limited(["decode", "--run", tiny_run, *names, "-o", out], 60_000)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "File too large" in proc.stderr and "z2.wav" in proc.stderr and "nothing was written" in proc.stderr
    assert not out.exists() or not list(out.rglob("*"))


def test_one_file_shards_decode_without_warnings(tmp_path, tiny_run, corpus):
    lat = tmp_path / "lat"
    _cli("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress",
         "--bind", "encode.shard_mb=0.000001")
    meta = json.loads((lat / "meta.json").read_text())
    assert len(meta["shards"]) == len(meta["files"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _cli("decode", lat, "-o", tmp_path / "o")
    assert len(_wavs(tmp_path / "o")) == len(meta["files"])


def test_decode_through_the_console_script(tmp_path, dataset):
    proc = run_cli("decode", dataset, "-o", tmp_path / "o")
    assert len(_wavs(tmp_path / "o")) == len(LatentDataset(dataset)) and "wrote" in proc.stdout
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]  # no staging left


# ------------------------------------------------------------------------------------------------------- symlinks
def test_a_link_inside_the_output_is_not_followed(tmp_path, dataset):
    """A dataset decides the subfolders below -o; one that already is a symlink (planted, e.g. by an unpacked
    archive) would take the files elsewhere: refused, nothing written. -o itself may be a link (the user's choice)."""
    def into_sub(meta):
        for i, f in enumerate(meta["files"]):
            f["source"] = f"/data/f{i}.wav"
        meta["files"][0]["source"] = "/data/sub/a.wav"

    ds = _edited(dataset, tmp_path / "sub", into_sub)
    elsewhere, out = tmp_path / "elsewhere", tmp_path / "out"
    elsewhere.mkdir()
    out.mkdir()
    (out / "sub").symlink_to(elsewhere)
    msg = _refused("decode", ds, "-o", out, "--overwrite")  # -o holds the link: past the earlier-output check
    assert "sub" in msg and "link" in msg, msg
    assert not list(elsewhere.iterdir()) and not _wavs(out)
    (out / "sub").unlink()
    link = tmp_path / "link"
    link.symlink_to(out)
    _cli("decode", ds, "-o", link)
    assert (out / "sub" / "a.wav").is_file() and len(_wavs(out)) == len(LatentDataset(ds))


def test_reconstruct_names_of_one_stem_are_made_unique(tmp_path, tiny_run):
    """`reconstruct x/a.wav y/a.wav` wrote one a.wav (the second overwrote the first), as decode once did."""
    from conftest import write_tone

    a = write_tone(tmp_path / "x" / "a.wav", 0.2, freq=300.0)
    b = write_tone(tmp_path / "y" / "a.wav", 0.2, freq=900.0)
    _cli("reconstruct", "--run", tiny_run, a, b, "-o", tmp_path / "rec")
    assert [p.name for p in _wavs(tmp_path / "rec")] == ["a_wav.wav", "a_wav_2.wav"]


@pytest.mark.parametrize("kind", ["outside", "fifo"])
def test_a_shard_that_is_a_link_or_pipe_is_refused(tmp_path, dataset, kind):
    """meta.json names shards inside shards/ only; a shard file that is a link to a file outside the dataset (or a
    pipe, which would block the reader for ever) is refused as well, naming it."""
    ds = _edited(dataset, tmp_path / "ds", lambda meta: None)
    shard = sorted((ds / "shards").glob("shard-*.npy"))[0]
    if kind == "outside":
        shard.rename(tmp_path / "outside.npy")
        shard.symlink_to(tmp_path / "outside.npy")
    else:
        shard.unlink()
        os.mkfifo(shard)
    out = tmp_path / "o"
    msg = _refused("decode", ds, "-o", out)
    assert shard.name in msg and not _wavs(out), msg


def test_safetensors_names_with_a_nul_byte_are_one_message(tmp_path, tiny_run):
    """Tensor names become file names: a NUL in one was a ValueError traceback from the file system call."""
    from safetensors.numpy import save_file

    z = np.zeros((4, 8), np.float32)
    save_file({"a\0b": z, "c": z}, str(tmp_path / "z.safetensors"))
    msg = _refused("decode", "--run", tiny_run, tmp_path / "z.safetensors", "-o", tmp_path / "o")
    assert "z_a" in msg and not _wavs(tmp_path / "o"), msg


@pytest.mark.parametrize("target", ["folder", "/dev/zero"])
def test_a_recorded_checkpoint_that_is_no_file_is_one_message(tmp_path, dataset, target):
    """meta.json names the checkpoint to decode with and its sha256: a folder there was an IsADirectoryError
    traceback, and /dev/zero a sha256 that never ends."""
    path = str(tmp_path) if target == "folder" else target

    def elsewhere(meta):
        meta["checkpoint"] = {"path": path, "sha256": "0" * 64}

    msg = _refused("decode", _edited(dataset, tmp_path / "ds", elsewhere), "-o", tmp_path / "o")
    assert path in msg and "not a file" in msg, msg


def test_names_equal_after_unicode_normalisation_are_made_unique():
    """'é' composed and decomposed are two names on Linux but one file on macOS (like 'A' and 'a' on a
    case-insensitive file system): made unique the same way."""
    import unicodedata

    from audiogen.latents.decode import unique_names

    nfc, nfd = unicodedata.normalize("NFC", "caf\u00e9.wav"), unicodedata.normalize("NFD", "caf\u00e9.wav")
    names = unique_names([nfc, nfd], ["wav", "flac"])
    assert len({unicodedata.normalize("NFC", n).casefold() for n in names}) == 2, names
