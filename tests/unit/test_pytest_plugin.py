"""eosim's pytest plugin (sim/pytest_plugin.py, the pytest11 entry point): its fixtures in a user's test
session, run by pytest's own pytester."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = '''
import pytest
from hypothesis import HealthCheck, given, settings
from eosim import Producer, strategies


@pytest.mark.eosim(topics={"t": 2})
def test_the_cluster_fixture(eosim_cluster, eosim_seed):
    assert eosim_seed == 7
    producer = Producer({"enable.idempotence": True})

    def send():
        producer.produce("t", value="v", partition=1)
        yield producer.flush()

    eosim_cluster.process(send())
    eosim_cluster.run(2_000)
    assert [v for _o, _k, v in eosim_cluster.partition_state("t", 1).read_committed] == ["v"]
    assert eosim_cluster.check().valid is True


@settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(strategies.scenario_documents(kinds=("drop",), producers=("transactional",), readers=("read_committed",),
                                     cluster=strategies.cluster_configs(verification=(True,), expiry=(None,))))
def test_drawn_scenarios_are_valid(eosim_check, document):
    eosim_check(document)


def test_an_invalid_run_prints_its_scenario(eosim_check):
    eosim_check(DUPLICATING)
'''

DUPLICATING = {
    "scenario": {"name": "dup", "description": "a plain producer's retry duplicates", "conformance": False},
    "topics": [{"name": "out"}],
    "actors": {"p1": {"kind": "producer", "config": {"enable.idempotence": False, "socket.timeout.ms": 1000}}},
    "faults": [{"name": "lose", "action": "drop", "message": "Produce", "direction": "response"}],
    "steps": [{"actor": "p1", "op": "produce", "topic": "out", "partition": 0, "value": "a"},
              {"actor": "p1", "op": "flush"}],
}


def test_the_fixtures_in_a_users_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=f"DUPLICATING = {DUPLICATING!r}\n" + USER_TESTS)
    result = pytester.runpytest_subprocess("--eosim-seed", "7", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    # the invalid run fails with its scenario as a file eosim run reproduces
    result.stdout.fnmatch_lines(["*the checkers call this run INVALID: duplicate*", '*"action" = "drop"*'])
