"""The Java lane's translation of a scenario actor's librdkafka config into the Java client's
(sim/_realkafka/java.py), and ``--client`` putting every actor on one client."""

from __future__ import annotations

import pytest

pytest.importorskip("confluent_kafka")  # the driver imports it; the conformance extra

from eosim._cli import scenario_dir  # noqa: E402
from eosim._realkafka.driver import NotReproducible, on_client  # noqa: E402
from eosim._realkafka.java import java_config  # noqa: E402
from eosim._scenario import load_scenario  # noqa: E402


def test_librdkafka_keys_become_the_java_clients():
    config = {"transactional.id": "tx", "socket.timeout.ms": 1000, "message.timeout.ms": 5000,
              "max.in.flight": 1, "enable.idempotence": True, "eosim.client": "java",
              "bootstrap.servers": "127.0.0.1:9092"}
    assert java_config("producer", config) == {
        "transactional.id": "tx", "request.timeout.ms": "1000", "delivery.timeout.ms": "5000",
        "max.in.flight.requests.per.connection": "1", "enable.idempotence": "true",
        "bootstrap.servers": "127.0.0.1:9092"}


@pytest.mark.parametrize(("librdkafka", "java"), [("smallest", "earliest"), ("beginning", "earliest"),
                                                  ("largest", "latest"), ("end", "latest"), ("error", "none")])
def test_auto_offset_reset_names_and_one_record_per_poll(librdkafka, java):
    assert java_config("consumer", {"group.id": "g", "auto.offset.reset": librdkafka}) == {
        "group.id": "g", "auto.offset.reset": java, "max.poll.records": "1"}


def test_a_key_without_a_java_counterpart_is_refused():
    with pytest.raises(NotReproducible, match='"batch.num.messages" has no counterpart in the Java client'):
        java_config("producer", {"batch.num.messages": 1})


def test_client_puts_every_actor_on_it_and_none_keeps_each_actors_own():
    scenario = load_scenario(scenario_dir() / "java-vs-librdkafka-default-isolation.toml")
    assert {n: a.config.get("eosim.client") for n, a in scenario.actors.items()} == {
        "payments": None, "shipper-rd": None, "shipper-java": "java"}
    assert on_client(scenario, None) is scenario
    java = on_client(scenario, "java")
    assert {a.client_config.eosim_client.value for a in java.actors.values()} == {"java"}
    assert {a.client_config.eosim_client.value for a in on_client(scenario, "librdkafka").actors.values()} == {
        "librdkafka"}
