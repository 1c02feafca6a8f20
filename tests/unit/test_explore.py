"""eosim explore (sim/_explore.py) and the fault rules armed by the k-th request of an API."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from eosim import _explore
from eosim._cli import EXIT_BAD_INPUT, EXIT_INVALID, app, scenario_dir
from eosim._runner import run_file, run_scenario
from eosim._scenario import ScenarioError, load_scenario, load_scenario_text, scenario_from_dict

runner = CliRunner()

TRIGGERED = """# Armed once the second Produce request is sent, the rule drops that request's response: the plain
# producer's retry writes b twice.
[scenario]
name = "triggered"
description = "a rule armed by a message count"
conformance = false

[[topics]]
name = "out"

[actors.p1]
kind = "producer"
config = { "enable.idempotence" = false, "socket.timeout.ms" = 1000 }

[[faults]]
name = "lose"
action = "drop"
message = "Produce"
direction = "response"
after_message = "Produce"
after_count = 2
{extra}
[[steps]]
actor = "p1"
op = "produce"
topic = "out"
partition = 0
value = "a"

[[steps]]
actor = "p1"
op = "flush"

[[steps]]
actor = "p1"
op = "produce"
topic = "out"
partition = 0
value = "b"

[[steps]]
actor = "p1"
op = "flush"
"""


def test_a_rule_armed_by_the_kth_request_strikes_only_after_it() -> None:
    outcome = run_scenario(load_scenario_text(TRIGGERED.replace("{extra}", ""), "triggered"))
    faults = [e for e in outcome.trace if e.kind.startswith("fault.")]
    assert [(e.kind, e.count) for e in faults[:1]] == [("fault.arm", 2)]
    drops = [e for e in faults if e.kind == "fault.drop"]
    assert len(drops) == 1 and drops[0].t > faults[0].t
    # the plain producer retries the batch whose response was lost: "b" twice, "a" once
    values = [v for p in outcome.observation.partitions for _o, _k, v in p.read_uncommitted]
    assert values == ["a", "b", "b"]
    assert "duplicate" in outcome.result.anomaly_types


ANCHORED = """[scenario]
name = "anchored"
description = "a rule armed by one node's message count"
conformance = false

[[topics]]
name = "out"

[actors.p1]
kind = "producer"
config = { "enable.idempotence" = false, "socket.timeout.ms" = 1000 }

[actors.p2]
kind = "producer"
config = { "enable.idempotence" = false, "socket.timeout.ms" = 1000 }

[[faults]]
name = "lose"
action = "drop"
message = "Produce"
direction = "response"
after_message = "Produce"
after_count = {count}
{node}
[[steps]]
actor = "p1"
op = "produce"
topic = "out"
partition = 0
value = "a"

[[steps]]
actor = "p1"
op = "flush"

[[steps]]
actor = "p2"
op = "produce"
topic = "out"
partition = 0
value = "b"

[[steps]]
actor = "p2"
op = "flush"

[[steps]]
actor = "p2"
op = "produce"
topic = "out"
partition = 0
value = "c"

