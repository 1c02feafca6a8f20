"""A loop of runs does not keep finished runs: a run's start makes the full garbage collection that the
runs' suspended full collections would have made (eosim._runner._pace_full_collections)."""

import gc
import sys
import weakref

import pytest

from eosim import _runner
from eosim._runner import conclude, simulate
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


@pytest.fixture
def no_full_collection_of_its_own(monkeypatch):
    """Python's own full collections off meanwhile, so that only the runner's can free a cycle."""
    old = gc.get_threshold()
    gc.set_threshold(old[0], old[1], 1_000_000_000)
    yield
    gc.set_threshold(*old)
    gc.collect()


def old_garbage_cycle() -> weakref.ref:
    """A reference cycle in the oldest generation, then dropped: only a full collection frees it."""
    cycle = Cycle()
    gc.collect(1)  # survivors of the middle generation move to the oldest
    ref = weakref.ref(cycle)
    del cycle
    return ref


def measured_since_the_last_full_collection(monkeypatch, blocks: int, runs: int = 0) -> None:
    monkeypatch.setattr(_runner, "_blocks_after_full", blocks)
    monkeypatch.setattr(_runner, "_full_collections", gc.get_stats()[2]["collections"])
    monkeypatch.setattr(_runner, "_runs_since_full", runs)


@pytest.mark.usefixtures("no_full_collection_of_its_own")
def test_a_run_start_collects_once_the_heap_has_doubled(monkeypatch):
    scenario = load_scenario_text(SCENARIO, "gc")
    ref = old_garbage_cycle()
    measured_since_the_last_full_collection(monkeypatch, 1)  # the heap has grown far past twice that
    simulate(scenario)
    assert ref() is None
    assert _runner._blocks_after_full > 1  # the measure is the heap after that collection


@pytest.mark.usefixtures("no_full_collection_of_its_own")
def test_a_run_start_leaves_a_heap_that_has_not_doubled(monkeypatch):
    scenario = load_scenario_text(SCENARIO, "gc")
    ref = old_garbage_cycle()
    measured_since_the_last_full_collection(monkeypatch, 10**12)
    simulate(scenario)
    assert ref() is not None  # the young collections of a run do not reach the oldest generation


@pytest.mark.usefixtures("no_full_collection_of_its_own")
def test_the_checks_do_not_collect_the_run_they_judge(monkeypatch):
    run = simulate(load_scenario_text(SCENARIO, "gc"))
    ref = old_garbage_cycle()
    measured_since_the_last_full_collection(monkeypatch, 1)
    conclude(run)
    assert ref() is not None


@pytest.mark.usefixtures("no_full_collection_of_its_own")
def test_another_full_collection_resets_the_measure(monkeypatch):
    scenario = load_scenario_text(SCENARIO, "gc")
    measured_since_the_last_full_collection(monkeypatch, 1)
    gc.collect()  # a caller's own: the heap after it is the new measure, not a doubling
    ref = old_garbage_cycle()
    simulate(scenario)
    assert ref() is not None
    assert _runner._blocks_after_full > 1


@pytest.mark.usefixtures("no_full_collection_of_its_own")
def test_without_a_block_count_runs_are_counted(monkeypatch):
    """PYTHONMALLOC=malloc (valgrind, sanitizers) counts no blocks: a full collection per so many runs."""
    scenario = load_scenario_text(SCENARIO, "gc")
    monkeypatch.setattr(sys, "getallocatedblocks", lambda: 0)
    ref = old_garbage_cycle()
    measured_since_the_last_full_collection(monkeypatch, 0, runs=_runner.RUNS_PER_FULL_COLLECTION - 2)
    simulate(scenario)
    assert ref() is not None
    simulate(scenario)
    assert ref() is None


def test_a_caller_who_turned_the_collector_off_is_obeyed(monkeypatch):
    scenario = load_scenario_text(SCENARIO, "gc")
    measured_since_the_last_full_collection(monkeypatch, 1)
    collections = gc.get_stats()[2]["collections"]
    gc.disable()
    try:
        simulate(scenario)
    finally:
        gc.enable()
    assert gc.get_stats()[2]["collections"] == collections
