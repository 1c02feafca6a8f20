"""eosim._realkafka.proxy
===================

A loopback TCP proxy between real clients and a real broker that understands Kafka's framing and
can drop the N-th request or response of an API: the Kafka side of the simulator's ``action =
"drop"`` fault rules (sim/_faults.py; docs/conformance.md). Stdlib only.

- A frame is a 4-byte big-endian size and that many bytes. A request starts with api_key (int16),
  api_version (int16) and correlation_id (int32); every response starts with the correlation_id of
  its request (the ApiVersions response too: its header is v0), so a response's API is the API of
  the request with that correlation id on the same connection.
- Every frame not dropped is forwarded byte for byte, in order: one thread per direction per
  connection reads a whole frame, decides, and writes it on.
- A dropped request never reaches the broker; a dropped response was applied by the broker and the
  client never hears back (librdkafka times the request out after socket.timeout.ms and retries).
- Rules work as the simulator's: tried in order, the first that matches acts, its count goes down
  as messages pass, in the order the proxy sees them (one lock for every connection).

The broker must advertise the proxy's address, or clients bootstrapped at the proxy would go to the
broker directly after the first Metadata: sim/_realkafka/broker.py gives every broker a second
listener, PROXIED, advertised at a port the proxy then listens on.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from eosim._conformable import refusal

# Kafka's ApiKeys (clients/.../common/protocol/ApiKeys.java) of the APIs the simulator models, plus
# the ones every client sends first.
API_KEYS: dict[str, int] = {
    "Produce": 0, "Fetch": 1, "ListOffsets": 2, "Metadata": 3, "OffsetCommit": 8, "OffsetFetch": 9,
    "FindCoordinator": 10, "JoinGroup": 11, "Heartbeat": 12, "LeaveGroup": 13, "SyncGroup": 14,
    "ApiVersions": 18, "InitProducerId": 22, "AddPartitionsToTxn": 24, "AddOffsetsToTxn": 25, "EndTxn": 26,
    "WriteTxnMarkers": 27, "TxnOffsetCommit": 28, "ConsumerGroupHeartbeat": 68,
}
API_BY_KEY: dict[int, str] = {key: name for name, key in API_KEYS.items()}

MAX_FRAME = 100 * 1024 * 1024  # the broker's socket.request.max.bytes is 100 MiB


class FramingError(ValueError):
    """The bytes are not Kafka frames."""


def frame(payload: bytes) -> bytes:
    """A frame on the wire: the size, then the payload."""
    return struct.pack(">i", len(payload)) + payload


def request_header(payload: bytes) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) of a request frame's payload (the size not included)."""
    if len(payload) < 8:
        raise FramingError(f"a request header needs 8 bytes, the frame has {len(payload)}")
    return struct.unpack_from(">hhi", payload)


def response_correlation_id(payload: bytes) -> int:
    """The correlation_id a response frame's payload starts with."""
    if len(payload) < 4:
        raise FramingError(f"a response header needs 4 bytes, the frame has {len(payload)}")
    return struct.unpack_from(">i", payload)[0]


