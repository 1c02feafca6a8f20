"""The fault layer (sim/_faults.py): each action and selector, counts, arming, heal, the nemesis ops,
the random nemesis, and determinism. Small scenarios run end to end; the network-level tests drive
raw requests over a cluster with the layer installed."""

from __future__ import annotations

import textwrap

import pytest

from eosim.models.api import INFRASTRUCTURE_ERRORS, error_response
from eosim.models.errors import Errors
from eosim.models.protocol import ProduceRequest, ProduceResponse
from eosim.models.records import Record, RecordBatch, TopicPartition
from eosim.models.txn_coordinator import EndTxnRequest, InitProducerIdRequest
from eosim import _scenario as sc
from eosim._cluster import Cluster
from eosim._topology import cluster_config
from eosim._diagram import mermaid
from eosim._coordinators import MARKER_RECONNECT_BACKOFF_MS
from eosim._faults import FaultLayer, facts, node_of
from eosim._net import DISCONNECTED, TIMED_OUT
from eosim._runner import run_scenario
from eosim._trace import dumps_lines
from eosim._world import World

TP = TopicPartition("out", 0)
HEAD = """\
# a fault-layer test
[scenario]
name = "t"
description = "t"
conformance = false

[[topics]]
name = "out"
partitions = 2

[actors.p1]
kind = "producer"
config = { "enable.idempotence" = false, "socket.timeout.ms" = 1000 }

[actors.p2]
kind = "producer"
config = { "transactional.id" = "tx-2", "socket.timeout.ms" = 1000 }
"""
PRODUCE_AND_FLUSH = """
[[steps]]
actor = "p1"
op = "produce"
topic = "out"
partition = 0
value = "v1"

[[steps]]
actor = "p1"
op = "flush"
"""


def scenario(tail: str = PRODUCE_AND_FLUSH, head: str = HEAD) -> sc.Scenario:
    return sc.load_scenario_text(head + textwrap.dedent(tail), "t")


def run(tail: str = PRODUCE_AND_FLUSH, seed: int | None = None, head: str = HEAD):
    return run_scenario(scenario(tail, head), seed)


def kinds(outcome, prefix: str = "fault.") -> list:
    return [e for e in outcome.trace if e.kind.startswith(prefix)]


def appends(outcome) -> list[list]:
    return [r for e in outcome.trace if e.kind == "log.append" for r in e.data["records"]]


def rule(**fields) -> str:
    body = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in fields.items())
    return "\n[[faults]]\n" + body


# --- facts, node names, error responses ------------------------------------------------------------------


def test_node_of_strips_the_incarnation_and_the_logical_connection():
    assert [node_of(n) for n in ("p1#2/txn", "p1#1", "broker-1/markers", "broker-1")] == \
        ["p1", "p1", "broker-1", "broker-1"]


def test_facts_of_a_request():
    batch = RecordBatch(records=(Record("k", "v", 0),), producer_id=1, producer_epoch=0, base_sequence=0,
                        is_transactional=True)
    f = facts(ProduceRequest(transactional_id="tx", acks=-1, batches=((TP, batch),)))
    assert (f.api, f.partitions, f.transactional_id) == ("Produce", (("out", 0),), "tx")
    f = facts(EndTxnRequest(transactional_id="tx", producer_id=1, producer_epoch=0, committed=True))
    assert (f.api, f.partitions, f.transactional_id) == ("EndTxn", (), "tx")


def test_every_api_has_an_error_response_naming_its_partitions():
    batch = RecordBatch(records=(), producer_id=-1, producer_epoch=-1, base_sequence=-1, is_transactional=False)
    response = error_response(ProduceRequest(transactional_id=None, acks=-1, batches=((TP, batch),)),
                              Errors.NOT_ENOUGH_REPLICAS)
    assert isinstance(response, ProduceResponse)
    assert [(r.partition, r.error) for r in response.responses] == [(TP, Errors.NOT_ENOUGH_REPLICAS)]
    assert error_response(InitProducerIdRequest(transactional_id="t", transaction_timeout_ms=1),
                          Errors.NOT_COORDINATOR).error is Errors.NOT_COORDINATOR
    # only REQUEST_TIMED_OUT and NOT_ENOUGH_REPLICAS_AFTER_APPEND come after the work
    after = {(api, e.name) for api, errors in INFRASTRUCTURE_ERRORS.items() for e, late in errors.items() if late}
    assert after == {("Produce", "REQUEST_TIMED_OUT"), ("Produce", "NOT_ENOUGH_REPLICAS_AFTER_APPEND")}


