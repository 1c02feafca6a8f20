"""eosim._net
=======

The simulated network: named nodes, per-link latency, and FIFO delivery per connection (a connection
is one direction between two nodes, like one TCP stream). Every packet passes the ``route`` hook, the
single place where faults decide to deliver, delay, hold or drop it; a delay holds back the later packets
of the same connection too, so connections stay FIFO while packets on different connections reorder. A
packet on a cut link is held until ``release`` (the heal), as TCP retransmits it: a live connection never
loses one message and delivers the next.

A killed node (``kill``, the replicated runtime's broker crash) is a process that died on a host that stays up:
its connections reset at once, so what waits for its answer fails with DISCONNECTED (librdkafka's _TRANSPORT),
and a connect to it is refused. A request for a killed node waits for its connection's next connect attempt,
paced by the reconnect backoff (librdkafka's ``rd_kafka_broker_update_reconnect_backoff``, rdkafka_broker.c: the
backoff starts at reconnect.backoff.ms, doubles at each attempt up to reconnect.backoff.max.ms, each wait jittered
to 75-150 %, and starts over once the last attempt is more than the maximum ago); a refused attempt fails every
request waiting for it with DISCONNECTED (``rd_kafka_broker_fail`` purges the output queue with the connect
error), and the requester decides whether to retry. A node that is merely cut off (``route`` HOLD) is the old
silent host: no reset, its requesters time out.
"""

from __future__ import annotations

import heapq
from functools import partial
from typing import Any, Callable

import attrs
import simpy
from simpy.core import NORMAL
from attrs import define, field

from eosim._world import World

DEFAULT_LATENCY_MS = 1  # one way, per link
# (reconnect.backoff.ms, reconnect.backoff.max.ms): librdkafka's defaults (rdkafka_conf.c) for a client's
# connections, the Java NetworkClient's (CommonClientConfigs) for a broker's or the controller's own.
CLIENT_RECONNECT_BACKOFF_MS = (100, 10_000)
SERVER_RECONNECT_BACKOFF_MS = (50, 1_000)


@define(eq=False)  # not frozen: built twice per round trip, and a frozen one costs twice as much
class Packet:
    """One message on the wire (never changed once sent)."""

    src: str
    dst: str
    correlation_id: int
    payload: Any
    is_response: bool
    sent_at: int
    incarnation: int = 0  # of its connection: closing a connection loses the packets still on it
    request: Any = None  # a response's request payload (faults judge a response by its request)


