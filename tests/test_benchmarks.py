"""The benchmark runner's table: a missed target is never reported as ok (figures themselves live in scripts/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture()
def bench_all(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import benchmark_all

    return benchmark_all


@pytest.mark.parametrize("met, code, status", [(False, 0, "target missed"), (False, 1, "target missed"),
                                               (True, 0, "ok"), (None, 0, "ok"), (None, 1, "exit 1")])
def test_missed_target_shows_in_the_table(bench_all, tmp_path, met, code, status):
    head = {"figure": "f", "value": 1.0, "unit": "u", "conditions": "c"}
    if met is not None:
        head.update(target=">= 2", met=met)
    script = tmp_path / "benchmark_fake.py"
    script.write_text(f"import sys\nprint('HEADLINE ' + {json.dumps(json.dumps(head))})\nsys.exit({code})\n")
    row = bench_all.run(script, tmp_path / "out", tmp_path, timeout=60)
    assert row["status"] == status
    table = bench_all.table([row])
    assert f"| {status} |" in table
    if met is not None:
        assert "| >= 2 |" in table
