"""What a fault names and what a producer is called stay put when Hypothesis's shrinker deletes something else
(eosim.strategies; docs/exploration.md, "Built to shrink")."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from eosim import strategies
from eosim.strategies import FAULT_KINDS, NODE_NAMES, TRANSACTIONAL_IDS, _kind, _who


def _drawing(i: int):
    """A ``draw`` that answers the one integer draw with ``i``."""
    return lambda _strategy: i


@pytest.mark.parametrize("names", [NODE_NAMES, TRANSACTIONAL_IDS])
def test_a_drawn_name_that_is_present_is_the_target_whatever_else_is_present(names) -> None:
    for i, name in enumerate(names):
        others = [n for n in names if n != name]
        for k in range(len(others) + 1):
            for rest in itertools.combinations(others, k):
                assert _who(_drawing(i), (*rest, name), names) == name


def test_a_drawn_name_that_is_absent_falls_back_to_a_present_one_by_index() -> None:
    present = ("alice", "bob")  # a scenario explored around names its actors itself
    assert [_who(_drawing(i), present) for i in range(4)] == ["alice", "bob", "alice", "bob"]


def test_a_fault_kind_outside_the_swarm_maps_into_it_and_an_enabled_one_stays() -> None:
    for i, kind in enumerate(FAULT_KINDS):
        for k in range(1, 4):
            for enabled in itertools.combinations(FAULT_KINDS, k):
                got = _kind(_drawing(i), FAULT_KINDS, enabled)
                assert got in enabled
                if kind in enabled:
                    assert got == kind


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(strategies.workloads())
def test_producers_are_named_by_their_places_and_readers_by_their_isolation_level(workload) -> None:
    for name, actor in workload.actors.items():
        if name in ("app", "source"):
            continue
        if actor["kind"] == "producer":
            assert name in ("p1", "p2", "p3")
        else:
            assert name == ("r1" if actor["config"]["isolation.level"] == "read_committed" else "r2")


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(strategies.scenario_documents())
def test_drawn_triggers_count_one_senders_requests_and_markers_only_the_brokers(document: dict) -> None:
    for rule in document.get("faults", ()):
        if "after_message" in rule:
            assert rule["after_node"] in (*document["actors"], strategies.BROKER)
            if rule["after_message"] == "WriteTxnMarkers":
                assert rule["after_node"] == strategies.BROKER


def test_steps_ready_at_the_same_slot_go_in_the_workloads_order_not_by_name() -> None:
    """Producers named p3 and p1 (drawn in that order) keep their order when merged, as they would if a producer
    drawn before them were deleted and a collision renamed one of them."""
    program = lambda actor: [{"op": "produce", "topic": "out", "partition": 0, "value": f"{actor}-0", "_at": 1}]
    workload = strategies.Workload({"out": 1}, {a: {"kind": "producer", "config": {}} for a in ("p3", "p1")},
                                   {"p3": program("p3"), "p1": program("p1")})
    steps = strategies.compose(workload, strategies.Schedule([], []), {})["steps"]
    assert [s["actor"] for s in steps] == ["p3", "p1"]