# --- actions -----------------------------------------------------------------------------------------------


def test_drop_a_response_after_the_broker_applied_the_request():
    out = run(rule(name="r", action="drop", message="Produce", direction="response") + PRODUCE_AND_FLUSH)
    assert [e.rule for e in kinds(out)] == ["r"]
    assert [r[2] for r in appends(out)] == ["v1", "v1"]  # the plain producer's retry is appended again
    assert "duplicate" in {a.name for a in out.result.anomalies}


def test_drop_a_request_is_retried_once_and_applied_once():
    out = run(rule(name="r", action="drop", message="Produce", direction="request") + PRODUCE_AND_FLUSH)
    assert [e.kind for e in kinds(out)] == ["fault.drop"]
    assert [r[2] for r in appends(out)] == ["v1"]
    assert out.exit_code == 0


def test_delay_reorders_across_connections_but_keeps_each_connection_fifo():
    world = World(1)
    cluster = Cluster(world, cluster_config({}), {"out": 1})
    s = scenario(rule(name="slow", action="delay", node="p1", direction="request", ms=50) + PRODUCE_AND_FLUSH)
    FaultLayer.install(world, cluster.network, cluster.broker_node, s)
    net, arrived = cluster.network, []

    def send(src: str, tid: str):
        reply = yield net.request(src, cluster.broker,
                                  InitProducerIdRequest(transactional_id=tid, transaction_timeout_ms=60_000), 1000)
        arrived.append((tid, world.now))

    for src, tid in (("p1#1/txn", "a"), ("p1#1/txn", "b"), ("p2#1/txn", "c")):
        world.env.process(send(src, tid))
    world.env.run(until=200)
    assert [tid for tid, _ in arrived] == ["c", "a", "b"]  # c overtakes; a stays ahead of b on its connection
    assert arrived[1][1] >= 52


def test_disconnect_fails_every_request_in_flight_and_loses_what_the_broker_has_not_read():
    world = World(1)
    cluster = Cluster(world, cluster_config({}), {"out": 1})
    s = scenario(rule(name="cut", action="disconnect", message="InitProducerId", direction="response")
                 + PRODUCE_AND_FLUSH)
    FaultLayer.install(world, cluster.network, cluster.broker_node, s)
    replies = []

    def send(tid: str):
        replies.append((tid, (yield cluster.network.request(
            "p1#1/txn", cluster.broker, InitProducerIdRequest(transactional_id=tid, transaction_timeout_ms=60_000),
            1000))))

    world.env.process(send("a"))
    world.env.process(send("b"))
    world.env.run(until=100)
    assert replies == [("a", DISCONNECTED), ("b", DISCONNECTED)]
    trace = world.trace.view()
    assert [e.failed for e in trace if e.kind == "net.close"] == [[1, 2]]
    handled = [e for e in trace if e.kind == "txn.state"]
    assert {e.transactional_id for e in handled} == {"a"}  # b was unread: gone with the socket
    assert any(e.kind == "net.drop" and e.closed for e in trace)


def test_a_disconnect_is_a_transport_error_the_producer_retries():
    out = run(rule(name="cut", action="disconnect", message="Produce", direction="request") + PRODUCE_AND_FLUSH)
    assert [r[2] for r in appends(out)] == ["v1"]
    assert out.observation.steps[1].outcome == "ok"
    assert [e.failed for e in out.trace if e.kind == "net.close"] == [[1]]


