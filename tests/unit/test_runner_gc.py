"""A loop of runs does not keep finished runs: a run's end makes the full garbage collection that its
suspended full collections would have made (eosim._runner._young_collections_only)."""

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


def test_a_run_end_collects_once_the_heap_has_doubled(monkeypatch):
    scenario = load_scenario_text(SCENARIO, "gc")
    monkeypatch.setattr(_runner, "_blocks_after_full", 1)  # the heap has grown far past twice that
    ref = old_garbage_cycle()
    simulate(scenario)
    assert ref() is None
    assert _runner._blocks_after_full > 1  # the baseline is the heap after that collection


def test_a_run_end_leaves_a_heap_that_has_not_doubled(monkeypatch):
    scenario = load_scenario_text(SCENARIO, "gc")
    monkeypatch.setattr(_runner, "_blocks_after_full", 10**12)
    ref = old_garbage_cycle()
    simulate(scenario)
    assert ref() is not None  # the young collections of a run do not reach the oldest generation
    gc.collect()