class Failure:
    """The value a request event fires with when no response came: two singletons below."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


TIMED_OUT = Failure("TIMED_OUT")  # no response within the request's timeout
DISCONNECTED = Failure("DISCONNECTED")  # its connection closed first (librdkafka's _TRANSPORT)

NO_RESPONSE = object()  # a handler's answer to a request that gets none (an acks=0 Produce)
HOLD = -1  # route's answer for a packet on a cut link: kept until release()
# route(packet) -> extra delay in ms (0 = deliver normally), HOLD, or None (drop).
Route = Callable[[Packet], "int | None"]


@define(eq=False)
class _Reconnect:
    """A connection to a killed node, or one backing off after a refused connect (rd_kafka_broker_t's
    rkb_ts_reconnect and rkb_reconnect_backoff_ms)."""

    backoff_ms: int
    at: int = 0  # no connect attempt before this
    pending: list[Packet] = field(factory=list)  # requests waiting for the connect, in send order
    scheduled: bool = False


def deliver_all(_packet: Packet) -> int | None:
    return 0


def awake(_node: str) -> int:
    return 0


@define(eq=False)
class Network:
    world: World
    default_latency_ms: int = DEFAULT_LATENCY_MS
    route: Route = deliver_all
    # asleep(node) -> when a node stopped by a pause resumes (0: running); set by sim/_faults.py. A
    # paused client's request timeouts, like all its timers, fire only once it wakes.
    asleep: Callable[[str], int] = awake
    # the fault layer's paused nodes (its dict, shared): empty, no one is asleep, and ``asleep`` need not be asked
    paused: dict[str, int] = field(factory=dict)
    _latency: dict[tuple[str, str], int] = field(factory=dict)
    _handlers: dict[str, Callable[[Packet], None]] = field(factory=dict)
    _fifo_tail: dict[tuple[str, str], int] = field(factory=dict)
    _waiting: dict[int, tuple[tuple[str, str], simpy.Event]] = field(factory=dict)  # cid -> (connection, reply)
    _connections: dict[tuple[str, str], int] = field(factory=dict)  # (requester, responder) -> incarnation
    _held: list[Packet] = field(factory=list)  # sent over a cut link, in send order
    # The request timeouts: (deadline, cid) of the waiting requests (and of answered ones not yet at the head),
    # served by one timer at the earliest deadline instead of one SimPy timer per request, which would almost
    # always fire for a request answered long before.
    _deadlines: list[tuple[int, int]] = field(factory=list)
    _timers: set[int] = field(factory=set)  # when the pending timers fire
    _next_correlation_id: int = 0
    disconnected: int = field(default=0, init=False)  # requests failed with DISCONNECTED so far (none: no requester need look for one)
    _killed: set[str] = field(factory=set)
    _reconnects: dict[tuple[str, str], _Reconnect] = field(factory=dict)
    # the trace's emitters of the two kinds traced per packet (Trace.emitter)
    _emit_request: Callable[..., Any] = field(init=False, repr=False)
    _emit_response: Callable[..., Any] = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._emit_request = self.world.trace.emitter("net.request")
        self._emit_response = self.world.trace.emitter("net.response")

    def register(self, node: str, handler: Callable[[Packet], None]) -> None:
        self._handlers[node] = handler

    def set_latency(self, a: str, b: str, ms: int) -> None:
        self._latency[(a, b)] = self._latency[(b, a)] = ms

    def request(self, src: str, dst: str, payload: Any, timeout_ms: int) -> simpy.Event:
        """Send ``payload``; the returned event fires with the response payload, or with
        ``TIMED_OUT`` when no response arrived within ``timeout_ms`` (a late response is then
        discarded, as a client discards responses to requests it gave up on)."""
        self._next_correlation_id = cid = self._next_correlation_id + 1
        env = self.world.env
        reply = env.event()
        conn = (src, dst)
        self._waiting[cid] = (conn, reply)
        incarnation = self._connections.setdefault(conn, 0)
        now = env._now
        # (src, dst, correlation_id, payload, is_response, sent_at, incarnation) by position: a class called with
        # keywords packs them into a dict, about 0.4 µs more per packet (eosim.models.values)
        packet = Packet(src, dst, cid, payload, False, now, incarnation)
        if self._reconnects and conn in self._reconnects or dst in self._killed:
            self._connect_later(conn, packet)
        else:
            self._send(packet)
        deadline = now + timeout_ms
        heapq.heappush(self._deadlines, (deadline, cid))
        timers = self._timers
        if not timers or min(timers) > deadline:  # else a timer fires by then (the earliest is never later than the earliest waiting deadline)
            self._set_timer()
        return reply

    def _set_timer(self) -> None:
        """A timer at the earliest deadline of a waiting request, unless one fires by then."""
        deadlines, waiting = self._deadlines, self._waiting
        while deadlines and deadlines[0][1] not in waiting:  # answered
            heapq.heappop(deadlines)
        if deadlines and (not self._timers or min(self._timers) > deadlines[0][0]):
            at = deadlines[0][0]
            self._timers.add(at)
            self.world.env.call_later(at - self.world.now, self._expire)

    def _expire(self, _event: simpy.Event) -> None:
        """The requests whose deadline came time out, in the order they were sent."""
        now = self.world.now
        self._timers.discard(now)
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            self._time_out(heapq.heappop(deadlines)[1])
        self._set_timer()

    def _time_out(self, correlation_id: int) -> None:
        waiting = self._waiting.get(correlation_id)
        if waiting is None:
            return
        wake = self.asleep(waiting[0][0])
        if wake > self.world.now:
            self.world.env.call_later(wake - self.world.now, lambda _e: self._time_out(correlation_id))
            return
        del self._waiting[correlation_id]
        waiting[1].succeed(TIMED_OUT)

    def close(self, match: Callable[[str, str], bool]) -> None:
        """Close every connection (src, dst) that ``match`` accepts, as a socket error does: the requests
        waiting for a response on it fail at once with DISCONNECTED (librdkafka's rd_kafka_broker_fail
        purges the wait-response queue with _TRANSPORT), and whatever the broker has not read yet is lost
        with the socket: packets still on the wire, and requests queued behind the one it is handling
        (``live``). The request being handled completes; its response is lost. The next request opens a
        fresh connection, which does not queue behind the old one's packets."""
        for src, dst in sorted(conn for conn in self._connections if match(*conn)):
            self._connections[(src, dst)] += 1
            self._fifo_tail.pop((src, dst), None)
            self._fifo_tail.pop((dst, src), None)
            failed = sorted(cid for cid, (conn, _) in self._waiting.items() if conn == (src, dst))
            self.world.trace.emit(src, "net.close", dst=dst, failed=failed)
            for cid in failed:
                self.disconnected += 1
                self._waiting.pop(cid)[1].succeed(DISCONNECTED)

    def kill(self, node: str) -> None:
        """The node's process died (its host stays up): every connection to or from it resets now, and connects
        to it are refused until ``revive``."""
        self._killed.add(node)
        prefix = node + "/"
        self.close(lambda src, dst: node in (src, dst) or src.startswith(prefix))

    def revive(self, node: str) -> None:
        """The node's process runs again: connects to it succeed (after the requester's backoff)."""
        self._killed.discard(node)

    def _backoffs(self, src: str) -> tuple[int, int]:
        """A server node (one with a handler: a broker, the controller) reconnects as Java does, a client as
        librdkafka does."""
        return SERVER_RECONNECT_BACKOFF_MS if src.split("/", 1)[0] in self._handlers else CLIENT_RECONNECT_BACKOFF_MS

    def _connect_later(self, conn: tuple[str, str], packet: Packet) -> None:
        """Hold the request for its connection's next connect attempt, which the reconnect backoff paces."""
        reconnect = self._reconnects.get(conn)
        if reconnect is None:
            reconnect = self._reconnects[conn] = _Reconnect(backoff_ms=self._backoffs(conn[0])[0])
        reconnect.pending.append(packet)
        if not reconnect.scheduled:
            reconnect.scheduled = True
            self.world.env.call_later(max(reconnect.at - self.world.now, 0), lambda _e: self._attempt(conn))

    def _attempt(self, conn: tuple[str, str]) -> None:
        """A connect attempt (rd_kafka_broker_connect): the next one is backed off whatever the outcome; refused,
        it fails the requests waiting for it, else they go out on the new connection."""
        src, dst = conn
        reconnect = self._reconnects[conn]
        reconnect.scheduled = False
        now = self.world.now
        initial, maximum = self._backoffs(src)
        if reconnect.at + maximum < now:
            reconnect.backoff_ms = initial
        backoff = self.world.rng(f"{src}->{dst}/reconnect").randint(int(reconnect.backoff_ms * 0.75),
                                                                    int(reconnect.backoff_ms * 1.5))
        reconnect.at = now + min(backoff, maximum)
        reconnect.backoff_ms = min(reconnect.backoff_ms * 2, maximum)
        pending, reconnect.pending = [p for p in reconnect.pending if p.correlation_id in self._waiting], []
        if dst in self._killed:
            failed = [p.correlation_id for p in pending]
            self.world.trace.emit(src, "net.close", dst=dst, failed=failed)
            for cid in failed:
                self.disconnected += 1
                self._waiting.pop(cid)[1].succeed(DISCONNECTED)
            return
        del self._reconnects[conn]
        incarnation = self._connections.get(conn, 0)
        for packet in pending:
            self._send(attrs.evolve(packet, incarnation=incarnation))

    def live(self, request: Packet) -> bool:
        """Whether the request's connection is still the one it was sent on; if not, the request is
        traced as dropped (``net.drop`` with ``closed``)."""
        if request.incarnation == self._connections.get((request.src, request.dst), 0):
            return True
        self.world.trace.emit(request.src, "net.drop", dst=request.dst, correlation_id=request.correlation_id,
                              msg=type(request.payload).__name__, closed=True)
        return False

    def respond(self, request: Packet, payload: Any) -> None:
        # (src, dst, correlation_id, payload, is_response, sent_at, incarnation, request) by position (see request)
        self._send(Packet(request.dst, request.src, request.correlation_id, payload, True, self.world.env._now, 0,
                          request.payload))

    def _send(self, packet: Packet) -> None:
        msg = type(packet.payload).__name__
        (self._emit_response if packet.is_response else self._emit_request)(
            packet.src, dst=packet.dst, correlation_id=packet.correlation_id, msg=msg, fields=packet.payload)
        extra = self.route(packet)
        if extra is None:
            self.world.trace.emit(packet.src, "net.drop", dst=packet.dst, correlation_id=packet.correlation_id,
                                  msg=msg)
        elif extra == HOLD:
            self._held.append(packet)
        else:
            self._schedule(packet, extra)

    def _schedule(self, packet: Packet, extra: int) -> int:
        conn = (packet.src, packet.dst)
        env = self.world.env
        now = env._now
        at = now + self._latency.get(conn, self.default_latency_ms) + extra
        tail = self._fifo_tail.get(conn, 0)
        if tail > at:
            at = tail
        self._fifo_tail[conn] = at
        env.call_later(at - now, partial(self._deliver, packet))
        return at

    def release(self) -> int:
        """The cut links carry packets again: the held ones are delivered in the order they were sent, so
        each connection stays FIFO (TCP retransmits what the cut swallowed; a request or answer whose
        connection was closed meanwhile is lost with it, and one its requester gave up on is discarded).
        The clients' own timeouts fired as usual. Returns the last arrival time (now if none)."""
        held, self._held = self._held, []
        return max((self._schedule(packet, 0) for packet in held), default=self.world.now)

    def _deliver(self, packet: Packet, _event: Any = None) -> None:
        if packet.is_response:
            waiting = self._waiting.pop(packet.correlation_id, None)
            if waiting is not None:
                reply, env = waiting[1], self.world.env
                # reply.succeed(payload), inlined (SimPy's succeed and schedule are two Python calls per response)
                reply._ok, reply._value = True, packet.payload
                heapq.heappush(env._queue, (env._now, NORMAL, next(env._eid), reply))
                deadlines = self._deadlines
                while deadlines and deadlines[0][1] not in self._waiting:  # keeps the heap to the waiting ones
                    heapq.heappop(deadlines)
            return
        handler = self._handlers.get(packet.dst)
        # a crashed node or a closed connection: lost (``live``, asked only when the connection is not the same)
        if handler is not None and (packet.incarnation == self._connections.get((packet.src, packet.dst), 0)
                                    or self.live(packet)):
            handler(packet)