@pytest.mark.parametrize("error, after, copies", [("NOT_ENOUGH_REPLICAS", False, 1), ("REQUEST_TIMED_OUT", True, 2)])
def test_broker_errors_before_or_after_applying(error, after, copies):
    out = run(rule(name="e", action="error", message="Produce", error=error) + PRODUCE_AND_FLUSH)
    (event,) = kinds(out)
    assert (event.kind, event.error, event.after_apply) == ("fault.error", error, after)
    assert [r[2] for r in appends(out)] == ["v1"] * copies
    response = next(e for e in out.trace if e.kind == "net.response" and e.msg == "ProduceResponse")
    assert response.data["fields"]["responses"][0]["error"] == error


def test_an_error_strikes_only_apis_that_can_answer_it():
    out = run(rule(name="e", action="error", error="COORDINATOR_LOAD_IN_PROGRESS", count="until-healed") + """
        [[steps]]
        actor = "p1"
        op = "produce"
        topic = "out"
        partition = 0
        value = "v1"

        [[steps]]
        actor = "p1"
        op = "flush"

        [[steps]]
        actor = "p2"
        op = "init_transactions"
        timeout_ms = 1200
        expect_error = "COORDINATOR_LOAD_IN_PROGRESS"
        """)
    assert {e.msg for e in kinds(out, "fault.error")} == {"InitProducerIdRequest"}
    assert [r[2] for r in appends(out)] == ["v1"]
    assert out.exit_code == 0


# --- the transaction coordinator's own appends (TxnLogAppend) ---------------------------------------------


@pytest.mark.parametrize("error, after, records", [("NOT_ENOUGH_REPLICAS", False, 1),
                                                   ("NOT_ENOUGH_REPLICAS_AFTER_APPEND", True, 2)])
def test_a_txn_log_append_fails_before_or_after_the_leader_appends(error, after, records):
    """The coordinator's write fails: the client gets COORDINATOR_NOT_AVAILABLE (TSM.appendTransactionToLog) and the
    metadata is untouched, so the retry gets epoch 0; after the append the record is in the log all the same."""
    world = World(1)
    cluster = Cluster(world, cluster_config({}), {"out": 1})
    s = scenario(rule(name="isr", action="error", message="TxnLogAppend", transactional_id="tx-2", error=error)
                 + PRODUCE_AND_FLUSH)
    FaultLayer.install(world, cluster.network, cluster.broker_node, s)
    replies = []

    def init():
        request = InitProducerIdRequest(transactional_id="tx-2", transaction_timeout_ms=60_000)
        for _ in range(2):
            replies.append((yield cluster.network.request("p2#1/txn", cluster.broker, request, 1000)))

    world.env.process(init())
    world.env.run(until=100)
    assert [(r.error, r.producer_epoch) for r in replies] == [(Errors.COORDINATOR_NOT_AVAILABLE, -1), (Errors.NONE, 0)]
    assert [(r.state.kafka_name, r.producer_epoch) for r in cluster.broker_node.txn.log] == [("Empty", 0)] * records
    [fault] = [e for e in world.trace.dicts() if e["kind"].startswith("fault.")]
    assert (fault["kind"], fault["node"], fault["data"]) == ("fault.error", "nemesis", {
        "rule": "isr", "msg": "TxnLogAppend", "broker": "broker-1", "write_id": 0, "transactional_id": "tx-2",
        "error": error, "after_apply": after})


