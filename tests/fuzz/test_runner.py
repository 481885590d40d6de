"""``benchmarks/fuzz.py`` counts executions and reports crashes: a short run of a real
target finds none and counts its executions; a target with a planted bug is reported as
a crash (exit status 1, the input kept), so "crashes = 0" in RESULTS.md means something."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz.py"), "--out", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=240, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


@pytest.mark.parametrize("engine", ["atheris", "mutation"])
def test_runner_counts_executions_and_finds_a_planted_bug(tmp_path, engine):
    if engine == "atheris":
        pytest.importorskip("atheris")
    result = _run(tmp_path / "ok", "--seconds", "2", "--engine", engine, "--targets", "amf0")
    assert result.returncode == 0, result.stdout + result.stderr
    row = re.search(r"^amf0\s+\S+\s+(\d+)\s+\d+\s+\S+\s+(\d+)$", result.stdout, re.M)
    assert row and int(row.group(1)) > 100 and row.group(2) == "0", result.stdout

    result = _run(tmp_path / "bug", "--seconds", "20", "--engine", engine, "--targets", "selftest",
                  env={"MEDIASRV_FUZZ_SELFTEST": "1"})
    assert result.returncode == 1, result.stdout + result.stderr
    row = re.search(r"^selftest\s+\S+\s+(\d+)\s+\d+\s+\S+\s+(\d+)", result.stdout, re.M)
    assert row and row.group(2) == "1", result.stdout
    crashes = list((tmp_path / "bug").glob("crash-selftest-*"))
    assert crashes and b"\xab" in crashes[0].read_bytes()
