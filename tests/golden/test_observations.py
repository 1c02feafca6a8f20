"""Golden observations: the full observation JSON (``Observation.to_json()``: every step's outcome and
values, every partition's HW, LSO and views, every group's committed offsets) of a few library
scenarios is pinned in ``tests/golden/observations/<scenario>.json``. Each pinned single-broker scenario
agreed with a real Kafka 4.1.2 broker when its file was written (``eosim conform``); the 3-broker ones pin
the simulator's claim until the real 3-node cluster compares them (issue 9). A change here is a change in
what the simulator claims Kafka does.

On a mismatch the test prints one line per difference (``eosim._observation.diff``: ``golden=... sim=...``).
If the change is intended (a model fix, a reworded scenario), rewrite the files and review the diff:

    EOSIM_UPDATE_GOLDEN=1 python -m pytest tests/golden/test_observations.py

With ``EOSIM_UPDATE_GOLDEN=1`` every pinned file is rewritten from the current simulator and the
test passes; commit the files with the change that explains them.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from eosim._observation import Observation, diff
from eosim._runner import run_file

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "experiments" / "scenarios"
GOLDEN = Path(__file__).resolve().parent / "observations"
UPDATE = os.environ.get("EOSIM_UPDATE_GOLDEN") == "1"

# scenario -> what it pins
PINNED = {
    "multi-partition-commit": "commit over two topics: one marker per partition",
    "multi-partition-abort": "abort over two topics, then a commit by the same producer",
    "zombie-fencing": "fencing: the zombie's commit fails with _FENCED",
    "ctp-commit": "consume-transform-produce with offsets in the transaction",
    "transaction-timeout-abort": "the coordinator's timeout abort; the late commit gets _FENCED",
    "unstable-offset-commit": "pending offsets: committed() times out for read_committed",
    "lso-blocks-read-committed": "an open transaction hides a later plain record from read_committed",
    "replication-group-coordinator-moves": "3 brokers: committed offsets survive the group coordinator's move",
    "replication-txn-coordinator-moves": "3 brokers: the new transaction coordinator completes a PrepareCommit",
    "replication-txn-coordinator-moves-across-leaders": "3 brokers: PrepareCommit across leaders, completed anew",
    "replication-acks-all-one-broker-down": "3 brokers: acks=all, min ISR 2, a broker down: accepted, HW 1",
    "replication-restarted-follower-takes-over": "3 brokers: a restarted follower rejoins the ISR, leads, loses nothing",
    "replication-below-min-isr-never-committed": "3 brokers: acks=1 below min ISR, HW stays, an ELR leader loses it",
    "replication-offline-until-last-replica-returns": "3 brokers: leaderless until the last ISR replica returns",
}


def _text(observation: Observation) -> str:
    return observation.to_json() + "\n"


@pytest.mark.parametrize("name", sorted(PINNED), ids=str)
def test_observation_matches_golden(name: str) -> None:
    observation = run_file(SCENARIOS / f"{name}.toml").observation
    path = GOLDEN / f"{name}.json"
    actual = _text(observation)
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing: run with EOSIM_UPDATE_GOLDEN=1 to write it"
    expected_text = path.read_text(encoding="utf-8")
    if expected_text == actual:
        return
    lines = diff(Observation.from_json(expected_text), observation, labels=("golden", "sim"))
    if not lines:  # same content, different bytes (formatting): show the text diff
        lines = list(difflib.unified_diff(expected_text.splitlines(), actual.splitlines(), "golden", "sim",
                                          lineterm=""))
    pytest.fail(f"{name} ({PINNED[name]}) no longer observes what {path.name} pins "
                f"(EOSIM_UPDATE_GOLDEN=1 rewrites it):\n  " + "\n  ".join(lines), pytrace=False)


def test_no_stale_golden_files() -> None:
    stale = sorted(p.stem for p in GOLDEN.glob("*.json") if p.stem not in PINNED)
    assert not stale, f"golden files without a pinned scenario: {stale}"


def test_golden_files_round_trip() -> None:
    """A golden file is exactly what to_json writes for the observation it holds."""
    for name in PINNED:
        path = GOLDEN / f"{name}.json"
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert _text(Observation.from_json(text)) == text, path.name