[[steps]]
actor = "p2"
op = "flush"
"""


@pytest.mark.parametrize("count, node, values", [
    (1, "", ["a", "a", "b", "c"]),  # anyone's first Produce: p1's, whose answer is lost
    (1, 'after_node = "p2"', ["a", "b", "b", "c"]),  # p2's first Produce is the second one sent
    (2, 'after_node = "p2"', ["a", "b", "c", "c"]),
    (2, 'after_node = "p1"', ["a", "b", "c"]),  # p1 sends one Produce: never armed
])
def test_a_rule_anchored_to_a_node_counts_only_the_requests_that_node_sent(count: int, node: str,
                                                                           values: list[str]) -> None:
    outcome = run_scenario(load_scenario_text(ANCHORED.replace("{count}", str(count)).replace("{node}", node),
                                              "anchored"))
    assert [v for p in outcome.observation.partitions for _o, _k, v in p.read_uncommitted] == values
    assert len([e for e in outcome.trace if e.kind == "fault.arm"]) == (0 if node.endswith('"p1"') else 1)


def test_the_loader_refuses_an_anchor_without_a_trigger_or_on_no_node() -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario_text(ANCHORED.replace("after_message = \"Produce\"\nafter_count = {count}\n", "")
                           .replace("{node}", 'after_node = "p2"'), "anchored")
    assert err.value.location == "faults[0].after_node"
    with pytest.raises(ScenarioError) as err:
        load_scenario_text(ANCHORED.replace("{count}", "1").replace("{node}", 'after_node = "p9"'), "anchored")
    assert err.value.location == "faults[0].after_node"


@pytest.mark.parametrize("extra, location", [
    ("after_step = 1", "faults[0].after_message"),
    ('after_message_typo = 1', "faults[0]"),
])
def test_the_loader_refuses_a_rule_with_two_arming_points(extra: str, location: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario_text(TRIGGERED.replace("{extra}", extra), "triggered")
    assert err.value.location.startswith(location)


def test_the_loader_refuses_an_unknown_trigger_api_and_a_lone_count() -> None:
    with pytest.raises(ScenarioError, match="no API"):
        load_scenario_text(TRIGGERED.replace('after_message = "Produce"', 'after_message = "Nope"')
                           .replace("{extra}", ""), "triggered")
    with pytest.raises(ScenarioError, match="only with after_message"):
        load_scenario_text(TRIGGERED.replace('after_message = "Produce"\n', "").replace("{extra}", ""), "triggered")


def _base(name: str) -> dict:
    return _explore.base_document(load_scenario(scenario_dir() / f"{name}.toml"))


def test_a_finding_counts_only_when_the_run_is_clean_with_the_switch_off(tmp_path: Path) -> None:
    """Around the KAFKA-6119 scenario's workload the switch makes runs INVALID; written out, the finding
    is a run directory that `eosim run` reproduces with exit 1, and the same scenario without the switch
    is valid."""
    found = _explore.campaign(base=_base("bug-kafka-6119"), reintroduce=("KAFKA-6119",), budget=20, seed=0)
    assert found.finding is not None
    assert "hanging-transaction" in found.finding.anomalies
    assert found.finding.steps_shrunk <= found.finding.steps_found
    (written,) = _explore.write_findings(tmp_path / "out", [found.finding], ("KAFKA-6119",))
    again = run_file(written / "scenario.toml")
    assert again.exit_code == EXIT_INVALID
    assert json.loads((written / "results.json").read_text())["valid"] is False
    assert run_scenario(load_scenario_text(_explore.scenario_toml(found.finding.document, "no switch"),
                                           "scenario")).verdict.checks.valid is True


def _examples():
    """A campaign clock that ticks once per reading (about once per example): the budget counts examples, so
    what a test's campaign does does not depend on the machine's load."""
    return itertools.count().__next__


def test_without_a_switch_a_correct_workload_is_clean_for_a_short_search() -> None:
    result = _explore.campaign(base=_base("zombie-fencing"), budget=30, seed=1, clock=_examples())
    assert result.finding is None and result.runs > 0


def test_a_document_judged_once_is_never_simulated_again(monkeypatch) -> None:
    """Rounds restart from Hypothesis's simplest examples and the targeted phase redraws documents: a repeat
    is not run, and the runs a campaign reports are the distinct simulations it made."""
    simulated: list[str] = []
    run = _explore._run

    def counting(document: dict):
        simulated.append(json.dumps(document, sort_keys=True))
        return run(document)

    monkeypatch.setattr(_explore, "_run", counting)
    monkeypatch.setattr(_explore, "ROUND_EXAMPLES", 3)  # several rounds within the budget, each from the simplest
    result = _explore.campaign(budget=40, seed=3, clock=_examples())
    assert result.finding is None and result.runs == len(simulated) >= 4
    assert len(set(simulated)) == len(simulated)


def test_cli_explore_writes_finding_directories_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "found"
    result = runner.invoke(app, ["explore", "bug-kafka-6119", "--reintroduce", "KAFKA-6119", "--budget", "20",
                                 "--out", str(out), "--json"])
    assert result.exit_code == EXIT_INVALID, result.output
    report = json.loads(result.stdout)
    assert report["findings"][0]["anomalies"] == ["hanging-transaction"]
    again = runner.invoke(app, ["run", str(out / "finding-1" / "scenario.toml"), "--out", str(tmp_path / "again")])
    assert again.exit_code == EXIT_INVALID, again.output


def test_cli_explore_refuses_an_unknown_bug_and_an_occupied_out(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explore", "--reintroduce", "KAFKA-1", "--budget", "1"])
    assert result.exit_code == EXIT_BAD_INPUT and "KAFKA-1" in result.stderr
    (tmp_path / "mine.txt").write_text("keep me")
    result = runner.invoke(app, ["explore", "--budget", "1", "--out", str(tmp_path)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert (tmp_path / "mine.txt").read_text() == "keep me"


BASE_14920 = _explore.base_document(load_scenario(scenario_dir() / "bug-kafka-14920.toml"))


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(_explore.documents(BASE_14920, ("KAFKA-14920",), seed=0))
def test_around_a_scenario_its_steps_stay_in_order_and_its_rules_keep_their_step(document: dict) -> None:
    own = [s for s in document["steps"] if s["actor"] != "nemesis"]
    assert own == BASE_14920["steps"]
    (rule,) = [r for r in document["faults"] if r["name"] == "verification-fails"]
    assert document["steps"][rule["after_step"]] == BASE_14920["steps"][4]


def test_a_random_nemesis_is_a_schedule_that_replays_exactly() -> None:
    """Generation (draw_strikes) is apart from execution: the random nemesis' strikes, written into the
    scenario file as [[nemesis.strikes]], give the same run byte for byte."""
    from eosim._explore import scenario_toml
    from eosim._faults import nemesis_schedule
    from eosim._scenario import scenario_to_dict

    scenario = load_scenario(scenario_dir() / "fault-random-nemesis.toml")
    scheduled = nemesis_schedule(scenario, strikes=200)
    assert len(scheduled.nemesis.strikes) == 200 and scheduled.nemesis.strikes[0].at_ms > 0
    text = scenario_toml(scenario_to_dict(scheduled), "the random nemesis' schedule")
    replayed = load_scenario_text(text, "fault-random-nemesis")
    assert replayed.nemesis.strikes == scheduled.nemesis.strikes
    random_run, replay = run_scenario(scenario), run_scenario(replayed)
    assert list(replay.trace.lines()) == list(random_run.trace.lines())
    assert any(e.kind == "fault.arm" for e in replay.trace)


def test_clocked_strikes_reach_the_broker() -> None:
    """Strikes of the broker kinds: a txn-log failure, a coordinator failover and a broker restart on the
    clock, while a transactional producer works; every one shows in the trace and the run stays valid."""
    text = """[scenario]
