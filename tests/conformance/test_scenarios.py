"""Every library scenario with ``[scenario] conformance = true``, on the simulator and on a real
Kafka broker, on two lanes (docs/conformance.md): as written (confluent-kafka, and kafka-clients in
a JVM for an actor with ``eosim.client = "java"``), and with every actor on the Java client
(``eosim conform --client java``). Kafka's observation must be the simulator's, or for a racy
scenario (``racy_seeds``) one of the observations the simulator reaches across its seeds.

A scenario runs on the session broker (``kafka_broker``, the pinned release) unless its [cluster] table
needs another configuration; then it gets its own broker, one per (release, transaction.version,
overrides), stopped at the end of the session. A scenario pinned to another release
(``"eosim.kafka.version"``) runs on that release, and the simulator runs with that release's bugs.
"""

from __future__ import annotations

import os

import pytest

from eosim._cli import scenario_dir
from eosim._observation import nearest
from eosim._realkafka.broker import KafkaBroker, KafkaUnavailable
from eosim._realkafka.driver import broker_requirements, for_broker, kafka_version_of, on_client, run_on_kafka
from eosim._realkafka.known import explain
from eosim._runner import reachable
from eosim._scenario import load_scenario
from eosim.models.bugs import PINNED_RELEASE

SCENARIOS = sorted(p for p in scenario_dir().glob("*.toml") if load_scenario(p).scenario.conformance)

LANES = (None, "java")  # None: each actor's own client; "java": every actor on the Java client
# A [cluster] brokers = N scenario runs on the real N-broker cluster (the session's, kafka_cluster_session), in
# the as-written lane only: its kills, restarts and the controller's session timeout cost ~20-40 s a scenario,
# and what it checks is the brokers' replication, not a client (docs/conformance.md, "Three brokers").
RUNS = [(lane, path) for path in SCENARIOS for lane in LANES
        if lane is None or len(load_scenario(path).brokers) == 1]


@pytest.fixture(scope="session")
def broker_for(kafka_broker):
    """(transaction.version, overrides, release) -> bootstrap: the session broker when it fits, else a broker
    started for that configuration."""
    started: dict[tuple[str, int, tuple[tuple[str, str], ...]], KafkaBroker] = {}

    def get(tv: int, overrides: dict[str, str], version: str) -> str:
        if (tv, overrides, version) == (kafka_broker.transaction_version, {}, PINNED_RELEASE):
            return kafka_broker.bootstrap
        key = (version, tv, tuple(sorted(overrides.items())))
        if key not in started:
            try:
                started[key] = KafkaBroker(version, overrides).start(transaction_version=tv)
            except KafkaUnavailable as exc:
                pytest.fail(f"no Kafka {version} broker for transaction.version={tv} {overrides}: {exc.reason}",
                            pytrace=False)
        return started[key].bootstrap

    yield get
    for broker in started.values():
        broker.stop()


@pytest.fixture(scope="session")
def tv():
    return int(os.environ.get("EOSIM_KAFKA_TV", "2"))


def cluster_for(request, tv: int, overrides: dict[str, str], version: str, brokers: int):
    """The session's 3-broker cluster (started on first use, at the session's transaction.version) when it fits;
    nothing else is started: every library scenario on N brokers takes the cluster's defaults."""
    cluster = request.getfixturevalue("kafka_cluster_session")
    wanted = (tv, overrides, version, brokers)
    have = (cluster.transaction_version, {}, PINNED_RELEASE, len(cluster.broker_ids))
    if wanted != have:
        pytest.fail(f"needs a cluster with (transaction.version, overrides, release, brokers) = {wanted}; the "
                    f"session's is {have}", pytrace=False)
    return cluster


@pytest.mark.parametrize(("lane", "path"), RUNS, ids=lambda v: v.stem if hasattr(v, "stem") else v or "as-written")
def test_simulator_and_kafka_observe_the_same(lane, path, tv, tmp_path, record_property, request):
    scenario = on_client(load_scenario(path), lane)
    if any(str(actor.config.get("eosim.client", "")).lower() == "java" for actor in scenario.actors.values()):
        request.getfixturevalue("java_actor")  # built once; skips or fails without java/mvn
    tv, overrides = broker_requirements(scenario, tv)
    version = kafka_version_of(scenario)
    allowed = reachable(for_broker(scenario, tv, version))
    if len(scenario.brokers) > 1:
        cluster = cluster_for(request, tv, overrides, version, len(scenario.brokers))
        kafka = run_on_kafka(scenario, cluster.bootstrap, transaction_version=tv, log_dir=tmp_path, cluster=cluster)
    else:
        bootstrap = request.getfixturevalue("broker_for")(tv, overrides, version)
        kafka = run_on_kafka(scenario, bootstrap, transaction_version=tv, log_dir=tmp_path)
    record_property("kafka_s", round(kafka.wall_s, 2))
    record_property("allowed_observations", len(allowed))

    index, lines = nearest([outcome.observation for outcome in allowed], kafka.observation)
    sim = allowed[index]
    unexplained, stale = explain(lane, scenario.name, tv, lines, version)
    (tmp_path / f"sim-seed-{sim.seed}.json").write_text(sim.observation.to_json())
    (tmp_path / "kafka.json").write_text(kafka.observation.to_json())
    assert not unexplained, (f"{scenario.name}: the simulator and Kafka disagree (observations and actor logs "
                             f"in {tmp_path}):\n" + "\n".join(unexplained))
    assert not stale, (f"{scenario.name}: no longer differs at {stale}: remove it from KNOWN_DIFFERENCES "
                       "(sim/_realkafka/known.py) and docs/fidelity.md")
