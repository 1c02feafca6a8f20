"""One seed decides everything: the same scenario and seed give a byte-identical trace, even across
processes with different PYTHONHASHSEED values (set and str-hash order must never leak into a run)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "experiments" / "scenarios" / "interleaved-transactions.toml"


def _trace(tmp_path: Path, hash_seed: str, seed: int) -> bytes:
    out = tmp_path / f"run-{hash_seed}-{seed}"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    proc = subprocess.run([sys.executable, "-m", "eosim", "run", str(SCENARIO), "--seed", str(seed), "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return (out / "trace.jsonl").read_bytes()


@pytest.mark.parametrize("seed", [1, 7])
def test_trace_is_byte_identical_across_hash_seeds(tmp_path: Path, seed: int) -> None:
    first = _trace(tmp_path, "0", seed)
    assert first.count(b"\n") > 100  # a real workload: several transactional producers and a reader
    assert _trace(tmp_path, "12345", seed) == first
    assert _trace(tmp_path, "random", seed) == first