name = "strikes"
description = "clocked broker strikes"
conformance = false

[[topics]]
name = "out"

[actors.p1]
kind = "producer"
config = { "transactional.id" = "t" }

[[nemesis.strikes]]
at_ms = 600
kind = "txn-log"
duration_ms = 100
count = 1
error = "NOT_ENOUGH_REPLICAS"

[[nemesis.strikes]]
at_ms = 1000
kind = "coordinator-failover"
duration_ms = 300

[[nemesis.strikes]]
at_ms = 3000
kind = "broker-restart"
duration_ms = 500
""" + "".join(f'\n[[steps]]\nactor = "p1"\nop = "{op}"\n' for op in ("init_transactions", "begin_transaction")) + """
[[steps]]
actor = "p1"
op = "produce"
topic = "out"
value = "v"

[[steps]]
actor = "p1"
op = "sleep"
ms = 5000

[[steps]]
actor = "p1"
op = "commit_transaction"
"""
    outcome = run_scenario(load_scenario_text(text, "strikes"))
    kinds = [e.kind for e in outcome.trace]
    assert "fault.arm" in kinds and "txn.resign" in kinds
    assert any(k.startswith("broker.") and "crash" in k for k in kinds), sorted(set(kinds))
    assert outcome.verdict.checks.valid is True


@pytest.mark.parametrize("strike, location", [
    ('kind = "pause"\nduration_ms = 10', "nemesis.strikes[0].target"),
    ('kind = "broker-restart"\ntarget = "p1"\nduration_ms = 10', "nemesis.strikes[0].target"),
    ('kind = "drop"\ntarget = "p1"\nduration_ms = 10', "nemesis.strikes[0].count"),
    ('kind = "txn-log"\nduration_ms = 10\ncount = 1\nerror = "NOT_COORDINATOR"', "nemesis.strikes[0].error"),
])
def test_bad_strikes_are_refused_by_location(strike: str, location: str) -> None:
    text = TRIGGERED.replace("{extra}", "").replace("[[steps]]", f"[[nemesis.strikes]]\nat_ms = 0\n{strike}\n\n[[steps]]", 1)
    with pytest.raises(ScenarioError) as err:
        load_scenario_text(text, "triggered")
    assert location in str(err.value)


FINDING = Path(__file__).resolve().parents[2] / "experiments" / "findings" / "librdkafka-abort-purge-sequence-reuse.toml"


def test_without_a_switch_a_known_finding_is_counted_not_reported() -> None:
    """Around a run of documented librdkafka behaviour (sequence reuse after an abort purges a retried
    batch, eosim._findings) the search meets it again and again: counted per known finding, never a
    finding, and the search goes on."""
    result = _explore.campaign(base=_explore.base_document(load_scenario(FINDING)), budget=150, seed=0,
                               clock=_examples())
    assert result.finding is None
    assert result.known.get("txn-abort-sequence-reuse", 0) > 0
    assert set(result.known) == {"txn-abort-sequence-reuse"}


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(_explore.documents(_explore.base_document(load_scenario(FINDING)), (), seed=0))
def test_drawn_rules_never_take_the_name_of_a_base_rule(document: dict) -> None:
    """The finding's own rules are f1 and f2, the names the generator gives its rules too."""
    names = [rule["name"] for rule in document.get("faults", ())]
    assert len(names) == len(set(names))
    scenario_from_dict(document, name="scenario", header="test")


