"""What a fault names and what a producer is called stay put when Hypothesis's shrinker deletes something else
(eosim.strategies; docs/exploration.md, "Built to shrink")."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.internal.conjecture.data import ConjectureData

from eosim import strategies
from eosim.strategies import FAULT_KINDS, NODE_NAMES, PREFERENCES, TRANSACTIONAL_IDS, _kind, _who


def _drawing(*choices: int):
    """A ``draw`` that answers its integer draws with ``choices``, in order."""
    answers = iter(choices)
    return lambda _strategy: next(answers)


@pytest.mark.parametrize("names", [NODE_NAMES, TRANSACTIONAL_IDS])
def test_a_drawn_name_that_is_present_is_the_target_whatever_else_is_present(names) -> None:
    for i, name in enumerate(names):
        others = [n for n in names if n != name]
        for k in range(len(others) + 1):
            for rest in itertools.combinations(others, k):
                assert _who(_drawing(i, i), (*rest, name), names) == name


def test_an_absent_name_falls_back_to_a_present_one_that_deleting_another_leaves_in_place() -> None:
    """The fallback is what a second draw prefers among those present: every present one for some second draw, and
    deleting any other present one changes no pick (the modulo it replaces picked another one then)."""
    for present in [("alice", "bob"), *itertools.combinations(NODE_NAMES, 3), *itertools.combinations(NODE_NAMES, 5)]:
        absent = next(i for i, name in enumerate(NODE_NAMES) if name not in present)
        picks = {preference: _who(_drawing(absent, preference), present) for preference in range(0, PREFERENCES, 7)}
        assert set(picks.values()) == set(present)
        for preference, pick in picks.items():
            for other in present:
                if other != pick:
                    rest = tuple(n for n in present if n != other)
                    assert _who(_drawing(absent, preference), rest) == pick


def test_the_second_draw_is_made_whether_the_drawn_name_is_present_or_not() -> None:
    """So lowering the first draw to a present name, or deleting the named actor, moves no later choice."""
    for present in (("p1",), ("p2", "r1")):
        draws: list = []
        _who(lambda strategy: draws.append(strategy) or 0, present)
        assert len(draws) == 2


def test_a_fault_kind_outside_the_swarm_maps_into_it_and_an_enabled_one_stays() -> None:
    for i, kind in enumerate(FAULT_KINDS):
        for k in range(1, 4):
            for enabled in itertools.combinations(FAULT_KINDS, k):
                for preference in (0, 1, PREFERENCES - 1):
                    got = _kind(_drawing(i, preference), FAULT_KINDS, enabled)
                    assert got in enabled
                    if kind in enabled:
                        assert got == kind
                    else:  # shrinking the swarm by a kind no fault has changes no fault's kind
                        for other in enabled:
                            if other != got:
                                rest = tuple(e for e in enabled if e != other)
                                assert _kind(_drawing(i, preference), FAULT_KINDS, rest) == got


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


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(strategies.workloads(), st.randoms(use_true_random=False))
def test_deleting_an_actor_no_strike_aims_at_leaves_every_strike_as_drawn(workload, random) -> None:
    """The same choices, drawn for the workload without an actor that no strike targets, give the same strikes:
    what Hypothesis's shrinker sees when it deletes that actor (a strike that moved made it refuse the deletion)."""
    drawn = ConjectureData(random=random)
    schedule = drawn.draw(strategies.fault_schedules(workload, max_faults=0))
    targets = {strike.get("target") for strike in schedule.strikes}
    # the application's producer takes the app and its source with it; the others go alone
    alone = [a for a, program in workload.programs.items()
             if a not in ("app", "source") and a not in targets and not any("actor" in op for op in program)]
    for actor in alone:
        if len(workload.actors) == 1:
            continue
        smaller = strategies.Workload(workload.topics, {a: s for a, s in workload.actors.items() if a != actor},
                                      {a: p for a, p in workload.programs.items() if a != actor})
        again = ConjectureData.for_choices(drawn.choices).draw(strategies.fault_schedules(smaller, max_faults=0))
        assert again == schedule
