"""Every run ends, whatever the scenario: the runner stops at the format's limits of simulated time
(settle included) and of events (eosim._scenario.MAX_SIM_MS, MAX_EVENTS), and such a run is Jepsen's
unknown, not valid or invalid."""

import pytest

from eosim import _scenario as sc
from eosim._runner import run_scenario
from eosim._scenario import load_scenario_text

SCENARIO = """\
[scenario]
name = "limits"
description = "d"
conformance = false

[[topics]]
name = "t"

[actors.p1]
kind = "producer"
config = { "transactional.id" = "tx" }

[[steps]]
actor = "p1"
op = "init_transactions"
"""


def sleep(ms: int) -> str:
    return f'[[steps]]\nactor = "p1"\nop = "sleep"\nms = {ms}\n'


def pause(ms: int) -> str:
    return f'[[steps]]\nactor = "nemesis"\nop = "pause"\nnodes = ["p1"]\nms = {ms}\n'


def assert_incomplete(outcome) -> None:
    assert not outcome.completed and outcome.result.valid == "unknown" and outcome.exit_code == 2
    (stuck,) = [a for a in outcome.result.anomalies if a.name == "incomplete"]
    assert f"{sc.MAX_SIM_MS} ms of simulated time and {sc.MAX_EVENTS} events" in stuck.description


def test_a_run_within_the_limits_completes():
    outcome = run_scenario(load_scenario_text(SCENARIO + sleep(1000) + pause(1000), "limits"))
    assert outcome.completed and outcome.exit_code == 0


def test_the_settle_phase_is_within_the_simulated_time_limit():
    """The steps end at 3,000 s, but the paused producer wakes only at 6,000 s: the settle phase stops at
    the limit instead of running on (it used to run until the last actor woke, however late)."""
    outcome = run_scenario(load_scenario_text(SCENARIO + sleep(3_000_000) + pause(3_000_000), "limits"))
    assert max(event.t for event in outcome.trace) <= sc.MAX_SIM_MS
    assert_incomplete(outcome)


def test_a_run_stops_after_max_events(monkeypatch: pytest.MonkeyPatch):
    """A nemesis striking every few ms keeps the simulation busy: the event budget ends it, whatever
    the simulated time."""
    monkeypatch.setattr(sc, "MAX_EVENTS", 2_000)
    nemesis = "[nemesis]\ninterval_ms = 2\nduration_ms = 2\n"
    outcome = run_scenario(load_scenario_text(SCENARIO + sleep(600_000) + nemesis, "limits"))
    assert max(event.t for event in outcome.trace) < 600_000
    assert_incomplete(outcome)
