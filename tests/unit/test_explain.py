"""eosim explain: the teaching header, the run told step by step from the trace, the verdict."""

import json
from pathlib import Path

from typer.testing import CliRunner

from eosim._cli import EXIT_BAD_INPUT, app

runner = CliRunner()


def test_explain_tells_the_zombie_story(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["explain", "zombie-fencing"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Zombie fencing: two producers share one transactional.id.")
    story = out[out.index("What happened (seed 1"):]
    order = ["p1           asks the coordinator for a producer id for transactional.id 'shared-txn'",
             "broker-1     appends transactional 'v1' to out-0 at offset 0 (producer id 0)",
             "p2           asks the coordinator for a producer id",
             "broker-1     refuses p2's InitProducerId: CONCURRENT_TRANSACTIONS",
             "broker-1     writes an ABORT marker for producer id 0 into out-0 at offset 1",
             "p2           now holds producer id 0, epoch 2",
             "p1           commit_transaction() fails: _FENCED (fatal)",
             "broker-1     writes a COMMIT marker for producer id 0 into out-0 at offset 3",
             "zombie-fencing (seed 1): valid",
             "hint (fenced): p1 got _FENCED"]
    positions = [story.find(line) for line in order]
    assert -1 not in positions and positions == sorted(positions), list(zip(order, positions))
    assert "Heartbeat" not in story and "Fetch" not in story  # protocol chatter is left out
    assert list(tmp_path.iterdir()) == []  # explain writes no run directory


def test_explain_narrates_faults_and_retries_and_the_expected_break() -> None:
    result = runner.invoke(app, ["explain", "fault-lost-response-duplicate"])
    assert result.exit_code == 0, result.output
    assert "nemesis      FAULT 'lose-produce-response': the ProduceResponse to p1 is lost" in result.stdout
    assert "p1           sends 'v1' to out-0 again (a retry)" in result.stdout
    assert "broker-1     appends 'v1' to out-0 at offset 1" in result.stdout
    assert "fault-lost-response-duplicate (seed 1): broken as expected" in result.stdout


def test_explain_json() -> None:
    result = runner.invoke(app, ["explain", "zombie-fencing", "--json"])
    data = json.loads(result.stdout)
    assert data["header"].startswith("Zombie fencing") and data["seed"] == 1
    assert {"t": 522, "who": "p1", "text": "commit_transaction() fails: _FENCED (fatal)"} in data["narration"]
    assert data["results"]["verdict"] == "valid" and data["results"]["hints"][0]["kind"] == "fenced"


def test_explain_of_an_unknown_scenario_is_bad_input() -> None:
    result = runner.invoke(app, ["explain", "no-such-scenario"])
    assert result.exit_code == EXIT_BAD_INPUT and "no-such-scenario" in result.stderr