def test_txn_log_append_rules_select_by_transactional_id_and_count_down():
    """Only tx-3's appends fail, twice; its InitProducerId retries through them. The rule strikes no request, and a
    rule without message strikes no append (it is for requests)."""
    head = HEAD + '\n[actors.p3]\nkind = "producer"\nconfig = { "transactional.id" = "tx-3" }\n'
    out = run(rule(name="isr", action="error", message="TxnLogAppend", transactional_id="tx-3",
                   error="NOT_ENOUGH_REPLICAS", count=2)
              + rule(name="requests", action="error", error="NOT_ENOUGH_REPLICAS", count="until-healed") + """
        [[steps]]
        actor = "p2"
        op = "init_transactions"
        expect_error = "NONE"

        [[steps]]
        actor = "p3"
        op = "init_transactions"
        expect_error = "NONE"
        """, head=head)
    faults = kinds(out, "fault.error")
    assert [(e.rule, e.msg, e.transactional_id) for e in faults] == \
        [("isr", "TxnLogAppend", "tx-3")] * 2
    answers = [e.data["fields"]["error"] for e in out.trace
               if e.kind == "net.response" and e.msg == "InitProducerIdResponse"]
    assert answers == ["NONE", "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_NOT_AVAILABLE", "NONE"]
    assert out.exit_code == 0
    assert "⚡ isr: tx-3's TxnLogAppend failed NOT_ENOUGH_REPLICAS" in mermaid(out.trace)


# --- selectors, order, counts, arming, heal ----------------------------------------------------------------


@pytest.mark.parametrize("selector, hits", [
    ({"message": "Produce"}, 2), ({"message": "EndTxn"}, 0), ({"direction": "response", "message": "Produce"}, 1),
    ({"node": "p1"}, 2), ({"node": "p2"}, 0), ({"topic": "out"}, 2), ({"topic": "out", "partition": 1}, 0),
    ({"transactional_id": "tx-2"}, 0), ({"src": "p1"}, 2), ({"src": "broker-1"}, 0), ({"dst": "broker-1"}, 2),
    ({"dst": "p1"}, 0), ({"src": "p1", "direction": "response"}, 1), ({"src": "p2"}, 0),
])
def test_selectors_are_anded(selector, hits):
    """p1's one Produce round trip (request + response) against each selector, counted until healed."""
    out = run(rule(name="look", action="delay", ms=1, count="until-healed", **selector) + PRODUCE_AND_FLUSH)
    assert len(kinds(out, "fault.delay")) == hits


TXN_COMMIT = """
[[steps]]
actor = "p2"
op = "init_transactions"

[[steps]]
actor = "p2"
op = "begin_transaction"

[[steps]]
actor = "p2"
op = "produce"
topic = "out"
partition = 0
value = "t1"

[[steps]]
actor = "p2"
op = "commit_transaction"

[[steps]]
actor = "p2"
op = "sleep"
ms = 100
"""


@pytest.mark.parametrize("selector, sources", [
    # the client's registration and the leader's KIP-890 verification are the same API
    ({"message": "AddPartitionsToTxn"}, ["p2#1/txn", "broker-1/verification"]),
    ({"message": "AddPartitionsToTxn", "src": "p2"}, ["p2#1/txn"]),
    ({"message": "AddPartitionsToTxn", "src": "broker-1"}, ["broker-1/verification"]),
    ({"message": "WriteTxnMarkers", "src": "broker-1", "dst": "broker-1"}, ["broker-1/markers"]),
    ({"message": "WriteTxnMarkers", "src": "p2"}, []),
])
def test_src_and_dst_tell_a_brokers_own_requests_from_a_clients(selector, sources):
    """A response is judged by its request: each request the rule selects is delayed twice (there and back)."""
    out = run(rule(name="look", action="delay", ms=1, count="until-healed", direction="request", **selector)
              + TXN_COMMIT)
    assert [e.data["src"] for e in kinds(out, "fault.delay")] == sources
    back = run(rule(name="look", action="delay", ms=1, count="until-healed", direction="response", **selector)
               + TXN_COMMIT)
    assert [e.data["dst"] for e in kinds(back, "fault.delay")] == sources


def test_the_marker_channel_reconnects_after_its_backoff():
    """A connection closed at every WriteTxnMarkers send: each resend waits reconnect.backoff.ms (a resend at
    once would loop with no time passing), and the markers land once the rule is spent."""
    out = run(rule(name="cut", action="disconnect", message="WriteTxnMarkers", src="broker-1", count=2)
              + TXN_COMMIT)
    times = [e.t for e in kinds(out, "fault.disconnect")]
    assert len(times) == 2
    assert MARKER_RECONNECT_BACKOFF_MS == 50  # Kafka's reconnect.backoff.ms
    assert all(later - earlier >= 50 for earlier, later in zip(times, times[1:]))
    assert [e.data["control"] for e in out.trace if e.kind == "log.marker"] == ["COMMIT"]


