"""The scenario format's replication keys: [cluster] brokers, [[topics]] replication_factor and config, and the
broker of crash_broker/restart_broker; each refusal names the file, the location and the reason."""

from __future__ import annotations

import pytest

from eosim._runner import run_scenario
from eosim._scenario import ScenarioError, load_scenario_text

BASE = """\
# Three brokers, one replicated partition.

[scenario]
name = "three"
description = "three brokers"
conformance = false

[cluster]
brokers = 3

[[topics]]
name = "out"
replication_factor = 3
config = { "min.insync.replicas" = 2 }

[actors.p1]
kind = "producer"
config = { "acks" = "all" }

[[steps]]
actor = "p1"
op = "produce"
topic = "out"
partition = 0
value = "v1"

[[steps]]
actor = "p1"
op = "flush"
expect_error = "NONE"

[[steps]]
actor = "nemesis"
op = "crash_broker"
broker = "broker-2"

[[steps]]
actor = "nemesis"
op = "restart_broker"
broker = "broker-2"
"""


def mutate(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def test_a_three_broker_conformance_scenario_loads() -> None:
    """The real 3-broker cluster kills, restarts and stops brokers (tests/conformance/test_scenarios.py)."""
    text = mutate("conformance = false", "conformance = true").replace(
        'op = "restart_broker"', 'op = "heal"\n\n[[steps]]\nactor = "nemesis"\nop = "restart_broker"')
    text = text.replace('op = "crash_broker"', 'op = "partition"\nnodes = ["broker-3"]\n\n[[steps]]\n'
                                               'actor = "nemesis"\nop = "crash_broker"')
    scenario = load_scenario_text(text, "three")
    assert scenario.scenario.conformance
    assert [step.op for step in scenario.steps][2:] == ["partition", "crash_broker", "heal", "restart_broker"]


def test_a_three_broker_scenario_loads_and_runs() -> None:
    scenario = load_scenario_text(BASE, "three")
    assert scenario.brokers == ("broker-1", "broker-2", "broker-3")
    assert scenario.topic("out").replication_factor == 3
    assert "brokers" not in scenario.broker_config.to_kafka()  # the cluster's shape, not a broker property
    outcome = run_scenario(scenario)
    assert outcome.result.valid is True
    [out] = outcome.observation.partitions
    assert (out.high_watermark, [v for _o, _k, v in out.read_committed]) == (1, ["v1"])


REFUSALS = [
    ("no brokers", mutate("brokers = 3", "brokers = 0"), "cluster.brokers", "an integer in 1..5, got the integer 0"),
    ("too many", mutate("brokers = 3", "brokers = 6"), "cluster.brokers", "an integer in 1..5"),
    ("string", mutate("brokers = 3", 'brokers = "3"'), "cluster.brokers", "got the string '3'"),
    ("factor above brokers", mutate("replication_factor = 3", "replication_factor = 4"),
     "topics[0].replication_factor", "4 replicas need as many brokers; [cluster] brokers is 3"),
    ("unknown topic config", mutate('"min.insync.replicas" = 2', '"retention.ms" = 2'),
     'topics[0].config."retention.ms"', "unknown topic config"),
    ("min isr 0", mutate('"min.insync.replicas" = 2', '"min.insync.replicas" = 0'),
     'topics[0].config."min.insync.replicas"', "expected an integer >= 1, got the integer 0"),
    ("unclean not bool", mutate('"min.insync.replicas" = 2', '"unclean.leader.election.enable" = 1'),
     'topics[0].config."unclean.leader.election.enable"', "expected true or false"),
    ("config on one broker", mutate("brokers = 3", "brokers = 1").replace("replication_factor = 3", ""),
     'topics[0].config."min.insync.replicas"', "replication settings need [cluster] brokers > 1"),
    ("partition of a client on the real cluster",
     mutate("conformance = false", "conformance = true").replace(
         'op = "crash_broker"\nbroker = "broker-2"', 'op = "partition"\nnodes = ["broker-2", "p1"]'),
     "steps[2].nodes[1]", '"p1" is not a broker: on the real cluster a partition stops brokers\' JVMs'),
    ("clog on the real cluster", mutate("conformance = false", "conformance = true").replace(
        'op = "crash_broker"\nbroker = "broker-2"', 'op = "clog"\nnodes = ["broker-2"]\nms = 5'),
     "steps[2].op", '"clog" is simulator-only: set scenario.conformance = false'),
    ("load_ms on the real cluster", mutate("conformance = false", "conformance = true").replace(
        'op = "restart_broker"\nbroker = "broker-2"', 'op = "restart_broker"\nbroker = "broker-2"\nload_ms = 7'),
     "steps[3].load_ms", "a real broker's coordinators load as long as they take"),
    ("internal partitions", mutate("brokers = 3\n", 'brokers = 3\n"offsets.topic.num.partitions" = 2\n'),
     'cluster."offsets.topic.num.partitions"', "3 brokers: the internal topics have one partition each"),
    ("coordinator failover", BASE + '\n[[steps]]\nactor = "nemesis"\nop = "coordinator_failover"\n', "steps[4].op",
     "3 brokers: a coordinator moves when its broker dies"),
    ("no such broker", mutate('op = "crash_broker"\nbroker = "broker-2"', 'op = "crash_broker"\nbroker = "broker-4"'),
     "steps[2].broker", 'no node "broker-4"'),
    ("restart a running broker", mutate('op = "restart_broker"\nbroker = "broker-2"',
                                        'op = "restart_broker"\nbroker = "broker-3"'),
     "steps[3].op", "broker-3 is running: crash_broker before a restart_broker"),
    ("left down", BASE.rsplit("[[steps]]", 1)[0], "steps[2]", "broker-2 stays down: restart it"),
]


@pytest.mark.parametrize("text, location, reason", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals_name_the_location_and_the_reason(text: str, location: str, reason: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, "three")
    assert (info.value.location, info.value.file) == (location, "<three>")
    assert reason in info.value.reason


def test_replication_factor_1_topics_take_consumers_and_transactions() -> None:
    """With several brokers a replication_factor 1 topic is a single-replica topic on broker-1 (it keeps producer
    state): transactional producers and consumers may use it."""
    text = (BASE.replace("replication_factor = 3\nconfig = { \"min.insync.replicas\" = 2 }\n", "")
            .replace('config = { "acks" = "all" }', 'config = { "transactional.id" = "t1" }')
            + '\n[actors.c1]\nkind = "consumer"\nconfig = { "group.id" = "g" }\n')
    scenario = load_scenario_text(text, "three")
    assert scenario.topic("out").replication_factor == 1
