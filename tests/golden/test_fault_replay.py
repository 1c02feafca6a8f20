"""Runs with faults replay byte for byte: the same scenario and seed give the same trace in separate
processes with different PYTHONHASHSEED values (the random nemesis draws only from the seed's
"nemesis" stream), and ``eosim replay`` confirms a fault run directory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "experiments" / "scenarios"


def _run(tmp_path: Path, scenario: str, hash_seed: str, seed: int) -> Path:
    out = tmp_path / f"{scenario}-{hash_seed}-{seed}"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    proc = subprocess.run([sys.executable, "-m", "eosim", "run", str(SCENARIOS / f"{scenario}.toml"), "--seed",
                           str(seed), "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # valid, or the anomalies it shows
    return out


@pytest.mark.parametrize("scenario, seed", [("fault-random-nemesis", 1), ("fault-random-nemesis", 7),
                                            ("fault-pause-zombie-fenced", 1), ("fault-disconnect-duplicate", 3)])
def test_fault_runs_are_byte_identical_across_hash_seeds(tmp_path: Path, scenario: str, seed: int) -> None:
    first = (_run(tmp_path, scenario, "0", seed) / "trace.jsonl").read_bytes()
    assert b'"kind":"fault.' in first
    assert (_run(tmp_path, scenario, "4242", seed) / "trace.jsonl").read_bytes() == first
    assert (_run(tmp_path, scenario, "random", seed) / "trace.jsonl").read_bytes() == first


def test_replay_confirms_a_random_nemesis_run(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "fault-random-nemesis", "random", 11)
    proc = subprocess.run([sys.executable, "-m", "eosim", "replay", str(run_dir)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONHASHSEED": "random"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical" in proc.stdout