@pytest.mark.parametrize("field, value, reason", [
    ("src", "nobody", 'no node "nobody"'), ("dst", "p9", 'no node "p9"'),
])
def test_src_and_dst_name_a_node_of_the_scenario(field, value, reason):
    with pytest.raises(sc.ScenarioError) as err:
        scenario(rule(name="r", action="drop", message="Produce", **{field: value}) + PRODUCE_AND_FLUSH)
    assert f"faults[0].{field}" in str(err.value) and reason in str(err.value)


def test_a_txn_log_append_has_no_src_or_dst():
    with pytest.raises(sc.ScenarioError) as err:
        scenario(rule(name="r", action="error", message="TxnLogAppend", error="NOT_ENOUGH_REPLICAS", src="broker-1")
                 + PRODUCE_AND_FLUSH)
    assert "faults[0].src" in str(err.value) and "sent nowhere" in str(err.value)


def test_the_first_matching_rule_acts_and_counts_go_down_in_event_order():
    out = run(rule(name="first", action="delay", message="Produce", ms=5, count=1)
              + rule(name="second", action="delay", node="p1", ms=7, count=2) + PRODUCE_AND_FLUSH)
    assert [(e.rule, e.msg) for e in kinds(out)] == [
        ("first", "ProduceRequest"), ("second", "ProduceResponse")]


def test_a_rule_armed_after_a_step_ignores_earlier_messages():
    tail = rule(name="late", action="drop", message="Produce", after_step=1) + PRODUCE_AND_FLUSH + """
        [[steps]]
        actor = "p1"
        op = "produce"
        topic = "out"
        partition = 1
        value = "v2"

        [[steps]]
        actor = "p1"
        op = "flush"
        """
    out = run(tail)
    assert [e.kind for e in kinds(out)] == ["fault.arm", "fault.drop"]
    assert kinds(out)[1].correlation_id > max(e.correlation_id for e in out.trace
                                                        if e.kind == "net.request" and e.t < kinds(out)[0].t)


def test_heal_ends_an_until_healed_rule_and_restores_cut_links():
    tail = rule(name="blackhole", action="drop", node="p1", count="until-healed") + """
        [[steps]]
        actor = "nemesis"
        op = "partition"
        nodes = ["p2"]

        [[steps]]
        actor = "p1"
        op = "produce"
        topic = "out"
        partition = 0
        value = "v1"

        [[steps]]
        actor = "p1"
        op = "sleep"
        ms = 2500

        [[steps]]
        actor = "nemesis"
        op = "heal"

        [[steps]]
        actor = "p1"
        op = "flush"

        [[steps]]
        actor = "p2"
        op = "init_transactions"
        expect_error = "NONE"
        """
    out = run(tail)
    assert out.exit_code == 0
    drops = kinds(out, "fault.drop")
    heal = next(e for e in out.trace if e.kind == "fault.heal")
    assert drops and all(e.seq < heal.seq for e in drops)
    assert [r[2] for r in appends(out)] == ["v1"]


def test_partition_cuts_only_links_across_the_cut():
    s = scenario(PRODUCE_AND_FLUSH)
    world = World(1)
    cluster = Cluster(world, cluster_config({}), {"out": 2})
    layer = FaultLayer.install(world, cluster.network, cluster.broker_node, s)
    layer.partition(["p1"])
    replies = {}

    def send(src: str):
        replies[src] = yield cluster.network.request(
            src, cluster.broker, InitProducerIdRequest(transactional_id=src, transaction_timeout_ms=60_000), 100)

    for src in ("p1#1/txn", "p2#1/txn"):
        world.env.process(send(src))
    world.env.run(until=200)
    assert replies["p1#1/txn"] is TIMED_OUT and replies["p2#1/txn"].error is Errors.NONE
    layer.heal()
    assert layer.end() == world.now + 1  # nothing in force; the held request arrives after the heal


