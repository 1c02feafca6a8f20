"""The eosim command (docs/cli.md): run directories and their safety rules, Jepsen exit codes with
usage errors at 254, one-line errors for bad input and corrupted run directories, the two-part
verdict ("broken as expected"), and --json on every command."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eosim import _rundir
from eosim._cli import EXIT_BAD_INPUT, app, scenario_dir
from eosim._scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
RUN_FILES = [".eosim-run", "diagram.mmd", "history.jsonl", "observation.json", "results.json", "scenario.toml",
             "seed", "timeline.html", "trace.jsonl"]


def _bad_input(result, *words: str) -> None:
    """Exit 254, one line on stderr naming ``words``, no traceback, nothing on stdout."""
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_run_writes_a_complete_run_directory_and_exits_0_when_valid(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "zombie-fencing", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "zombie-fencing (seed 1): valid" in result.output and "guarantees: held" in result.output
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES
    results = json.loads((out / "results.json").read_text())
    assert results["valid"] is True and results["scenario"] == "zombie-fencing"
    assert results["verdict"] == "valid" and results["as-expected"] is True
    assert [h["kind"] for h in results["hints"]] == ["fenced"] and "hint (fenced): p1 got _FENCED" in result.output
    marker = json.loads((out / ".eosim-run").read_text())
    assert marker == {"format": 1, "scenario": "zombie-fencing", "seed": 1, "files": RUN_FILES[1:]}
    assert (out / "diagram.mmd").read_text().startswith("sequenceDiagram")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary sibling left behind


def test_default_run_directories_keep_history_with_a_latest_link(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(app, ["run", "zombie-fencing", "--seed", "3"])
    second = runner.invoke(app, ["run", "zombie-fencing", "--seed", "3"])
    assert first.exit_code == second.exit_code == 0
    store = tmp_path / "runs" / "zombie-fencing"
    runs = sorted(p.name for p in store.iterdir() if p.name != "latest")
    assert len(runs) == 2 and all(re.fullmatch(r"\d{8}T\d{6}\.\d{3}Z-seed-3(-\d+)?", r) for r in runs), runs
    assert os.readlink(store / "latest") == runs[-1]  # relative, to the newest
    assert f"run directory: runs/zombie-fencing/{runs[-1]}" in second.output
    assert (store / runs[0] / "trace.jsonl").read_bytes() == (store / runs[1] / "trace.jsonl").read_bytes()


def test_a_latest_that_is_not_a_symlink_is_left_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "runs" / "zombie-fencing"
    store.mkdir(parents=True)
    (store / "latest").write_text("my file")
    result = runner.invoke(app, ["run", "zombie-fencing"])
    assert result.exit_code == 0 and "warning" in result.stderr and "not a symlink" in result.stderr
    assert (store / "latest").read_text() == "my file" and len(list(store.iterdir())) == 2


def test_run_json_prints_results(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "zombie-fencing", "--out", str(tmp_path / "r"), "--json"])
    results = json.loads(result.stdout)
    assert results["valid"] is True and results["run-directory"] == str(tmp_path / "r")


def test_run_exits_1_when_an_expectation_fails_while_guarantees_hold(tmp_path: Path) -> None:
    text = (ROOT / "experiments/scenarios/zombie-fencing.toml").read_text()
    broken = tmp_path / "zombie-fencing.toml"
    broken.write_text(text.replace('read_committed = [[2, "k", "v2"]]', 'read_committed = [[2, "k", "v1"]]'))
    result = runner.invoke(app, ["run", str(broken), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "(seed 1): INVALID" in result.output and "guarantees: held" in result.output
    assert "as this scenario expects: NO" in result.output and "read_committed" in result.output
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["valid"] is True and results["as-expected"] is False  # Jepsen's valid: guarantees held
    assert any("read_committed" in m for m in results["expectation-mismatches"])


# --- usage errors: 254, never click's 2 (Jepsen's "unknown") -----------------------------------------


@pytest.mark.parametrize("args", [
    ["run", "zombie-fencing", "--seed", "abc"],
    ["run", "zombie-fencing", "--seed", "-1"],
    ["run", "zombie-fencing", "--no-such-option"],
    ["run"],
    ["check"],
    ["no-such-command"],
    ["scenarios", "--json", "extra-argument"],
], ids=["seed-abc", "seed-negative", "unknown-option", "run-missing-argument", "check-missing-argument",
        "unknown-command", "extra-argument"])
def test_usage_errors_exit_254(args: list[str], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "Error" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_the_installed_command_exits_254_on_usage_errors_and_prints_its_version() -> None:
    """Through the real entry point, not only CliRunner."""
    bad = subprocess.run([sys.executable, "-m", "eosim", "run", "zombie-fencing", "--seed", "abc"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == EXIT_BAD_INPUT and "Invalid value for '--seed'" in bad.stderr
    version = subprocess.run([sys.executable, "-m", "eosim", "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and re.fullmatch(r"eosim \d+\.\d+\.\d+\S*\n", version.stdout)


# --- --out never destroys what eosim did not create ---------------------------------------------------


def test_out_refuses_a_directory_that_is_not_a_run_directory_and_keeps_its_files(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.tex").write_text("precious")
    (mine / "sub" / "data.csv").write_text("1,2")
    _bad_input(runner.invoke(app, ["run", "zombie-fencing", "--out", str(mine)]),
               str(mine), "not an eosim run directory")
    assert (mine / "thesis.tex").read_text() == "precious" and (mine / "sub" / "data.csv").read_text() == "1,2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_out_refuses_the_empty_string_and_leaves_the_working_directory_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me")
    _bad_input(runner.invoke(app, ["run", "zombie-fencing", "--out", ""]), "--out is empty")
    _bad_input(runner.invoke(app, ["run", "zombie-fencing", "--out", "."]), "the current directory")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "keep me"


def test_out_refuses_a_file_and_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    _bad_input(runner.invoke(app, ["run", "zombie-fencing", "--out", str(tmp_path / "file")]), "not a directory")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    _bad_input(runner.invoke(app, ["run", "zombie-fencing", "--out", str(tmp_path / "link")]), "symbolic link")
    assert (tmp_path / "file").read_text() == "x"


def test_out_replaces_an_earlier_run_directory_but_not_one_holding_a_foreign_file(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", "zombie-fencing", "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["run", "bug-kafka-5494", "--out", str(out)]).exit_code == 0
    assert json.loads((out / "results.json").read_text())["scenario"] == "bug-kafka-5494"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    (out / "my-notes.md").write_text("mine")
    _bad_input(runner.invoke(app, ["run", "zombie-fencing", "--out", str(out)]), "my-notes.md", "did not write")
    assert (out / "my-notes.md").read_text() == "mine"
    assert json.loads((out / "results.json").read_text())["scenario"] == "bug-kafka-5494"


def test_out_may_be_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert runner.invoke(app, ["run", "zombie-fencing", "--out", str(tmp_path / "empty")]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == RUN_FILES


def test_a_failed_write_leaves_neither_a_half_written_run_nor_a_temporary_dir(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(TypeError):
        _rundir.write(out, {"a.txt": "ok", "b.txt": None}, scenario="s", seed=1, replace=True)  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


def test_diagram_does_not_overwrite_a_file_in_a_directory_eosim_did_not_mark(recorded: Path, tmp_path: Path) -> None:
    run = _copy(recorded, tmp_path / "run")
    (run / ".eosim-run").unlink()
    (run / "diagram.mmd").write_text("my own drawing")
    _bad_input(runner.invoke(app, ["diagram", str(run)]), "no .eosim-run marker", "not overwriting diagram.mmd")
    assert (run / "diagram.mmd").read_text() == "my own drawing"
    for drawn in ("diagram.mmd", "timeline.html"):
        (run / drawn).unlink()
    assert runner.invoke(app, ["diagram", str(run)]).exit_code == 0  # new files are fine


def test_sigterm_while_writing_leaves_no_temporary_directory(tmp_path: Path, monkeypatch) -> None:
    """main() turns SIGTERM into SystemExit, which unwinds through the write."""
    from eosim import _cli

    def killed(self, *args, **kwargs):
        _cli._terminate(15, None)

    monkeypatch.setattr(Path, "write_text", killed)
    with pytest.raises(SystemExit) as exit_info:
        _rundir.write(tmp_path / "run", {"a.txt": "x"}, scenario="s", seed=1, replace=True)
    assert exit_info.value.code == 143 and list(tmp_path.iterdir()) == []


def test_bad_scenario_exits_254_naming_file_and_field_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "zombie-fencing.toml"
    bad.write_text((ROOT / "experiments/scenarios/zombie-fencing.toml").read_text().replace(
        'partition = 0\nkey = "k"\nvalue = "v1"', 'partition = 9\nkey = "k"\nvalue = "v1"'))
    result = runner.invoke(app, ["run", str(bad), "--out", str(tmp_path / "r")])
    _bad_input(result, str(bad), "steps[2].partition")
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_unknown_scenario_name_is_bad_input() -> None:
    _bad_input(runner.invoke(app, ["run", "no-such-scenario"]), "no-such-scenario")


# --- reading run directories back ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recorded") / "run"
    assert runner.invoke(app, ["run", "zombie-fencing", "--out", str(out)]).exit_code == 0
    return out


def _copy(run: Path, to: Path) -> Path:
    to.mkdir()
    for p in run.iterdir():
        (to / p.name).write_bytes(p.read_bytes())
    return to


def test_replay_verifies_byte_identical_trace_and_detects_tampering(recorded: Path, tmp_path: Path) -> None:
    run = _copy(recorded, tmp_path / "run")
    replay = runner.invoke(app, ["replay", str(run)])
    assert replay.exit_code == 0 and "identical" in replay.output
    assert json.loads(runner.invoke(app, ["replay", str(run), "--json"]).stdout)["identical"] is True
    trace = run / "trace.jsonl"
    trace.write_text(trace.read_text().replace('"t":3', '"t":4', 1))
    assert runner.invoke(app, ["replay", str(run)]).exit_code == 1


def test_check_and_diagram_read_a_run_directory(recorded: Path, tmp_path: Path) -> None:
    run = _copy(recorded, tmp_path / "run")
    check = runner.invoke(app, ["check", str(run / "trace.jsonl")])
    assert check.exit_code == 0 and "valid" in check.output
    assert json.loads(runner.invoke(app, ["check", str(run), "--json"]).stdout)["valid"] is True
    (run / "diagram.mmd").unlink()
    (run / "timeline.html").unlink()
    diagram = runner.invoke(app, ["diagram", str(run)])
    assert diagram.exit_code == 0 and "ABORT marker @ out-0:1" in (run / "diagram.mmd").read_text()
    assert (run / "timeline.html").read_text().startswith("<!DOCTYPE html>")
    assert json.loads(runner.invoke(app, ["diagram", str(run), "--json"]).stdout)["mermaid"].startswith("sequence")


CORRUPTIONS = {
    "garbage-trace": ("trace.jsonl", b"this is not json\n", "trace.jsonl:1: not JSON"),
    "binary-trace": ("trace.jsonl", b"\x89PNG\r\n\x1a\n\x00\xff", "trace.jsonl: not UTF-8"),
    "empty-trace": ("trace.jsonl", b"", "trace.jsonl: empty"),
    "blank-trace": ("trace.jsonl", b"\n\n", "trace.jsonl: empty"),
    "array-event": ("trace.jsonl", b"[1, 2]\n", "trace.jsonl:1: expected a JSON object"),
    "event-without-kind": ("trace.jsonl", b'{"t": 0, "seq": 0, "node": "n", "data": {}}\n', "'kind'"),
    "binary-history": ("history.jsonl", bytes(range(256)), "history.jsonl: not UTF-8"),
    "history-bad-type": ("history.jsonl", b'{"f": "txn", "index": 0, "type": "maybe", "time": 0}\n',
                         "history.jsonl:1: type must be one of"),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_check_on_a_corrupted_run_directory_exits_254_saying_what_is_wrong(name: str, recorded: Path,
                                                                          tmp_path: Path) -> None:
    run = _copy(recorded, tmp_path / "run")
    file, content, says = CORRUPTIONS[name]
    (run / file).write_bytes(content)
    _bad_input(runner.invoke(app, ["check", str(run)]), says)
    if file == "trace.jsonl":
        _bad_input(runner.invoke(app, ["replay", str(run)]), says)
        _bad_input(runner.invoke(app, ["diagram", str(run)]), says)


def test_check_refuses_a_well_formed_trace_the_checkers_cannot_read(recorded: Path, tmp_path: Path) -> None:
    run = _copy(recorded, tmp_path / "run")
    (run / "history.jsonl").write_text('{"f": "txn", "index": 0, "type": "ok", "time": 0, "value": 7}\n')
    _bad_input(runner.invoke(app, ["check", str(run)]), "not a run eosim recorded")


@pytest.mark.parametrize("damage", ["no-results", "results-not-json", "results-without-scenario", "seed-garbage",
                                    "no-trace", "no-scenario", "scenario-garbage", "not-a-directory"])
def test_replay_on_a_corrupted_run_directory_exits_254_saying_what_is_wrong(damage: str, recorded: Path,
                                                                           tmp_path: Path) -> None:
    run = _copy(recorded, tmp_path / "run")
    says = {"no-results": "results.json: missing", "results-not-json": "results.json: not JSON",
            "results-without-scenario": "no \"scenario\"", "seed-garbage": "seed: expected a seed",
            "no-trace": "trace.jsonl: missing", "no-scenario": "scenario.toml: missing",
            "scenario-garbage": "scenario.toml", "not-a-directory": "not a directory"}[damage]
    if damage == "no-results":
        (run / "results.json").unlink()
    elif damage == "results-not-json":
        (run / "results.json").write_bytes(b"\x00\x01garbage")
    elif damage == "results-without-scenario":
        (run / "results.json").write_text("[]")
    elif damage == "seed-garbage":
        (run / "seed").write_text("-7\n")
    elif damage == "no-trace":
        (run / "trace.jsonl").unlink()
    elif damage == "no-scenario":
        (run / "scenario.toml").unlink()
    elif damage == "scenario-garbage":
        (run / "scenario.toml").write_text("[[[ not toml")
    else:
        run = run / "seed"
    _bad_input(runner.invoke(app, ["replay", str(run)]), says)


# --- verdicts for teaching ---------------------------------------------------------------------------------

BROKEN = [p for p in sorted(scenario_dir().glob("*.toml"))
          if p.stem.startswith("bug-") or load_scenario(p).scenario.expect_anomalies]


def test_every_bug_scenario_is_a_broken_pattern() -> None:
    assert {p.stem for p in scenario_dir().glob("bug-*.toml")} <= {p.stem for p in BROKEN}
    assert len(BROKEN) >= 20


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_a_broken_pattern_showing_exactly_its_anomalies_is_broken_as_expected(path: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", path.stem, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert f"{path.stem} (seed 1): broken as expected" in result.output and "guarantees: broken" in result.output
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["valid"] is False and results["as-expected"] is True  # Jepsen's valid: the guarantees
    assert results["verdict"] == "broken as expected"
    assert results["anomaly-types"] == results["expected-anomaly-types"]


def _edit_expected(tmp_path: Path, name: str, old: str, new: str) -> Path:
    copy = tmp_path / f"{name}.toml"
    text = (ROOT / f"experiments/scenarios/{name}.toml").read_text()
    assert old in text
    copy.write_text(text.replace(old, new))
    return copy


def test_an_extra_expected_anomaly_is_not_as_expected(tmp_path: Path) -> None:
    copy = _edit_expected(tmp_path, "bug-kafka-5494", 'expect_anomalies = ["missed-duplicate"]',
                          'expect_anomalies = ["missed-duplicate", "G1c"]')
    result = runner.invoke(app, ["run", str(copy), "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 1
    results = json.loads(result.stdout)
    assert results["verdict"] == "INVALID" and results["missing-anomaly-types"] == ["G1c"]


def test_a_different_anomaly_than_expected_is_not_as_expected(tmp_path: Path) -> None:
    copy = _edit_expected(tmp_path, "bug-kafka-5494", 'expect_anomalies = ["missed-duplicate"]',
                          'expect_anomalies = ["duplicate"]')
    result = runner.invoke(app, ["run", str(copy), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "as this scenario expects: NO" in result.output
    assert "the checkers report missed-duplicate, which the scenario does not expect" in result.output
    assert "the scenario says the checkers report duplicate, but they do not" in result.output


def test_an_unexpected_extra_anomaly_is_not_as_expected(tmp_path: Path) -> None:
    copy = _edit_expected(tmp_path, "fault-lost-response-duplicate",
                          'expect_anomalies = ["duplicate", "int-nonmonotonic-poll"]', 'expect_anomalies = ["duplicate"]')
    result = runner.invoke(app, ["run", str(copy), "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["unexpected-anomaly-types"] == ["int-nonmonotonic-poll"]


# --- the library ---------------------------------------------------------------------------------------------


def test_scenarios_lists_the_library_with_descriptions() -> None:
    result = runner.invoke(app, ["scenarios"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == len(list((ROOT / "experiments/scenarios").glob("*.toml")))
    assert any(line.startswith("zombie-fencing ") for line in lines)
    listed = json.loads(runner.invoke(app, ["scenarios", "--json"]).stdout)
    assert {"name": "bug-kafka-5494", "conformance": False, "expect-anomalies": ["missed-duplicate"]}.items() \
        <= next(s for s in listed if s["name"] == "bug-kafka-5494").items()


def test_a_run_that_never_finishes_is_unknown_exit_2(tmp_path: Path) -> None:
    """Jepsen's exit code 2: the steps were still running after eosim._scenario.MAX_SIM_MS of simulated time."""
    text = (ROOT / "experiments/scenarios/zombie-fencing.toml").read_text()
    stuck = tmp_path / "zombie-fencing.toml"
    sleep = '[[steps]]\nactor = "p2"\nop = "sleep"\nms = 3000000\n\n'  # two, each within the limit
    stuck.write_text(text.replace('[[expect.partitions]]', 2 * sleep + '[[expect.partitions]]', 1))
    result = runner.invoke(app, ["run", str(stuck), "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 2, result.output
    results = json.loads(result.stdout)
    assert results["valid"] == "unknown" and results["completed"] is False
    assert results["anomaly-types"] == ["incomplete"] and results["verdict"] == "unknown"


def load_study(name: str):
    from eosim._study import load

    return load(name)


def test_study_lists_the_studies_with_their_claims() -> None:
    result = runner.invoke(app, ["study", "--json"])
    assert result.exit_code == 0
    listing = {s["name"]: s["claim"] for s in json.loads(result.stdout)}
    assert listing["transaction_timeout"] == "When does a paused transactional producer get fenced?"
    assert {"dedup_window", "retries_duplicates", "transaction_cost"} <= set(listing)


def test_study_writes_its_tables_and_prints_the_markdown(tmp_path: Path) -> None:
    out = tmp_path / "study"
    result = runner.invoke(app, ["study", "transaction_timeout", "--seeds", "1", "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| pause / timeout |" in result.stdout
    assert {"runs.csv", "summary.csv", "summary.md"} <= {p.name for p in out.iterdir()}
    again = runner.invoke(app, ["study", "transaction-timeout", "--seeds", "1", "--workers", "1", "--out", str(out),
                                "--json"])
    document = json.loads(again.stdout)
    assert document["study"] == "transaction_timeout" and document["seeds"] == 1
    assert len(document["summary"]) == len(load_study("transaction_timeout").cells())


@pytest.mark.parametrize("args", [["study", "no_such_study"], ["study", "dedup_window", "--seeds", "0"],
                                  ["study", "dedup_window", "--workers", "0"]])
def test_study_bad_input_exits_254(args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "s")])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "Traceback" not in result.output and not (tmp_path / "s").exists()


def test_help_shows_no_type_on_flags_and_one_line_per_command() -> None:
    top = runner.invoke(app, ["--help"], terminal_width=100)
    assert top.exit_code == 0
    commands = top.stdout.split("Commands:\n", 1)[1].splitlines()
    names = [line.split()[0] for line in commands if line.strip()]
    assert len(names) == len(app.registered_commands) and {"run", "explain", "check", "study"} <= set(names)
    assert not any(line.rstrip().endswith("...") for line in commands)  # each summary whole, on its line
    for args in (["--help"], ["run", "--help"], ["explain", "--help"]):
        assert "<bool>" not in runner.invoke(app, args, terminal_width=100).stdout


def test_study_out_refuses_a_directory_eosim_did_not_create_and_keeps_its_files(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.md").write_text("notes\n")
    result = runner.invoke(app, ["study", "transaction_timeout", "--seeds", "1", "--workers", "1", "--out", str(mine)])
    _bad_input(result, str(mine), "not an eosim run directory")
    assert [p.name for p in mine.iterdir()] == ["summary.md"] and (mine / "summary.md").read_text() == "notes\n"


def test_study_run_directories_keep_history_with_a_latest_link(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["study", "transaction_timeout", "--seeds", "1", "--workers", "1", "--json"]
    first, second = (json.loads(runner.invoke(app, args).stdout)["run-directory"] for _ in range(2))
    store = tmp_path / "runs" / "studies" / "transaction_timeout"
    assert first != second and {Path(first).parent, Path(second).parent} == {Path("runs/studies/transaction_timeout")}
    assert sorted(p.name for p in store.iterdir()) == sorted([Path(first).name, Path(second).name, "latest"])
    assert os.readlink(store / "latest") == Path(second).name
    marker = json.loads((tmp_path / second / ".eosim-run").read_text())
    assert marker["study"] == "transaction_timeout" and marker["seeds"] == 1
    assert set(marker["files"]) == {p.name for p in (tmp_path / second).iterdir()} - {".eosim-run"}


def test_as_expected_compares_anomaly_types_not_counts() -> None:
    """docs/cli.md, "Verdicts": five duplicates where the scenario declares duplicate are as expected."""
    from eosim._checkers import Anomaly, CheckResult
    from eosim._verdict import Verdict

    five = CheckResult(False, [Anomaly(name="duplicate", description=f"v{i} twice", witness=()) for i in range(5)])
    assert Verdict(five, ("duplicate",), ()).status == "broken as expected"
    assert Verdict(five, ("G1a",), ()).status == "INVALID"


def test_the_verdict_names_the_release_and_its_bugs_when_they_may_explain_an_anomaly(tmp_path: Path) -> None:
    # On 4.0.0 the coordinator's timeout abort skips an epoch (KAFKA-19367, a bug of that release): the verdict
    # says which release's bugs the broker ran with, so the anomaly reads as Kafka's, not the client's.
    result = runner.invoke(app, ["run", "transaction-timeout-abort", "--kafka-version", "4.0.0",
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "guarantees: broken (epoch-skip)" in result.output
    assert "Kafka 4.0.0 as modelled: its bugs KAFKA-19367 (TV2 fence-abort bumps the epoch twice)" in result.output
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["kafka-release"] == "4.0.0"
    assert results["kafka-bugs"] == ["KAFKA-19367", "KAFKA-19690", "KAFKA-20785"]
    # The pinned release, a valid run, no switch: nothing to say.
    quiet = runner.invoke(app, ["run", "transaction-timeout-abort", "--out", str(tmp_path / "q")])
    assert quiet.exit_code == 0 and "as modelled" not in quiet.output
    # A switched-on bug is named apart from the release's own.
    switched = runner.invoke(app, ["run", "bug-kafka-9666", "--out", str(tmp_path / "s")])
    assert "switched on: KAFKA-9666 (failed epoch fences bump the epoch again and again)" in switched.output
