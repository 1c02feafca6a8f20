"""The random nemesis on a 3-broker cluster: broker-restart kills and restarts one of broker-2 .. broker-N (a
killed process: its connections reset), broker-partition cuts one off (a silent host); draws and schedules name
the broker, and the loader refuses what does not fit."""

from __future__ import annotations

import pytest

from eosim import _scenario as sc
from eosim._faults import nemesis_schedule
from eosim._runner import run_scenario
from eosim._scenario import ScenarioError, load_scenario_text

SCENARIO = """\
# Three brokers under a random nemesis.

[scenario]
name = "cluster-nemesis"
description = "three brokers, a random nemesis striking brokers"
conformance = false

[cluster]
brokers = 3

[[topics]]
name = "out"
replication_factor = 3
config = { "min.insync.replicas" = 2 }

[actors.p1]
kind = "producer"
config = { "acks" = "all", "enable.idempotence" = false }

[nemesis]
kinds = {kinds}
interval_ms = 2000
duration_ms = 12000

[[steps]]
actor = "p1"
op = "produce"
topic = "out"
partition = 0
value = "v1"

[[steps]]
actor = "nemesis"
op = "sleep"
ms = 60000

[[steps]]
actor = "p1"
op = "produce"
topic = "out"
partition = 0
value = "v2"

[[steps]]
actor = "p1"
op = "flush"
"""


def text(kinds: str = '["broker-restart", "broker-partition"]') -> str:
    return SCENARIO.replace("{kinds}", kinds)


def test_the_nemesis_kills_restarts_and_cuts_brokers_2_to_n() -> None:
    scenario = load_scenario_text(text(), "cluster")
    strikes = nemesis_schedule(scenario, 4, seed=1).nemesis.strikes
    assert {s.kind for s in strikes} <= {"broker-restart", "broker-partition"}
    assert {s.target for s in strikes} <= {"broker-2", "broker-3"}
    outcome = run_scenario(scenario, seed=1)
    assert outcome.completed
    trace = [(e.node, e.kind) for e in outcome.trace]
    struck = {(s.kind, s.target) for s in strikes}
    crashed = {node for node, kind in trace if kind == "broker.crash"}
    assert crashed == {target for kind, target in struck if kind == "broker-restart"} - {None} != set(), struck
    assert {node for node, kind in trace if kind == "broker.restart"} == crashed
    [out] = outcome.observation.partitions
    # acks=all with min.insync.replicas=2: one broker struck at a time, nothing acknowledged is lost
    assert [v for _o, _k, v in out.read_committed] == ["v1", "v2"]
    assert outcome.result.valid is True


def test_a_written_schedule_replays_the_draws() -> None:
    scenario = load_scenario_text(text(), "cluster")
    written = nemesis_schedule(scenario, 6, seed=2)
    assert run_scenario(written, seed=2).observation == run_scenario(scenario, seed=2).observation


@pytest.mark.parametrize("tail, location, reason", [
    ('\n[[nemesis.strikes]]\nat_ms = 5\nkind = "broker-restart"\nduration_ms = 10\n',
     "nemesis.strikes[0].target", "needs the broker it strikes (broker-2, broker-3)"),
    ('\n[[nemesis.strikes]]\nat_ms = 5\nkind = "broker-partition"\ntarget = "broker-1"\nduration_ms = 10\n',
     "nemesis.strikes[0].target", 'no node "broker-1"'),
])
def test_strikes_name_a_broker_of_2_to_n(tail: str, location: str, reason: str) -> None:
    document = text().replace("\n[[steps]]", tail + "\n[[steps]]", 1)
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(document, "cluster")
    assert info.value.location == location
    assert reason in info.value.reason


def test_one_broker_has_no_broker_partition() -> None:
    one = text('["broker-partition"]').replace("brokers = 3", "brokers = 1").replace(
        'replication_factor = 3\nconfig = { "min.insync.replicas" = 2 }\n', "")
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(one, "cluster")
    assert info.value.location == "nemesis.kinds"


def test_coordinator_failover_is_refused_on_a_cluster() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text('["coordinator-failover"]'), "cluster")
    assert info.value.location == "nemesis.kinds"
    assert sc.NEMESIS_CLUSTER_KINDS == ("broker-restart", "broker-partition")