def _held_run(close_before_heal: bool):
    """p1 sends two InitProducerId over a cut link on one connection; both time out; then the heal."""
    world = World(1)
    cluster = Cluster(world, cluster_config({}), {"out": 1})
    layer = FaultLayer.install(world, cluster.network, cluster.broker_node, scenario(PRODUCE_AND_FLUSH))
    layer.partition(["p1"])
    replies = []

    def send(tid: str):
        replies.append((yield cluster.network.request(
            "p1#1/txn", cluster.broker, InitProducerIdRequest(transactional_id=tid, transaction_timeout_ms=60_000), 100)))

    world.env.process(send("first"))
    world.env.process(send("second"))
    world.env.run(until=200)
    if close_before_heal:
        layer.disconnect(["p1"])
    layer.heal()
    world.env.run(until=300)
    handled = [e["data"]["transactional_id"] for e in world.trace.dicts() if e["kind"] == "txn.state"]
    return world, replies, handled


def test_a_message_on_a_cut_link_is_held_and_delivered_in_order_after_the_heal():
    """TCP on a live connection: a partition does not lose one message and deliver the next. Both requests
    are held (fault.hold), the client's own timeouts fire as before, and after the heal the broker gets them
    in the order they were sent."""
    world, replies, handled = _held_run(close_before_heal=False)
    assert replies == [TIMED_OUT, TIMED_OUT]
    holds = [e for e in world.trace.dicts() if e["kind"] == "fault.hold"]
    assert [(e["data"]["rule"], e["data"]["msg"]) for e in holds] == [("partition", "InitProducerIdRequest")] * 2
    assert not any(e["kind"] in ("fault.drop", "net.drop") for e in world.trace.dicts())
    assert handled[:1] == ["first"] and "second" in handled and handled.index("second") > handled.index("first")


def test_a_held_message_is_lost_with_its_connection():
    world, replies, handled = _held_run(close_before_heal=True)
    assert replies == [TIMED_OUT, TIMED_OUT] and handled == []
    assert [e["data"]["closed"] for e in world.trace.dicts() if e["kind"] == "net.drop"] == [True, True]


def test_clog_slows_every_message_on_the_node_links():
    out = run("""
        [[steps]]
        actor = "nemesis"
        op = "clog"
        nodes = ["p1"]
        ms = 300
        """ + PRODUCE_AND_FLUSH)
    delays = kinds(out, "fault.delay")
    assert [(e.rule, e.ms) for e in delays] == [("clog", 300)] * 2
    flush = next(e for e in out.trace if e.kind == "client.op" and e.op == "flush")
    assert flush.t >= 600


# --- pause -----------------------------------------------------------------------------------------------


def test_a_paused_actor_runs_nothing_and_its_next_step_waits():
    out = run("""
        [[steps]]
        actor = "p2"
        op = "init_transactions"

        [[steps]]
        actor = "nemesis"
        op = "pause"
        nodes = ["p2"]
        ms = 3000

        [[steps]]
        actor = "p1"
        op = "produce"
        topic = "out"
        partition = 0
        value = "v1"

        [[steps]]
        actor = "p1"
        op = "flush"

        [[steps]]
        actor = "p2"
        op = "begin_transaction"
        """)
    pause = next(e for e in out.trace if e.kind == "fault.pause")
    resume = next(e for e in out.trace if e.kind == "fault.resume")
    assert resume.t == pause.t + 3000
    p1_flush = next(e for e in out.trace if e.kind == "client.op" and e.op == "flush")
    p2_begin = next(e for e in out.trace if e.kind == "client.op" and e.op == "begin_transaction")
    assert p1_flush.t < resume.t <= p2_begin.t  # others go on; the paused actor's step waits
    assert not [e for e in out.trace if e.node.startswith("p2") and pause.t < e.t < resume.t]


