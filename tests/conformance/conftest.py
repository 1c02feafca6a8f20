"""Fixtures for tests against a real Kafka broker (see docs/real-kafka.md).

Policy: with CI=true, anything that prevents a broker (no java/mvn, no Python
client, mvn or broker failure) FAILS the tests. Locally, a missing tool skips
them with the reason printed in the summary; any other failure still fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import time
import uuid
import warnings
from dataclasses import dataclass

import pytest

from eosim._realkafka.broker import KafkaBroker, KafkaUnavailable, ToolMissing, bootstrap_from_env, cleanup_on_signals
from eosim._realkafka.cluster import KafkaCluster

IN_CI = os.environ.get("CI") == "true"
_skip_reasons: list[str] = []

_missing_clients = [m for m in ("confluent_kafka", "kafka") if importlib.util.find_spec(m) is None]
if _missing_clients and not IN_CI:
    # In CI the test modules' imports fail loudly instead.
    collect_ignore_glob = ["test_*.py"]
    _skip_reasons.append(
        f"conformance tests not collected: missing {_missing_clients}; "
        "pip install -e '.[conformance]'")
elif not _missing_clients:
    # kafka-python 3.0.12 loads its protocol schemas at import through the deprecated
    # importlib.resources API (218 warnings); import it once here, quietly.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"(read|open)_text is deprecated", DeprecationWarning)
        import kafka.admin  # noqa: F401


def pytest_configure(config):
    # SIGTERM unwinds like ^C: pytest tears the session down, so the broker fixture stops its broker
    # and removes its data dir, and a running scenario kills its actors (paused ones included).
    signals = contextlib.ExitStack()
    signals.enter_context(cleanup_on_signals())
    config.add_cleanup(signals.close)


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.conformance)


def pytest_terminal_summary(terminalreporter):
    for reason in _skip_reasons:
        terminalreporter.write_line(f"conformance: {reason}", yellow=True)


@dataclass(frozen=True)
class BrokerHandle:
    bootstrap: str
    transaction_version: int


@pytest.fixture(scope="session")
def kafka_broker():
    """One broker per session; EOSIM_KAFKA_TV picks transaction.version (default 2).

    EOSIM_KAFKA_BOOTSTRAP uses an already-running broker instead; it must have
    been formatted with the same transaction.version.
    """
    tv = int(os.environ.get("EOSIM_KAFKA_TV", "2"))
    external = bootstrap_from_env()
    if external:
        yield BrokerHandle(external, tv)
        return
    broker = KafkaBroker()
    try:
        broker.start(transaction_version=tv)
    except ToolMissing as exc:
        if IN_CI:
            pytest.fail(f"CI=true and no broker: {exc.reason}", pytrace=False)
        _skip_reasons.append(f"skipped, {exc.reason}")
        pytest.skip(exc.reason)
    except KafkaUnavailable as exc:
        pytest.fail(f"no broker: {exc.reason}", pytrace=False)
    try:
        yield BrokerHandle(broker.bootstrap, tv)
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def java_actor():
    """The Java lane's actor, built once with Maven (sim/_realkafka/java.py): its classpath. Without
    java or mvn it skips, or with CI=true fails, like the broker."""
    from eosim._realkafka.java import ensure_actor

    try:
        return ensure_actor()
    except ToolMissing as exc:
        if IN_CI:
            pytest.fail(f"CI=true and no Java actor: {exc.reason}", pytrace=False)
        _skip_reasons.append(f"Java lane skipped, {exc.reason}")
        pytest.skip(exc.reason)
    except KafkaUnavailable as exc:
        pytest.fail(f"no Java actor: {exc.reason}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_admin(kafka_broker):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_broker.bootstrap})


@pytest.fixture
def new_topic(kafka_admin, request):
    """Factory: new_topic(partitions=1, config=None) -> a fresh topic name, leader elected."""
    from confluent_kafka.admin import NewTopic

    stem = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:100]

    def make(partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = f"{stem}-{uuid.uuid4().hex[:8]}"
        futures = kafka_admin.create_topics(
            [NewTopic(name, partitions, 1, config=config or {})], operation_timeout=30)
        futures[name].result(timeout=30)
        # CreateTopics completes on the controller; wait until the broker leads every partition.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            md = kafka_admin.list_topics(name, timeout=5).topics[name]
            if md.error is None and len(md.partitions) == partitions and all(
                    p.leader >= 0 for p in md.partitions.values()):
                return name
            time.sleep(0.05)
        raise TimeoutError(f"topic {name} has no leaders after 30 s")

    return make


@pytest.fixture(scope="session")
def kafka_cluster_session():
    """One 3-broker cluster (a controller and brokers 1-3, sim/_realkafka/cluster.py) per session, formatted with
    the session's transaction.version (EOSIM_KAFKA_TV, default 2), started only when a test asks for it: the
    3-broker library scenarios run on it in both CI passes."""
    tv = int(os.environ.get("EOSIM_KAFKA_TV", "2"))
    cluster = KafkaCluster()
    try:
        cluster.start(transaction_version=tv)
    except ToolMissing as exc:
        if IN_CI:
            pytest.fail(f"CI=true and no cluster: {exc.reason}", pytrace=False)
        _skip_reasons.append(f"skipped, {exc.reason}")
        pytest.skip(exc.reason)
    except KafkaUnavailable as exc:
        pytest.fail(f"no cluster: {exc.reason}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def kafka_cluster(kafka_cluster_session):
    """The session's cluster; a broker a test paused or killed is resumed or started again afterwards, so the next
    test finds all three running."""
    yield kafka_cluster_session
    for node_id in kafka_cluster_session.broker_ids:
        if kafka_cluster_session.is_paused(node_id):
            kafka_cluster_session.resume(node_id)
        if not kafka_cluster_session.is_running(node_id):
            kafka_cluster_session.restart(node_id)
