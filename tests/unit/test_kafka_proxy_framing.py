"""sim/_realkafka/proxy.py without a broker: Kafka framing on hand-built frames, the drop rules, the
refusals, and a relay over loopback sockets to a fake upstream."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from eosim.models.api import API_NAMES
from eosim._conformable import DROPPABLE_APIS, refusal
from eosim._realkafka.proxy import (API_KEYS, DropRule, FrameReader, FramingError, KafkaProxy, Rules, frame,
                                 request_header, response_correlation_id)
from eosim._scenario import Fault


def request(api_key: int, api_version: int, correlation_id: int, body: bytes = b"") -> bytes:
    # header v1: api_key, api_version, correlation_id, client_id (int16 length + bytes)
    return frame(struct.pack(">hhih", api_key, api_version, correlation_id, 2) + b"p1" + body)


def response(correlation_id: int, body: bytes = b"") -> bytes:
    return frame(struct.pack(">i", correlation_id) + body)


def test_request_header_is_read_from_the_payload():
    wire = request(0, 10, 7, b"\x00" * 5)
    assert struct.unpack(">i", wire[:4])[0] == len(wire) - 4
    assert request_header(wire[4:]) == (0, 10, 7)


def test_response_correlation_id_comes_first():
    assert response_correlation_id(response(123456, b"\x01\x02")[4:]) == 123456
    assert response_correlation_id(response(-5)[4:]) == -5


def test_short_headers_are_refused():
    with pytest.raises(FramingError):
        request_header(b"\x00" * 7)
    with pytest.raises(FramingError):
        response_correlation_id(b"\x00" * 3)


def test_reader_cuts_frames_whatever_the_chunks():
    stream = request(0, 9, 1, b"abc") + request(22, 4, 2) + response(3, b"x" * 300)
    for chunk in (1, 2, 3, 5, 7, 64, len(stream)):
        reader = FrameReader()
        frames = [f for i in range(0, len(stream), chunk) for f in reader.feed(stream[i:i + chunk])]
        assert b"".join(frames) == stream  # byte for byte, nothing held back
        assert [len(f) for f in frames] == [len(request(0, 9, 1, b"abc")), len(request(22, 4, 2)),
                                            len(response(3, b"x" * 300))]
        assert reader.pending == 0


def test_reader_holds_an_incomplete_frame():
    reader = FrameReader()
    whole = request(1, 12, 9, b"zz")
    assert list(reader.feed(whole[:-1])) == []
    assert reader.pending == len(whole) - 1
    assert list(reader.feed(whole[-1:])) == [whole]


def test_reader_refuses_a_negative_size():
    with pytest.raises(FramingError):
        list(FrameReader().feed(struct.pack(">i", -1)))


def test_rules_drop_the_first_count_matches_in_order():
    rules = Rules([DropRule("resp", "Produce", "response", 2), DropRule("any-endtxn", "EndTxn", None, 1)])
    assert not rules.judge(1, "request", API_KEYS["Produce"], 10, 1)
    assert rules.judge(1, "response", API_KEYS["Produce"], 10, 1)
    assert not rules.judge(1, "response", API_KEYS["Fetch"], 12, 2)
    assert rules.judge(2, "response", API_KEYS["Produce"], 10, 3)
    assert not rules.judge(2, "response", API_KEYS["Produce"], 10, 4)  # count spent
    assert rules.judge(1, "request", API_KEYS["EndTxn"], 4, 5)  # no direction: the request is first
    assert not rules.judge(1, "response", API_KEYS["EndTxn"], 4, 5)
    assert [(e.rule, e.connection, e.direction, e.api, e.correlation_id) for e in rules.events] == [
        ("resp", 1, "response", "Produce", 1), ("resp", 2, "response", "Produce", 3),
        ("any-endtxn", 1, "request", "EndTxn", 5)]
    assert rules.seen[("Produce", "response")] == 3


def test_droppable_apis_are_simulated_apis_with_keys():
    assert set(DROPPABLE_APIS) <= set(API_NAMES)
    assert set(API_NAMES) <= set(API_KEYS)


@pytest.mark.parametrize("fields, why", [
    (dict(action="delay", ms=5), "only drops"),
    (dict(action="drop"), "needs message"),
    (dict(action="drop", message="WriteTxnMarkers"), "broker to broker"),
    (dict(action="drop", message="AddPartitionsToTxn"), "broker to broker"),
    (dict(action="drop", message="JoinGroup"), "group-membership"),
    (dict(action="drop", message="Produce", node="p1"), "node"),
    (dict(action="drop", message="Produce", topic="out"), "topic"),
    (dict(action="drop", message="Produce", after_step=1), "after_step"),
    (dict(action="drop", message="Produce", count="until-healed"), "no heal"),
])
def test_refusals(fields, why):
    assert why in refusal(Fault(name="r", **fields))


def test_plain_drops_are_accepted():
    assert refusal(Fault(name="r", action="drop", message="Produce", direction="response", count=3)) is None
    assert refusal(Fault(name="r", action="drop", message="EndTxn")) is None


def _fake_broker() -> tuple[socket.socket, list[bytes]]:
    """Answers every request frame with a response carrying its correlation id and api_key."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        reader = FrameReader()
        while data := conn.recv(4096):
            for whole in reader.feed(data):
                received.append(whole)
                api_key, _, cid = request_header(whole[4:])
                conn.sendall(response(cid, struct.pack(">h", api_key)))
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, received


def _read_frames(sock: socket.socket, n: int) -> list[bytes]:
    reader, frames = FrameReader(), []
    sock.settimeout(5)
    while len(frames) < n:
        frames.extend(reader.feed(sock.recv(4096)))
    return frames


def test_relay_forwards_byte_for_byte_and_drops_by_rule():
    server, received = _fake_broker()
    rules = [DropRule("lose-produce-response", "Produce", "response", 1),
             DropRule("lose-fetch-request", "Fetch", "request", 1)]
    with KafkaProxy(server.getsockname(), rules=rules) as proxy:
        client = socket.create_connection(("127.0.0.1", proxy.port))
        sent = [request(18, 3, 1), request(0, 10, 2, b"batch"), request(1, 12, 3), request(0, 10, 4, b"again")]
        client.sendall(b"".join(sent))
        answers = _read_frames(client, 2)
        client.close()
    server.close()
    assert received == [sent[0], sent[1], sent[3]]  # the Fetch request never reached the broker
    assert answers == [response(1, struct.pack(">h", 18)), response(4, struct.pack(">h", 0))]  # 2's was dropped
    # the two directions run in their own threads: the events' order across them is not fixed
    assert sorted((e.rule, e.direction, e.correlation_id) for e in proxy.events) == [
        ("lose-fetch-request", "request", 3), ("lose-produce-response", "response", 2)]