@pytest.mark.parametrize("pause_ms, expected", [(0, "TIMED_OUT"), (500, "NONE")])
def test_a_paused_clients_request_timeout_fires_only_when_it_wakes(pause_ms, expected):
    """The response comes after the 10 ms timeout; while the client sleeps it waits in the socket, and
    the overdue timeout fires only at wake-up, when the response is already there."""
    world = World(1)
    cluster = Cluster(world, cluster_config({}), {"out": 1})
    layer = FaultLayer.install(world, cluster.network, cluster.broker_node, scenario())
    cluster.network.set_latency("p1#1", cluster.broker, 20)
    got = {}

    def send():
        reply = yield cluster.network.request("p1#1", cluster.broker, InitProducerIdRequest(
            transactional_id=None, transaction_timeout_ms=-1), 10)
        got["reply"] = "TIMED_OUT" if reply is TIMED_OUT else reply.error.name

    if pause_ms:
        layer.pause("p1", pause_ms)
    world.env.process(send())
    world.env.run(until=1000)
    assert got["reply"] == expected


# --- the random nemesis and determinism -------------------------------------------------------------------

NEMESIS_TAIL = """
[nemesis]
interval_ms = 200
duration_ms = 200

[[steps]]
actor = "p2"
op = "init_transactions"

[[steps]]
actor = "p2"
op = "begin_transaction"

[[steps]]
actor = "p2"
op = "produce"
topic = "out"
partition = 1
value = "b1"

[[steps]]
actor = "p2"
op = "sleep"
ms = 3000

[[steps]]
actor = "p2"
op = "commit_transaction"
"""


def test_the_random_nemesis_strikes_heals_and_stops_with_the_steps():
    out = run(NEMESIS_TAIL, seed=3)
    events = kinds(out)
    assert events and all(e.rule == "nemesis" for e in events)
    strikes = [e for e in events if e.kind in ("fault.partition", "fault.clog", "fault.pause", "fault.disconnect",
                                                  "fault.arm")]
    heals = [e for e in events if e.kind == "fault.heal"]
    assert len(strikes) >= 3 and len(heals) >= len(strikes) - 1
    last_step = max(e.t for e in out.trace if e.kind == "client.op" and e.op == "commit_transaction")
    assert all(e.t <= last_step for e in strikes)
    assert out.exit_code == 0


def test_same_seed_same_trace_other_seed_other_faults():
    first = dumps_lines(run(NEMESIS_TAIL, seed=5).trace)
    assert dumps_lines(run(NEMESIS_TAIL, seed=5).trace) == first
    assert dumps_lines(run(NEMESIS_TAIL, seed=6).trace) != first


def test_a_layer_with_nothing_to_do_leaves_the_trace_unchanged():
    """A nemesis that never gets to strike changes nothing: its stream is its own (world.rng("nemesis"))."""
    plain = run(PRODUCE_AND_FLUSH)
    quiet = run("\n[nemesis]\ninterval_ms = 100000\n" + PRODUCE_AND_FLUSH)
    assert dumps_lines(quiet.trace) == dumps_lines(plain.trace)


def test_end_heals_and_the_settle_waits_for_held_back_messages():
    out = run(rule(name="slow", action="delay", message="Produce", direction="request", ms=5000) + """
        [[steps]]
        actor = "nemesis"
        op = "partition"
        nodes = ["p2"]

        [[steps]]
        actor = "p1"
        op = "produce"
        topic = "out"
        partition = 0
        value = "v1"
        """)
    assert next(e for e in out.trace if e.kind == "fault.heal").rule == "end"
    assert [r[2] for r in appends(out)] == ["v1"]  # delivered after the steps, before the observation


def test_the_scenarios_docs_faults_md_names_exist():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    table = (root / "docs" / "faults.md").read_text().split("## Rules")[0]
    named = set(re.findall(r"`((?:fault|bug|transaction)-[a-z0-9-]+)`", table))
    assert len(named) >= 15
    assert {n for n in named if not (root / "experiments" / "scenarios" / f"{n}.toml").is_file()} == set()
