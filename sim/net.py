"""sim.net
=======

The simulated network: named nodes, per-link latency, and FIFO delivery per connection (a connection
is one direction between two nodes, like one TCP stream). Every packet passes the ``route`` hook, the
single place where faults decide to deliver, delay or drop it; a delay holds back the later packets of
the same connection too, so connections stay FIFO while packets on different connections reorder.
"""

from __future__ import annotations

from typing import Any, Callable

import simpy
from attrs import define, field, frozen

from sim.world import World

DEFAULT_LATENCY_MS = 1  # one way, per link


@frozen(kw_only=True)
class Packet:
    src: str
    dst: str
    correlation_id: int
    payload: Any
    is_response: bool
    sent_at: int


class _TimedOut:
    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT = _TimedOut()  # the value of a request event whose response never came in time

# route(packet) -> extra delay in ms (0 = deliver normally) or None (drop).
Route = Callable[[Packet], "int | None"]


def deliver_all(_packet: Packet) -> int | None:
    return 0


@define(eq=False)
class Network:
    world: World
    default_latency_ms: int = DEFAULT_LATENCY_MS
    route: Route = deliver_all
    _latency: dict[tuple[str, str], int] = field(factory=dict)
    _handlers: dict[str, Callable[[Packet], None]] = field(factory=dict)
    _fifo_tail: dict[tuple[str, str], int] = field(factory=dict)
    _waiting: dict[int, simpy.Event] = field(factory=dict)
    _next_correlation_id: int = 0

    def register(self, node: str, handler: Callable[[Packet], None]) -> None:
        self._handlers[node] = handler

    def set_latency(self, a: str, b: str, ms: int) -> None:
        self._latency[(a, b)] = self._latency[(b, a)] = ms

    def request(self, src: str, dst: str, payload: Any, timeout_ms: int) -> simpy.Event:
        """Send ``payload``; the returned event fires with the response payload, or with
        ``TIMED_OUT`` when no response arrived within ``timeout_ms`` (a late response is then
        discarded, as a client discards responses to requests it gave up on)."""
        self._next_correlation_id += 1
        cid = self._next_correlation_id
        reply = self.world.env.event()
        self._waiting[cid] = reply
        self._send(Packet(src=src, dst=dst, correlation_id=cid, payload=payload, is_response=False,
                          sent_at=self.world.now))
        self.world.env.timeout(timeout_ms).callbacks.append(lambda _e: self._time_out(cid))
        return reply

    def _time_out(self, correlation_id: int) -> None:
        reply = self._waiting.pop(correlation_id, None)
        if reply is not None:
            reply.succeed(TIMED_OUT)

    def respond(self, request: Packet, payload: Any) -> None:
        self._send(Packet(src=request.dst, dst=request.src, correlation_id=request.correlation_id,
                          payload=payload, is_response=True, sent_at=self.world.now))

    def _send(self, packet: Packet) -> None:
        trace = self.world.trace
        kind = "net.response" if packet.is_response else "net.request"
        trace.emit(packet.src, kind, dst=packet.dst, correlation_id=packet.correlation_id,
                   msg=type(packet.payload).__name__, fields=packet.payload)
        extra = self.route(packet)
        if extra is None:
            trace.emit(packet.src, "net.drop", dst=packet.dst, correlation_id=packet.correlation_id,
                       msg=type(packet.payload).__name__)
            return
        conn = (packet.src, packet.dst)
        now = self.world.now
        at = max(now + self._latency.get(conn, self.default_latency_ms) + extra, self._fifo_tail.get(conn, 0))
        self._fifo_tail[conn] = at
        self.world.env.timeout(at - now).callbacks.append(lambda _e: self._deliver(packet))

    def _deliver(self, packet: Packet) -> None:
        if packet.is_response:
            reply = self._waiting.pop(packet.correlation_id, None)
            if reply is not None:
                reply.succeed(packet.payload)
            return
        handler = self._handlers.get(packet.dst)
        if handler is not None:  # a crashed node receives nothing
            handler(packet)
