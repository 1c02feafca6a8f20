"""The eosim command: run directories, Jepsen exit codes, clear one-line errors for bad input."""

import json
from pathlib import Path

from typer.testing import CliRunner

from eosim._cli import EXIT_BAD_INPUT, app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_run_writes_a_complete_run_directory_and_exits_0_when_valid(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "zombie-fencing", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "zombie-fencing (seed 1): valid" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "diagram.mmd", "history.jsonl", "observation.json", "results.json", "scenario.toml", "seed", "trace.jsonl"]
    results = json.loads((out / "results.json").read_text())
    assert results["valid"] is True and results["scenario"] == "zombie-fencing"
    assert (out / "diagram.mmd").read_text().startswith("sequenceDiagram")


def test_run_json_prints_results(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "zombie-fencing", "--out", str(tmp_path / "r"), "--json"])
    assert json.loads(result.output)["valid"] is True


def test_run_exits_1_when_an_expectation_fails(tmp_path: Path) -> None:
    text = (ROOT / "experiments/scenarios/zombie-fencing.toml").read_text()
    broken = tmp_path / "zombie-fencing.toml"
    broken.write_text(text.replace('read_committed = [[2, "k", "v2"]]', 'read_committed = [[2, "k", "v1"]]'))
    result = runner.invoke(app, ["run", str(broken), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "expectation-mismatch" in result.output and "read_committed" in result.output


def test_bad_scenario_exits_254_naming_file_and_field_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "zombie-fencing.toml"
    bad.write_text((ROOT / "experiments/scenarios/zombie-fencing.toml").read_text().replace(
        'partition = 0\nkey = "k"\nvalue = "v1"', 'partition = 9\nkey = "k"\nvalue = "v1"'))
    result = runner.invoke(app, ["run", str(bad), "--out", str(tmp_path / "r")])
    assert result.exit_code == EXIT_BAD_INPUT
    assert str(bad) in result.output and "steps[2].partition" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_unknown_scenario_name_is_bad_input() -> None:
    result = runner.invoke(app, ["run", "no-such-scenario"])
    assert result.exit_code == EXIT_BAD_INPUT and "no-such-scenario" in result.output


def test_replay_verifies_byte_identical_trace_and_detects_tampering(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", "zombie-fencing", "--out", str(out)]).exit_code == 0
    replay = runner.invoke(app, ["replay", str(out)])
    assert replay.exit_code == 0 and "identical" in replay.output
    trace = out / "trace.jsonl"
    trace.write_text(trace.read_text().replace('"t":3', '"t":4', 1))
    assert runner.invoke(app, ["replay", str(out)]).exit_code == 1


def test_check_and_diagram_read_a_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    runner.invoke(app, ["run", "zombie-fencing", "--out", str(out)])
    check = runner.invoke(app, ["check", str(out / "trace.jsonl")])
    assert check.exit_code == 0 and json.loads(check.output)["valid"] is True
    (out / "diagram.mmd").unlink()
    diagram = runner.invoke(app, ["diagram", str(out)])
    assert diagram.exit_code == 0 and "ABORT marker @ out-0:1" in (out / "diagram.mmd").read_text()


def test_scenarios_lists_the_library_with_descriptions() -> None:
    result = runner.invoke(app, ["scenarios"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == len(list((ROOT / "experiments/scenarios").glob("*.toml")))
    assert any(line.startswith("zombie-fencing ") for line in lines)


def test_a_run_that_never_finishes_is_unknown_exit_2(tmp_path: Path) -> None:
    """Jepsen's exit code 2: the steps were still running after eosim._runner.MAX_RUN_MS of simulated time."""
    text = (ROOT / "experiments/scenarios/zombie-fencing.toml").read_text()
    stuck = tmp_path / "zombie-fencing.toml"
    stuck.write_text(text.replace('[[expect.partitions]]', '[[steps]]\nactor = "p2"\nop = "sleep"\nms = 4000000\n\n'
                                                             '[[expect.partitions]]', 1))
    result = runner.invoke(app, ["run", str(stuck), "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 2, result.output
    results = json.loads(result.output)
    assert results["valid"] == "unknown" and results["completed"] is False
    assert results["anomaly-types"] == ["incomplete"]
