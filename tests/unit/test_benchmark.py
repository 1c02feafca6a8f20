"""The benchmark's workloads are real, valid runs (experiments/benchmark.py measures them; a workload the
loader rejects or the checkers flag would make its numbers meaningless). No timing is asserted here."""

from __future__ import annotations

import random

from eosim._runner import conclude, simulate
from eosim.experiments.benchmark import bare_simpy_round_trips, per_record_scenario, transactional_scenario


def test_the_per_record_workload_acks_every_record_once():
    outcome = conclude(simulate(per_record_scenario(20)))
    assert outcome.result.valid is True
    [partition] = outcome.observation.partitions
    assert [value for _offset, _key, value in partition.read_committed] == [f"v{i}" for i in range(20)]


def test_the_nemesis_workload_strikes_and_stays_valid():
    scenario = transactional_scenario(random.Random(7), producers=2, txns=10, records=1, nemesis=True)
    outcome = conclude(simulate(scenario, seed=1))
    assert outcome.result.valid is True
    assert any(event.kind.startswith("fault.") and event.kind != "fault.heal" for event in outcome.trace)


def test_the_bare_round_trip_runs():
    assert bare_simpy_round_trips(10) > 0