class FrameReader:
    """Cuts a byte stream into whole frames, whatever the chunks it arrives in."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Take ``data``; yield each frame now complete, size prefix included (ready to forward)."""
        self._buf += data
        while len(self._buf) >= 4:
            size = struct.unpack_from(">i", self._buf)[0]
            if size < 0 or size > MAX_FRAME:
                raise FramingError(f"frame size {size} out of range")
            if len(self._buf) < 4 + size:
                return
            whole = bytes(self._buf[:4 + size])
            del self._buf[:4 + size]
            yield whole

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a frame not complete yet."""
        return len(self._buf)


@dataclass
class DropRule:
    """Drop the first ``count`` messages of ``api`` going ``direction`` (None: requests and responses)."""

    name: str
    api: str
    direction: str | None = None  # "request", "response" or None
    count: int = 1
    left: int = field(init=False)

    def __post_init__(self) -> None:
        if self.api not in API_KEYS:
            raise ValueError(f"no API {self.api!r} (the proxy knows {', '.join(sorted(API_KEYS))})")
        if self.direction not in (None, "request", "response"):
            raise ValueError(f"direction {self.direction!r}: request, response or None")
        if self.count < 1:
            raise ValueError("count must be >= 1")
        self.left = self.count

    def selects(self, api_key: int, direction: str) -> bool:
        return self.left > 0 and API_KEYS[self.api] == api_key and self.direction in (None, direction)


@dataclass(frozen=True)
class ProxyEvent:
    """A message the proxy dropped: when (monotonic s), which rule, which connection and message."""

    at: float
    rule: str
    connection: int
    direction: str
    api: str
    api_version: int
    correlation_id: int


class Rules:
    """The rules of one proxy and what they did; shared by every connection, one lock."""

    def __init__(self, rules: list[DropRule] | tuple[DropRule, ...] = ()) -> None:
        self.rules = list(rules)
        self.events: list[ProxyEvent] = []
        self.seen: dict[tuple[str, str], int] = {}  # (api name or key, direction) -> messages forwarded or dropped
        self._lock = threading.Lock()

    def judge(self, connection: int, direction: str, api_key: int, api_version: int, correlation_id: int) -> bool:
        """Whether to drop this message; the first rule that selects it acts and its count goes down."""
        with self._lock:
            api = API_BY_KEY.get(api_key, str(api_key))
            self.seen[(api, direction)] = self.seen.get((api, direction), 0) + 1
            for rule in self.rules:
                if rule.selects(api_key, direction):
                    rule.left -= 1
                    self.events.append(ProxyEvent(time.monotonic(), rule.name, connection, direction, api,
                                                  api_version, correlation_id))
                    return True
            return False


class _Connection:
    """One client connection and its upstream socket; a thread per direction."""

    def __init__(self, proxy: KafkaProxy, number: int, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy, self.number, self.client, self.upstream = proxy, number, client, upstream
        self.requests: dict[int, tuple[int, int]] = {}  # correlation_id -> (api_key, api_version) in flight
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._pump, args=(client, upstream, "request"), daemon=True,
                                         name=f"kafka-proxy-{number}-request"),
                        threading.Thread(target=self._pump, args=(upstream, client, "response"), daemon=True,
                                         name=f"kafka-proxy-{number}-response")]
        for thread in self.threads:
            thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        reader = FrameReader()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                for whole in reader.feed(data):
                    if not self._drop(whole[4:], direction):
                        dst.sendall(whole)
        except (OSError, FramingError):
            pass
        finally:
            self.close()

    def _drop(self, payload: bytes, direction: str) -> bool:
        if direction == "request":
            api_key, api_version, correlation_id = request_header(payload)
            with self.lock:
                self.requests[correlation_id] = (api_key, api_version)
        else:
            correlation_id = response_correlation_id(payload)
            with self.lock:
                known = self.requests.pop(correlation_id, None)
            if known is None:  # not a request we saw: forward, judge nothing
                return False
            api_key, api_version = known
        return self.proxy.rules.judge(self.number, direction, api_key, api_version, correlation_id)

    def close(self) -> None:
        # Either side closing closes both, as a plain TCP relay would.
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class KafkaProxy:
    """Listens on 127.0.0.1:``port`` (0: any free port) and relays each connection to ``upstream``."""

    def __init__(self, upstream: tuple[str, int], port: int = 0, rules: list[DropRule] | tuple[DropRule, ...] = (),
                 host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.rules = Rules(rules)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((host, port))
        except OSError:
            self._listener.close()
            raise
        self._listener.listen(64)
        self.host, self.port = self._listener.getsockname()[:2]
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True, name=f"kafka-proxy-{self.port}")
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def events(self) -> list[ProxyEvent]:
        return list(self.rules.events)

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            number += 1
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._connections.append(_Connection(self, number, client, upstream))

    def close(self) -> None:
        """Stop listening and close every connection (clients see their broker disconnect)."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(5)
        for conn in connections:
            conn.close()
            for thread in conn.threads:
                thread.join(5)

    def __enter__(self) -> KafkaProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def drop_rule(fault: Any) -> DropRule:
    """The proxy's rule for a fault rule ``refusal`` accepts."""
    reason = refusal(fault)
    if reason is not None:
        raise ValueError(f"fault {fault.name!r}: {reason}")
    return DropRule(fault.name, fault.message, fault.direction, fault.count)
