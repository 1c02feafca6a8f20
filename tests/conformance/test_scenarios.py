"""Every library scenario with ``[scenario] conformance = true``, on the simulator and on a real
Kafka broker, on two lanes (docs/conformance.md): as written (confluent-kafka, and kafka-clients in
a JVM for an actor with ``eosim.client = "java"``), and with every actor on the Java client
(``eosim conform --client java``). Kafka's observation must be the simulator's, or for a racy
scenario (``racy_seeds``) one of the observations the simulator reaches across its seeds.

A scenario runs on the session broker (``kafka_broker``) unless its [cluster] table needs another
configuration; then it gets its own broker, one per (transaction.version, overrides), stopped at
the end of the session.
"""

from __future__ import annotations

import pytest

from eosim._cli import scenario_dir
from eosim._observation import nearest
from eosim._realkafka.broker import KafkaBroker, KafkaUnavailable
from eosim._realkafka.driver import broker_requirements, for_transaction_version, on_client, run_on_kafka
from eosim._runner import reachable
from eosim._scenario import load_scenario

SCENARIOS = sorted(p for p in scenario_dir().glob("*.toml") if load_scenario(p).scenario.conformance)

LANES = (None, "java")  # None: each actor's own client; "java": every actor on the Java client

# Where the simulated Java client (sim/_client/, eosim.client = "java") is not yet the real Java client
# 4.1.2: scenario -> (transaction versions, {diff path prefix: what the real client does}). Found by
# the Java lane; the simulated client's semantics are producer-split's (issue 8), not the driver's.
_JAVA_CLIENT_GAPS: dict[str, tuple[tuple[int, ...], dict[str, str]]] = {
    "fenced-producer-errors": ((1, 2), {
        "steps[7].": "produce after the fatal ProducerFencedException does not throw: KafkaProducer.doSend "
                     "catches the ApiException of TransactionManager.maybeAddPartition and completes the send's "
                     "callback with PRODUCER_FENCED (the simulated client raises librdkafka's _FATAL)",
        "steps[8].outcome": "poll does not raise the fatal error again: the Java client has no poll and no "
                            "one-time fatal-error event (librdkafka's, which the simulated client raises)",
    }),
    "transaction-timeout-abort": ((2,), {
        "steps[7].outcome": "TV2: the coordinator's timeout abort bumped the epoch; the late commit's EndTxn v5 "
                            "with the old epoch is answered INVALID_TXN_STATE, fatal (the simulated client speaks "
                            "TV1 and gets PRODUCER_FENCED)",
        "steps[8].outcome": "the fatal INVALID_TXN_STATE is sticky, so the abort raises it too",
    }),
    "transactional-state-errors": ((1, 2), {
        "steps[0].values[delivery]": "a send refused with IllegalStateException (_STATE) is appended to the "
                                     "accumulator first (KafkaProducer.doSend, then maybeAddPartition): e0 and e1 "
                                     "stay queued and are written and committed with the next transaction",
        "steps[5].values[delivery]": "the same for e1 (initialised, no transaction begun)",
        "steps[12].values[delivery]": "e2 lands behind them, at offset 2",
        "partitions[out-0]": "e0, e1, e2 committed at 0-2, marker at 3",
    }),
    "txn-abort-sequence-reuse": ((1, 2), {
        "steps[2].values": "the Java client does not purge on abort: the produce whose response was dropped is "
                           "retried after request.timeout.ms and delivered (offset 0) before the abort",
        "steps[6].values[delivery]": "after the abort the Java client bumps the epoch (a failed batch), so b is "
                                     "not deduplicated away: no librdkafka-style lost write",
        "steps[9].values[records]": "the reader sees b",
        "partitions[out-0]": "b committed at offset 2",
    }),
    "unstable-offset-commit": ((1, 2), {
        "steps[15].": "the Java consumer's committed() always asks require_stable (KIP-447), so a read_uncommitted "
                      "consumer also waits out the pending transactional offset and times out (_TIMED_OUT)",
    }),
}

# Differences kept on purpose: (lane, scenario, transaction.version) -> {diff path prefix: why the model
# may differ}. Each is also listed in docs/fidelity.md; an entry that no longer shows up fails the test,
# so the list stays true.
KNOWN_DIFFERENCES: dict[tuple[str | None, str, int], dict[str, str]] = {
    ("java", name, tv): prefixes for name, (tvs, prefixes) in _JAVA_CLIENT_GAPS.items() for tv in tvs}


@pytest.fixture(scope="session")
def broker_for(kafka_broker):
    """(transaction.version, overrides) -> bootstrap: the session broker when it fits, else a broker
    started for that configuration."""
    started: dict[tuple[int, tuple[tuple[str, str], ...]], KafkaBroker] = {}

    def get(tv: int, overrides: dict[str, str]) -> str:
        if (tv, overrides) == (kafka_broker.transaction_version, {}):
            return kafka_broker.bootstrap
        key = (tv, tuple(sorted(overrides.items())))
        if key not in started:
            try:
                started[key] = KafkaBroker(overrides=overrides).start(transaction_version=tv)
            except KafkaUnavailable as exc:
                pytest.fail(f"no broker for transaction.version={tv} {overrides}: {exc.reason}", pytrace=False)
        return started[key].bootstrap

    yield get
    for broker in started.values():
        broker.stop()


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
@pytest.mark.parametrize("lane", LANES, ids=lambda lane: lane or "as-written")
def test_simulator_and_kafka_observe_the_same(lane, path, kafka_broker, broker_for, tmp_path, record_property,
                                              request):
    scenario = on_client(load_scenario(path), lane)
    if any(str(actor.config.get("eosim.client", "")).lower() == "java" for actor in scenario.actors.values()):
        request.getfixturevalue("java_actor")  # built once; skips or fails without java/mvn
    tv, overrides = broker_requirements(scenario, kafka_broker.transaction_version)
    allowed = reachable(for_transaction_version(scenario, tv))
    kafka = run_on_kafka(scenario, broker_for(tv, overrides), transaction_version=tv, log_dir=tmp_path)
    record_property("kafka_s", round(kafka.wall_s, 2))
    record_property("allowed_observations", len(allowed))

    index, lines = nearest([outcome.observation for outcome in allowed], kafka.observation)
    sim = allowed[index]
    known = KNOWN_DIFFERENCES.get((lane, scenario.name, tv), {})
    unexplained = [line for line in lines if not any(line.startswith(prefix) for prefix in known)]
    stale = [prefix for prefix in known if not any(line.startswith(prefix) for line in lines)]
    (tmp_path / f"sim-seed-{sim.seed}.json").write_text(sim.observation.to_json())
    (tmp_path / "kafka.json").write_text(kafka.observation.to_json())
    assert not unexplained, (f"{scenario.name}: the simulator and Kafka disagree (observations and actor logs "
                             f"in {tmp_path}):\n" + "\n".join(unexplained))
    assert not stale, (f"{scenario.name}: no longer differs at {stale}: remove it from KNOWN_DIFFERENCES "
                       "and docs/fidelity.md")
