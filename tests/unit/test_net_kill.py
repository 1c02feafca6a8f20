"""A killed node (sim/_net.py ``kill``): its connections reset at once, connects to it are refused and paced by
librdkafka's reconnect backoff, and after ``revive`` a request goes out at the next allowed connect."""

from __future__ import annotations

from eosim._net import CLIENT_RECONNECT_BACKOFF_MS, DISCONNECTED, TIMED_OUT, Network
from eosim._world import World


def network(answer: bool = True) -> tuple[World, Network]:
    world = World(3)
    net = Network(world)
    net.register("broker-1", (lambda packet: net.respond(packet, "pong")) if answer else (lambda _packet: None))
    return world, net


def outcome(world: World, event) -> tuple[int, object]:
    """(when it fired, its value)."""
    fired: list[tuple[int, object]] = []
    event.callbacks.append(lambda e: fired.append((world.now, e.value)))
    world.env.run(until=event)
    return fired[0]


def test_a_kill_fails_the_waiting_request_at_once_not_at_its_timeout() -> None:
    world, net = network(answer=False)  # the request waits for an answer that never comes
    reply = net.request("p1", "broker-1", "ping", 30_000)
    world.env.run(until=10)
    net.kill("broker-1")
    assert outcome(world, reply) == (10, DISCONNECTED)


def test_a_silent_host_is_not_a_kill_its_requester_times_out() -> None:
    world, net = network(answer=False)
    reply = net.request("p1", "broker-1", "ping", 500)
    assert outcome(world, reply) == (500, TIMED_OUT)


def test_connects_to_a_killed_node_are_refused_with_a_growing_jittered_backoff() -> None:
    world, net = network()
    net.kill("broker-1")
    refused = []
    for _ in range(5):
        when, value = outcome(world, net.request("p1", "broker-1", "ping", 60_000))
        assert value is DISCONNECTED
        refused.append(when)
    gaps = [b - a for a, b in zip(refused, refused[1:])]
    assert refused[0] == 0  # the first connect is not backed off
    initial, _maximum = CLIENT_RECONNECT_BACKOFF_MS
    for i, gap in enumerate(gaps):  # rd_kafka_broker_update_reconnect_backoff: 75-150 % of a doubling backoff
        assert int(initial * 2 ** i * 0.75) <= gap <= int(initial * 2 ** i * 1.5), gaps


def test_the_maximum_caps_the_backoff() -> None:
    world, net = network()
    net.kill("broker-1")
    refused = [outcome(world, net.request("p1", "broker-1", "ping", 600_000))[0] for _ in range(12)]
    assert max(b - a for a, b in zip(refused, refused[1:])) <= CLIENT_RECONNECT_BACKOFF_MS[1]


def test_a_request_waits_for_the_backoff_then_reaches_the_revived_node() -> None:
    world, net = network()
    net.kill("broker-1")
    first, _ = outcome(world, net.request("p1", "broker-1", "ping", 60_000))  # refused: the next connect waits
    net.revive("broker-1")
    when, value = outcome(world, net.request("p1", "broker-1", "ping", 60_000))
    assert value == "pong"
    assert first + int(CLIENT_RECONNECT_BACKOFF_MS[0] * 0.75) <= when - 2  # connect, then one round trip
    # the connection is up again: the next request goes out at once
    now = world.now
    assert outcome(world, net.request("p1", "broker-1", "ping", 60_000)) == (now + 2, "pong")


def test_a_request_times_out_while_waiting_for_a_connect() -> None:
    world, net = network()
    net.kill("broker-1")
    outcome(world, net.request("p1", "broker-1", "ping", 60_000))
    outcome(world, net.request("p1", "broker-1", "ping", 60_000))  # the backoff is now 150-300 ms
    sent = world.now
    assert outcome(world, net.request("p1", "broker-1", "ping", 50)) == (sent + 50, TIMED_OUT)


def test_the_killed_node_s_own_connections_reset_too() -> None:
    world, net = network(answer=False)
    net.register("controller", lambda _packet: None)
    reply = net.request("broker-1/controller", "controller", "heartbeat", 30_000)
    world.env.run(until=5)
    net.kill("broker-1")
    assert outcome(world, reply) == (5, DISCONNECTED)
