"""encode -> decode on the real corpora in ../shared (AUDIOGEN_SHARED): FSDD at 8 kHz, LibriSpeech at 16 kHz."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import soundfile as sf
from conftest import run_in_process, tiny_binds


def _manifest(folder: Path) -> dict[str, int]:
    with open(folder / "manifest.csv") as f:
        return {row["relpath"]: int(row["frames"]) for row in csv.DictReader(f)}


def _round_trip(tmp_path: Path, data_args: list, encode_inputs: list, sample_rate: int, gin: list[str]) -> dict:
    run = tmp_path / "run"
    run_in_process("train", *gin, *tiny_binds(), *data_args, "-o", run, "--no-progress")
    lat = tmp_path / "latents"
    run_in_process("encode", "--run", run, *encode_inputs, "-o", lat, "--no-progress")
    meta = json.loads((lat / "meta.json").read_text())
    assert meta["sample_rate"] == sample_rate and not meta["failed"]
    dec = tmp_path / "decoded"
    run_in_process("decode", lat, "-o", dec)
    for f in meta["files"]:
        info = sf.info(dec / (Path(f["source"]).stem + ".wav"))
        assert info.samplerate == sample_rate and info.frames == f["samples"]
    return meta


def test_fsdd_encode_decode(shared, tmp_path):
    fsdd = shared / "data" / "fsdd"
    frames = _manifest(fsdd)
    # 20 files: two per digit, from the test split
    with open(fsdd / "labels.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test" and r["speaker"] == "jackson"][::5]
    lst = tmp_path / "subset.txt"
    lst.write_text("\n".join(str(fsdd / r["path"]) for r in rows) + "\n")
    meta = _round_trip(tmp_path, [lst], [lst], 8000, ["--gin", "pipelines/conv_ae.gin",
                                                                 "--gin", "data/fsdd8k.gin"])
    assert meta["num_files"] == len(rows) == 10
    for f in meta["files"]:
        n = frames[Path(f["source"]).name]
        assert f["samples"] == n and f["length"] == math.ceil(n / meta["hop"])


def test_librispeech_encode_decode(shared, tmp_path):
    ls = shared / "data" / "librispeech-100-mini"
    frames = _manifest(ls)
    files = (ls / "test.txt").read_text().split()[:3]
    lst = tmp_path / "three.txt"
    lst.write_text("\n".join(str(ls / p) for p in files) + "\n")
    meta = _round_trip(tmp_path, [lst], [lst], 16000, ["--gin", "pipelines/conv_ae.gin"])
    assert meta["num_files"] == 3
    total = 0
    for f in meta["files"]:
        n = frames[Path(f["source"]).name]
        assert f["samples"] == n and f["length"] == math.ceil(n / meta["hop"])
        total += f["length"]
    assert meta["total_frames"] == total
    # a list file with paths relative to the corpus folder works too (the corpus' own split lists)
    run_in_process("encode", "--run", tmp_path / "run", ls / "valid.txt", "-o", tmp_path / "valid", "--no-progress")
    valid = json.loads((tmp_path / "valid" / "meta.json").read_text())
    assert valid["num_files"] == 25