def test_a_bug_the_explored_release_has_already_is_refused() -> None:
    """KAFKA-20785 is in the pinned 4.1.2 (models/bugs.py): with the switch off a run has it all the same,
    so no run could be a finding. Kafka 4.3.2 does not have it: there the switch can be searched for."""
    result = runner.invoke(app, ["explore", "--reintroduce", "KAFKA-20785", "--budget", "1"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "KAFKA-20785" in result.stderr and "4.1.2" in result.stderr and "Traceback" not in result.output
    with pytest.raises(ValueError, match="4.0.0"):
        _explore.check_bugs(("KAFKA-19367",), _explore.release_of({"cluster": {"eosim.kafka.version": "4.0.0"}}))
    _explore.check_bugs(("KAFKA-20785",), "4.3.2")
    _explore.check_bugs(("KAFKA-19367",))


BASE_REPLICATED = _explore.base_document(load_scenario(scenario_dir() / "replication-acks-all-survives-failover.toml"))


@settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(_explore.documents(BASE_REPLICATED, (), seed=0))
def test_around_a_replicated_scenario_its_topics_keep_their_replicas_and_config(document: dict) -> None:
    """A search around a 3-broker scenario explores its replicated topic (replication_factor 3,
    min.insync.replicas 2), not a single-replica copy of it."""
    assert document["topics"] == BASE_REPLICATED["topics"]
    assert document["topics"][0]["replication_factor"] == 3
    scenario = scenario_from_dict(document, name="scenario", header="test")
    assert scenario.topic("out").replication_factor == 3


REPLICATED_BASES = sorted(p.stem for p in scenario_dir().glob("replication-*.toml"))


@pytest.mark.parametrize("name", REPLICATED_BASES)
def test_every_schedule_drawn_around_a_replicated_scenario_loads(name: str) -> None:
    """No coordinator_failover on a cluster, and no drawn kill of a broker the scenario has down itself: every
    drawn document is one the loader takes (a refused one would end the search as a crash of eosim's)."""
    base = _explore.base_document(load_scenario(scenario_dir() / f"{name}.toml"))

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(_explore.documents(base, (), seed=0))
    def loads(document: dict) -> None:
        scenario_from_dict(document, name="scenario", header="test")

    loads()


def test_a_simulator_crash_is_written_as_a_scenario_that_reproduces_it_and_exits_255(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    """An exception inside a run is a bug of eosim's: explore shrinks the drawn scenario like any failure and
    writes it with the traceback, instead of ending in a traceback that loses the scenario."""
    real_run = _explore._run

    def crashing(document: dict) -> object:
        if any(step["op"] == "produce" for step in document["steps"]):
            raise RuntimeError("boom: a produce step")
        return real_run(document)

    monkeypatch.setattr(_explore, "_run", crashing)
    out = tmp_path / "x"
    result = CliRunner().invoke(app, ["explore", "--budget", "20", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 255, result.output
    assert "Traceback" not in result.stderr and "crash-1/scenario.toml reproduces it" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["crash-1"]  # no staging directory left behind
    assert "RuntimeError: boom: a produce step" in (out / "crash-1" / "traceback.txt").read_text()
    scenario = load_scenario(out / "crash-1" / "scenario.toml")
    assert [s.op for s in scenario.steps].count("produce") >= 1
    assert len(scenario.steps) <= 3  # shrunk by Hypothesis, as a finding is

def test_without_a_switch_idempotent_producers_never_time_a_message_out_either_client():
    """librdkafka's infinite message.timeout.ms is 0; the Java client has none and gets the largest one."""
    from eosim._client.config import validate_config

    workload = _explore.strategies.Workload({"out": 1}, {
        "lib": {"kind": "producer", "config": {"enable.idempotence": True}},
        "java": {"kind": "producer", "config": {"eosim.client": "java"}},  # idempotent by default
        "javaplain": {"kind": "producer", "config": {"eosim.client": "java", "enable.idempotence": False}},
        "tx": {"kind": "producer", "config": {"transactional.id": "t", "eosim.client": "java"}},
    }, {})
    configs = {a: spec["config"] for a, spec in _explore._without_message_timeouts(workload).actors.items()}
    assert configs["lib"]["message.timeout.ms"] == 0
    assert configs["java"]["message.timeout.ms"] == _explore.INT32_MAX
    assert "message.timeout.ms" not in configs["javaplain"] and "message.timeout.ms" not in configs["tx"]
    assert validate_config("producer", configs["java"]).message_timeout_ms == _explore.INT32_MAX


def test_a_base_whose_own_run_is_invalid_is_refused_with_exit_254() -> None:
    """at-least-once-commit-after reprocesses by design (duplicate): every run around it would be INVALID for that,
    and the search would report the base's own anomaly as its finding. A base of documented behaviour (a known
    finding) is searched: its anomaly is counted as known (above)."""
    result = runner.invoke(app, ["explore", "at-least-once-commit-after", "--budget", "1"])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "INVALID on its own" in result.stderr and "duplicate" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(_explore.InvalidBase):
        _explore.explore(base=_base("at-least-once-commit-after"), budget=1)
    _explore.check_base(_explore.base_document(load_scenario(FINDING)), 0)  # explained: accepted


def test_a_run_past_its_event_budget_is_cut_and_counted_not_judged(monkeypatch) -> None:
    """A drawn run has its own event budget (RUN_EVENTS): one that reaches it stops with an unknown verdict and is
    counted as cut, so no drawn scenario stalls a campaign and no truncated run becomes a finding."""
    monkeypatch.setattr(_explore, "RUN_EVENTS", 60)
    result = _explore.campaign(budget=20, seed=0, clock=_examples())
    assert result.finding is None and 0 < result.cut <= result.runs
    cut = _explore._run(_base("zombie-fencing"))
    assert not cut.completed and cut.verdict.checks.valid == "unknown"
    assert "60 events" in cut.verdict.checks.anomalies[-1].description


def test_sigterm_during_a_campaign_reaches_the_callers_handler_not_hypothesis() -> None:
    """Hypothesis takes a SystemExit raised inside a test for a failing example and replays it (a traceback, exit
    255): a campaign carries SIGTERM past it to the caller's own handler, as the CLI's (exit 143), and restores it."""
    import os
    import signal

    def cli_like(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    def kill_at_third_run(runs: int, _seconds: float) -> None:
        if runs == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, cli_like)
    try:
        with pytest.raises(SystemExit) as exit_info:
            _explore.campaign(budget=30, seed=1, progress=kill_at_third_run)
        assert exit_info.value.code == 143
        assert signal.getsignal(signal.SIGTERM) is cli_like
    finally:
        signal.signal(signal.SIGTERM, previous)
