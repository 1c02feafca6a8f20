"""A loop of runs does not keep finished runs: a run's start makes the full garbage collection that the
runs' suspended full collections would have made (eosim._runner._young_collections_only)."""

import gc
import weakref

from eosim import _runner
from eosim._runner import simulate
from eosim._scenario import load_scenario_text

SCENARIO = """\
[scenario]
name = "gc"
description = "d"
conformance = false

[[topics]]
name = "t"

[actors.p1]
kind = "producer"

[[steps]]
actor = "p1"
op = "flush"
"""


class Cycle:
    def __init__(self) -> None:
        self.me = self


def old_garbage_cycle() -> weakref.ref:
    """A reference cycle in the oldest generation, then dropped: only a full collection frees it."""
    cycle = Cycle()
    gc.collect(1)  # survivors of the middle generation move to the oldest
    ref = weakref.ref(cycle)
    del cycle
    return ref


def measured_since_the_last_full_collection(monkeypatch, blocks: int) -> None:
    monkeypatch.setattr(_runner, "_blocks_after_full", blocks)
    monkeypatch.setattr(_runner, "_full_collections", gc.get_stats()[2]["collections"])


def test_a_run_start_collects_once_the_heap_has_doubled(monkeypatch):
    scenario = load_scenario_text(SCENARIO, "gc")
    ref = old_garbage_cycle()
    measured_since_the_last_full_collection(monkeypatch, 1)  # the heap has grown far past twice that
    simulate(scenario)
    assert ref() is None
    assert _runner._blocks_after_full > 1  # the measure is the heap after that collection


def test_a_run_start_leaves_a_heap_that_has_not_doubled(monkeypatch):
    scenario = load_scenario_text(SCENARIO, "gc")
    ref = old_garbage_cycle()
    measured_since_the_last_full_collection(monkeypatch, 10**12)
    simulate(scenario)
    assert ref() is not None  # the young collections of a run do not reach the oldest generation
    gc.collect()


def test_another_full_collection_resets_the_measure(monkeypatch):
    scenario = load_scenario_text(SCENARIO, "gc")
    measured_since_the_last_full_collection(monkeypatch, 1)
    gc.collect()  # a caller's own: the heap after it is the new measure, not a doubling
    ref = old_garbage_cycle()
    simulate(scenario)
    assert ref() is not None
    assert _runner._blocks_after_full > 1
    gc.collect()
