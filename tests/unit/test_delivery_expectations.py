"""Per-record delivery expectations (a produce step's ``expect_delivery``): the loader, the check, and
the simulator's report for a fenced zombie's record (issue 13: it never came, where Kafka reports
INVALID_PRODUCER_EPOCH in the flush that fails with _FENCED)."""

from __future__ import annotations

import attrs
import pytest

from eosim._cli import scenario_dir
from eosim._observation import Observation, StepObservation, check_expectations
from eosim._runner import run_scenario
from eosim._scenario import ExpectedDelivery, ScenarioError, load_scenario, load_scenario_text, scenario_to_dict

TEXT = """\
# Fixture: one produce with a delivery expectation.
[scenario]
name = "dx"
description = "d"

[[topics]]
name = "out"

[actors.p]
kind = "producer"

[[steps]]
actor = "p"
op = "produce"
topic = "out"
partition = 0
value = "v"
expect_delivery = EXPECT
"""


def load(expect: str):
    return load_scenario_text(TEXT.replace("EXPECT", expect), "dx")


def test_the_table_loads_and_round_trips():
    s = load('{ error = "INVALID_PRODUCER_EPOCH", fatal = false, abortable = true }')
    assert s.steps[0].expect_delivery == ExpectedDelivery(error="INVALID_PRODUCER_EPOCH", fatal=False,
                                                          abortable=True)
    assert scenario_to_dict(s)["steps"][0]["expect_delivery"] == {
        "error": "INVALID_PRODUCER_EPOCH", "fatal": False, "abortable": True}
    assert load("{ offset = 3 }").steps[0].expect_delivery == ExpectedDelivery(offset=3)


@pytest.mark.parametrize(("expect", "location", "reason"), [
    ('{ offset = 1, error = "_MSG_TIMED_OUT" }', "steps[0].expect_delivery.offset", "a failed delivery has no offset"),
    ("{ offset = 1, fatal = true }", "steps[0].expect_delivery.fatal", "the flags describe a delivery error"),
    ('{ error = "NONE", retriable = false }', "steps[0].expect_delivery.retriable", "the flags describe"),
    ('{ error = "fenced" }', "steps[0].expect_delivery.error", "an error name in capitals"),
    ("{ offset = -1 }", "steps[0].expect_delivery.offset", ""),
    ("{ ofset = 1 }", "steps[0].expect_delivery.ofset", "did you mean \"offset\""),
])
def test_refusals_are_located(expect, location, reason):
    with pytest.raises(ScenarioError) as info:
        load(expect)
    assert info.value.location.startswith(location) and reason in info.value.reason, str(info.value)


def _observed(values: dict) -> Observation:
    return Observation(scenario="dx", partitions=[], groups=[],
                       steps=[StepObservation(index=0, actor="p", op="produce", outcome="ok", values=values)])


FENCED = {"delivery_error": {"name": "INVALID_PRODUCER_EPOCH", "fatal": False, "retriable": False,
                             "abortable": False}}


@pytest.mark.parametrize(("expect", "values", "problem"), [
    ("{ offset = 3 }", {"delivery": ["out", 0, 3]}, None),
    ("{ offset = 3 }", {"delivery": ["out", 0, 4]}, "expected delivery at offset 3, got delivery at offset 4"),
    ("{ offset = 3 }", {}, "expected delivery at offset 3, got no delivery report"),
    ("{ offset = 3 }", FENCED, "expected delivery at offset 3, got delivery error INVALID_PRODUCER_EPOCH"),
    ('{ error = "NONE" }', {"delivery": ["out", 0, 9]}, None),
    ('{ error = "NONE" }', {}, "expected delivery, got no delivery report"),
    ('{ error = "INVALID_PRODUCER_EPOCH", fatal = false, retriable = false, abortable = false }', FENCED, None),
    ('{ error = "INVALID_PRODUCER_EPOCH" }', {}, "expected delivery error INVALID_PRODUCER_EPOCH, got no delivery report"),
    ('{ error = "_FENCED" }', FENCED, "expected delivery error _FENCED, got delivery error INVALID_PRODUCER_EPOCH"),
    ('{ error = "INVALID_PRODUCER_EPOCH", fatal = true }', FENCED,
     "expected the delivery error's fatal to be true, got false"),
])
def test_the_check_says_what_differs(expect, values, problem):
    problems = check_expectations(load(expect), _observed(values))
    assert problems == ([] if problem is None else [f"steps[0] (produce by p): {problem}"])


SCENARIO = scenario_dir() / "zombie-produce-fenced.toml"


@pytest.mark.parametrize("seed", range(1, 11))
def test_a_fenced_zombies_record_is_reported_in_the_flush_that_fails(seed):
    """The flush serves the report queued behind the fatal-error event, then raises _FENCED (the
    report used to wait for a later poll that never came)."""
    base = load_scenario(SCENARIO)
    outcome = run_scenario(attrs.evolve(base, scenario=attrs.evolve(base.scenario, seed=seed)))
    steps = {(s.index): s for s in outcome.observation.steps}
    assert steps[5].values == FENCED
    assert steps[6].outcome == "_FENCED"
    assert check_expectations(base, outcome.observation) == []
    assert outcome.exit_code == 0
