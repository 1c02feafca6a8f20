"""eosim._realkafka.driver
=====================

The interpreter's backend on a real Kafka broker: the same scenario steps (sim/_interpret.py) run
through real confluent-kafka clients, and the run ends in the same ``Observation`` the simulator
produces, so ``eosim._observation.diff`` can compare the two (docs/conformance.md).

- Every actor runs in its own process holding the real client; the parent talks to it through a
  pipe. ``crash`` is SIGKILL of that process: no close, no flush, its sockets just go away.
- Every run gets a fresh namespace prefix for topics, ``transactional.id`` and ``group.id``, so
  runs share a broker without seeing each other. Names are prefixed on the way to Kafka and
  stripped on the way back: observations, history and step values read exactly as the simulator's.
- After the last step the run waits ``SETTLE_MS`` (the simulator's settle period), then observes
  with fresh readers: HW and LSO by ListOffsets (read_uncommitted / read_committed), each isolation
  level's view by a fresh consumer, and each group's committed offsets by OffsetFetch without
  ``require_stable`` (the materialised offsets: what ``GroupCoordinator.committed`` reports).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import multiprocessing.forkserver
import os
import queue
import signal
import threading
import time
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Callable

import attrs
import confluent_kafka as ck
from attrs import define, field, frozen
from confluent_kafka.admin import (AdminClient, ClusterMetadata, ConfigResource, NewTopic, OffsetSpec,
                                   ResourceType)

from eosim.models.bugs import PINNED_RELEASE
from eosim.models.config import KAFKA_VERSION_KEY, SIMULATOR_ONLY_PREFIX
from eosim import _scenario as sc
from eosim._checkers import CheckResult, exit_code
from eosim._client.message import OFFSET_INVALID, Message, TopicPartition
from eosim._topology import INTERNAL_FIRST_BROKER, cluster_config, internal_replicas
from eosim._interpret import Block, Interpreter
from eosim._judge import SETTLE_MS, judge, observation_of
from eosim._observation import Observation, PartitionObservation, StepObservation
from eosim._realkafka.broker import PROXIED, die_with_parent, shielded
from eosim._conformable import refusal
from eosim._realkafka.proxy import KafkaProxy, ProxyEvent, drop_rule

CALL_GRACE_S = 60.0  # how long past a call's own timeout the driver waits before giving up on the actor
START_TIMEOUT_S = 30.0  # an actor process up with its client constructed
ADMIN_TIMEOUT_S = 30.0  # one admin request, topic leaders, a fresh reader reaching the end
KILL_TIMEOUT_S = 5.0
# The client methods that never wait for the network (they queue work for librdkafka's threads, or read local
# state): an actor runs them on its receiving thread; every other call gets a thread, so it can block while
# the next step (after a nowait one) runs.
LEARN_LEADERS_S = 10.0  # how long a new client on a cluster may take to learn its topics' leaders
RETURNS_AT_ONCE = frozenset({"produce", "begin_transaction", "assign", "subscribe", "position", "assignment",
                             "consumer_group_metadata"})
CLIENT_KEY = "eosim.client"  # which real client runs an actor: librdkafka (confluent-kafka) or java

# Actors are forked from a clean single-threaded server process (forking the parent, which runs
# librdkafka threads, is unsafe); preloading confluent_kafka makes each actor start in milliseconds.
_MP = multiprocessing.get_context("forkserver")
_MP.set_forkserver_preload(["confluent_kafka", "eosim._realkafka.driver"])


class DriverError(RuntimeError):
    """The run could not be carried out on Kafka (an actor hung or died, the broker did not answer):
    not an outcome of the scenario."""


class BrokerMismatch(DriverError):
    """The broker's configuration is not the one the simulator would run the scenario with."""


class NotReproducible(DriverError):
    """The scenario's [[faults]] include a rule the proxy cannot carry out exactly as the simulator does."""


class _ActorKilled(Exception):
    """The call's actor was killed (crash step or end of run) before it answered: like a call on a
    crashed simulated client, it never completes."""


# --- what crosses the pipe: confluent's TopicPartition, Message and KafkaException do not pickle ---


@frozen
class _TP:
    topic: str
    partition: int
    offset: int
    error: tuple | None = None


@frozen
class _Msg:
    topic: str | None
    partition: int | None
    offset: int | None
    key: Any
    value: Any
    error: tuple | None


@frozen
class _DeliveryToken:
    """Stands for an on_delivery callback, which stays in the parent."""

    id: int


def _error_fields(err: ck.KafkaError | None) -> tuple | None:
    if err is None:
        return None
    return (err.code(), err.str(), err.fatal(), err.retriable(), err.txn_requires_abort())


def _kafka_error(fields: tuple | None) -> ck.KafkaError | None:
    if fields is None:
        return None
    code, reason, fatal, retriable, txn_requires_abort = fields
    return ck.KafkaError(code, reason, fatal=fatal, retriable=retriable, txn_requires_abort=txn_requires_abort)


# --- the actor process ------------------------------------------------------------------------------


def _actor_main(conn: Any, kind: str, config: dict[str, Any], log_path: str | None) -> None:
    """One real client. Each request runs in its own thread, so a nowait call and the next steps
    overlap as they would in one application; delivery reports fired during any call ship with the
    next reply."""
    # The parent alone ends an actor (crash, end of run, its own cleanup on a signal): a ^C in the
    # terminal reaches the whole process group, and must not kill a client mid-step.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_forkserver()
    if log_path is not None:  # librdkafka logs to stderr
        os.dup2(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 2)
    lock = threading.Lock()  # one lock: a call's reply never overtakes the reports fired before it
    reports: list[tuple] = []

    def reply(call_id: int, status: str, result: Any) -> None:
        with lock:
            conn.send((call_id, status, result, reports[:]))
            reports.clear()

    def on_delivery(token: _DeliveryToken) -> Callable[[Any, Any], None]:
        def delivered(err: Any, msg: Any) -> None:
            fatal = None
            try:
                report = (token.id, _error_fields(err), (msg.topic(), msg.partition(), msg.offset()))
            except SystemError as exc:
                # Without an error_cb, confluent-kafka sets a fatal error (a fenced produce: _FENCED) as
                # the pending exception, then serves the delivery reports of the same poll or flush with
                # it still set: the first C call in here raises SystemError with it as the cause. The
                # except has cleared it; take the report, and hand the fatal error back to the call
                # that was to raise it (no lock may be taken before this point: it would stay held).
                if not isinstance(exc.__cause__, ck.KafkaException):
                    raise
                fatal = exc.__cause__
                report = (token.id, _error_fields(err), (msg.topic(), msg.partition(), msg.offset()))
            with lock:
                reports.append(report)
            if fatal is not None:
                raise fatal
        return delivered

    def decode(value: Any) -> Any:
        if isinstance(value, _TP):
            return ck.TopicPartition(value.topic, value.partition, value.offset)
        if isinstance(value, _DeliveryToken):
            return on_delivery(value)
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    def run(client: Any, call_id: int, method: str, args: list, kwargs: dict) -> None:
        try:
            result = getattr(client, method)(*decode(args), **{k: decode(v) for k, v in kwargs.items()})
        except ck.KafkaException as exc:
            reply(call_id, "kafka", _error_fields(exc.args[0]))
        except Exception as exc:  # noqa: BLE001 - re-raised in the parent
            reply(call_id, "raise", (type(exc).__name__, str(exc)))
        else:
            reply(call_id, "ok", _encode_result(result))

    try:
        client = (ck.Producer if kind == "producer" else ck.Consumer)(config)
    except Exception as exc:  # noqa: BLE001 - a bad config: the parent raises it
        reply(0, "raise", (type(exc).__name__, str(exc)))
        return
    reply(0, "ok", None)
    while True:
        try:
            call_id, method, args, kwargs = conn.recv()
        except (EOFError, OSError):
            os._exit(0)  # the parent is done with us: skip librdkafka's destructors
        if method in RETURNS_AT_ONCE:  # in order, on this thread: no thread start between two steps
            run(client, call_id, method, args, kwargs)
        else:
            threading.Thread(target=run, args=(client, call_id, method, args, kwargs), daemon=True).start()


def _die_with_forkserver() -> None:
    """Let a killed driver (SIGKILL: no cleanup runs) take its actors along, paused ones included.
    multiprocessing hands every forkserver child the pipe that keeps the forkserver alive, so it
    can start processes of its own; an actor starts none and drops it. The forkserver then ends
    with the driver, and the kernel kills the actor (PR_SET_PDEATHSIG), which no SIGSTOP stops."""
    server = multiprocessing.forkserver._forkserver
    if getattr(server, "_forkserver_alive_fd", None) is not None:
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None
    arm = die_with_parent()
    if arm is not None:
        arm()
        if os.getppid() == 1:  # the forkserver was gone before the signal was armed
            os._exit(0)


def _encode_result(value: Any) -> Any:
    if isinstance(value, ck.TopicPartition):
        return _TP(value.topic, value.partition, value.offset, _error_fields(value.error))
    if isinstance(value, ck.Message):
        return _Msg(value.topic(), value.partition(), value.offset(), value.key(), value.value(),
                    _error_fields(value.error()))
    if isinstance(value, list):
        return [_encode_result(v) for v in value]
    if isinstance(value, ClusterMetadata):  # list_topics: topic -> partition -> leader
        return {t: {p: m.leader for p, m in md.partitions.items()} for t, md in value.topics.items()}
    return value  # None, int, bytes (consumer group metadata is already serialised bytes)


# --- the parent's side -----------------------------------------------------------------------------


@frozen
class Namespace:
    """The run's prefix for every name Kafka keeps across runs: topics, transactional.id, group.id."""

    prefix: str

    @classmethod
    def new(cls, scenario: str) -> Namespace:
        return cls(f"{scenario[:40]}-{uuid.uuid4().hex[:8]}-")

    def name(self, name: str) -> str:
        return self.prefix + name

    def strip(self, name: str | None) -> str | None:
        return name[len(self.prefix):] if name is not None and name.startswith(self.prefix) else name

    def config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {k: self.name(str(v)) if k in ("transactional.id", "group.id") else v for k, v in config.items()}


_started = threading.local()  # .signal: how a nowait step's thread tells the driver its call has started


def _call_started() -> None:
    getattr(_started, "signal", lambda: None)()


@define(eq=False)
class ActorProxy:
    """The parent's handle on one actor process: the confluent-kafka methods the interpreter calls."""

    backend: KafkaBackend
    name: str
    kind: str
    config: dict[str, Any]
    log_path: Path | None
    _process: Any = field(init=False)
    _conn: Any = field(init=False)
    _pending: dict[int, Future] = field(init=False, factory=dict)
    _callbacks: dict[int, Callable[[Any, Any], None]] = field(init=False, factory=dict)
    _ids: Any = field(init=False, factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(init=False, factory=threading.Lock)
    _gone: BaseException | None = field(init=False, default=None)
    _killed: bool = field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        self._spawn()
        try:
            status, result = self._first_reply()
        except BaseException:  # DriverError, or a signal (Interrupted) while it starts
            with shielded():
                self.kill()
            raise
        if status != "ok":
            self.kill()
            _raise(status, result)
        threading.Thread(target=self._read, name=f"{self.name}-reader", daemon=True).start()

    def _spawn(self) -> None:
        """Start the actor's process (``_process``, ``_conn``)."""
        self._conn, child = _MP.Pipe()
        self._process = _MP.Process(target=_actor_main, name=self.name, daemon=True,
                                    args=(child, self.kind, self.config,
                                          None if self.log_path is None else str(self.log_path)))
        self._process.start()
        child.close()

    def _first_reply(self) -> tuple[str, Any]:
        """(status, result) of the client's creation in the actor process."""
        if not self._conn.poll(START_TIMEOUT_S):
            raise DriverError(f"actor {self.name}: no client after {START_TIMEOUT_S} s")
        try:
            _id, status, result, _reports = self._conn.recv()
        except EOFError:
            raise DriverError(f"actor {self.name} died while starting (exit code {self._process.exitcode})") from None
        return status, result

    # -- transport --------------------------------------------------------------------------------

    def _call(self, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        future: Future = Future()
        with self._lock:
            if self._gone is not None:
                raise self._gone
            call_id = next(self._ids)
            self._pending[call_id] = future
            self._send(call_id, method, list(args), kwargs)
        _call_started()
        limit = CALL_GRACE_S + max(timeout or 0, 0)
        try:
            status, result = future.result(limit)
        except FutureTimeout:
            self.kill()
            raise DriverError(f"actor {self.name}: {method} did not return within {limit} s") from None
        if status != "ok":
            _raise(status, result)
        return self._decode(result)

    def _send(self, call_id: int, method: str, args: list, kwargs: dict) -> None:
        self._conn.send((call_id, method, args, kwargs))

    def _receive(self) -> tuple[int, str, Any, list]:
        return self._conn.recv()

    def _reap(self) -> int | None:
        self._process.join(KILL_TIMEOUT_S)
        return self._process.exitcode

    def _terminate(self) -> None:
        self._process.kill()
        self._process.join(KILL_TIMEOUT_S)
        self._conn.close()

    def _read(self) -> None:
        while True:
            try:
                call_id, status, result, reports = self._receive()
            except (EOFError, OSError, ValueError):
                break
            for token, err, (topic, partition, offset) in reports:  # before the result: see KafkaBackend.later
                callback = self._callbacks.pop(token)
                self.backend.later(functools.partial(callback, _kafka_error(err), Message(
                    self.backend.namespace.strip(topic), partition, offset)))
            with self._lock:
                future = self._pending.pop(call_id)
            future.set_result((status, result))
        exitcode = self._reap()
        with self._lock:
            self._gone = _ActorKilled() if self._killed else DriverError(
                f"actor {self.name} died (exit code {exitcode}); see {self.log_path}")
            pending, self._pending = list(self._pending.values()), {}
        for future in pending:
            future.set_exception(self._gone)

    def _decode(self, value: Any) -> Any:
        strip = self.backend.namespace.strip
        if isinstance(value, _TP):
            tp = TopicPartition(strip(value.topic), value.partition, value.offset)
            tp.error = _kafka_error(value.error)
            return tp
        if isinstance(value, _Msg):
            return Message(strip(value.topic), value.partition, value.offset, value.key, value.value,
                           _kafka_error(value.error))
        if isinstance(value, list):
            return [self._decode(v) for v in value]
        return value

    def _tps(self, partitions: Any) -> list[_TP]:
        return [_TP(self.backend.namespace.name(tp.topic), tp.partition, tp.offset) for tp in partitions]

    def signal(self, signum: int) -> None:
        if self._process.is_alive():
            os.kill(self._process.pid, signum)

    def kill(self) -> None:
        """SIGKILL: the client vanishes mid-whatever, as a crashed application does."""
        with self._lock:
            self._killed = True
            self._gone = _ActorKilled()
        self._terminate()

    # -- producer ---------------------------------------------------------------------------------

    def produce(self, topic: str, value: Any = None, key: Any = None, partition: int = -1,
                on_delivery: Callable[[Any, Any], None] | None = None) -> None:
        token = None
        if on_delivery is not None:
            token = _DeliveryToken(next(self._ids))
            self._callbacks[token.id] = on_delivery
        self._call("produce", self.backend.namespace.name(topic), value=value, key=key, partition=partition,
                   on_delivery=token)

    def flush(self, timeout: float = -1) -> int:
        return self._call("flush", timeout, timeout=timeout)

    def poll(self, timeout: float = -1) -> Any:
        return self._call("poll", timeout, timeout=timeout)

    def init_transactions(self, timeout: float = -1) -> None:
        return self._call("init_transactions", timeout, timeout=timeout)

    def begin_transaction(self) -> None:
        return self._call("begin_transaction")

    def send_offsets_to_transaction(self, positions: list[TopicPartition], group_metadata: bytes,
                                    timeout: float = -1) -> None:
        # The metadata is the consumer's serialised ConsumerGroupMetadata: plain bytes.
        return self._call("send_offsets_to_transaction", self._tps(positions), group_metadata, timeout,
                          timeout=timeout)

    def commit_transaction(self, timeout: float = -1) -> None:
        return self._call("commit_transaction", timeout, timeout=timeout)

    def abort_transaction(self, timeout: float = -1) -> None:
        return self._call("abort_transaction", timeout, timeout=timeout)

    # -- consumer ---------------------------------------------------------------------------------

    def assign(self, partitions: list[TopicPartition]) -> None:
        return self._call("assign", self._tps(partitions))

    def subscribe(self, topics: list[str]) -> None:
        return self._call("subscribe", [self.backend.namespace.name(t) for t in topics])

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        return self._call("consume", num_messages, timeout, timeout=timeout)

    def commit(self, message: Any = None, offsets: list[TopicPartition] | None = None,
               asynchronous: bool = True) -> list[TopicPartition] | None:
        if message is not None:
            raise NotImplementedError("commit(message=...) is not a scenario op")
        if offsets is None:
            return self._call("commit", asynchronous=asynchronous)
        return self._call("commit", offsets=self._tps(offsets), asynchronous=asynchronous)

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        return self._call("committed", self._tps(partitions), timeout, timeout=timeout)

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return self._call("position", self._tps(partitions))

    def assignment(self) -> list[TopicPartition]:
        return self._call("assignment")

    def consumer_group_metadata(self) -> bytes:
        return self._call("consumer_group_metadata")

    def close(self) -> None:
        return self._call("close")


_RAISABLE = {cls.__name__: cls for cls in (ValueError, TypeError, RuntimeError, BufferError, NotImplementedError)}


def _raise(status: str, result: Any) -> None:
    if status == "kafka":
        raise ck.KafkaException(_kafka_error(result))
    type_name, text = result
    raise _RAISABLE.get(type_name, RuntimeError)(text if type_name in _RAISABLE else f"{type_name}: {text}")


@define(eq=False)
class KafkaBackend:
    """The interpreter's backend on a real broker (the ``Backend`` protocol of sim/_interpret.py).

    Everything that touches the interpreter (delivery callbacks, a nowait step's completion) runs on
    the driver's thread: other threads queue it with ``later`` and ``run_callbacks`` runs it."""

    bootstrap: str
    namespace: Namespace
    log_dir: Path | None = None
    _start: float = field(factory=time.monotonic)
    _queue: queue.SimpleQueue = field(factory=queue.SimpleQueue)
    _actors: list[ActorProxy] = field(factory=list)
    _threads: list[threading.Thread] = field(factory=list)
    _incarnations: dict[str, int] = field(factory=dict)
    _failures: list[DriverError] = field(factory=list)
    _current: dict[str, ActorProxy] = field(factory=dict)
    _wakes: dict[str, int] = field(factory=dict)  # paused actor -> when SIGCONT is due, in now() ms
    _timers: list[threading.Timer] = field(factory=list)
    cluster: Any = None  # a KafkaCluster (sim/_realkafka/cluster.py) the broker nemesis ops act on, or None
    topics: tuple[str, ...] = ()  # the scenario's topics, whose leaders a client on a cluster learns at its start

    def now(self) -> int:
        return int((time.monotonic() - self._start) * 1000)

    def new_client(self, actor: str, spec: sc.Actor) -> ActorProxy:
        n = self._incarnations[actor] = self._incarnations.get(actor, 0) + 1
        config = {**self.namespace.config(dict(spec.config)), "bootstrap.servers": self.bootstrap}
        client = str(config.pop(CLIENT_KEY, "librdkafka")).lower()
        log_path = None if self.log_dir is None else self.log_dir / f"{actor}#{n}.log"
        if client == "java":  # the real Java client in a JVM (sim/_realkafka/java.py)
            from eosim._realkafka.java import JavaActorProxy, ensure_actor

            proxy: ActorProxy = JavaActorProxy(self, f"{actor}#{n}", spec.kind, config, log_path,
                                               classpath=ensure_actor())
        else:
            if os.environ.get("EOSIM_KAFKA_DEBUG"):  # librdkafka's debug contexts, to diagnose a disagreement
                config["debug"] = os.environ["EOSIM_KAFKA_DEBUG"]
            proxy = ActorProxy(self, f"{actor}#{n}", spec.kind, config, log_path)
            if self.cluster is not None:
                self._learn_leaders(proxy)
        self._actors.append(proxy)
        self._current[actor] = proxy
        return proxy

    def _learn_leaders(self, proxy: ActorProxy) -> None:
        """A new librdkafka client on a cluster asks for its topics' metadata while it starts, as the simulated
        one learns them from its first Metadata answer. librdkafka sends its first requests to one bootstrap
        broker drawn at random: were that a broker a later step stops (SIGSTOP), the client's first topic
        Metadata request would wait there for socket.timeout.ms, a race the simulator does not have."""
        for topic in self.topics:
            with contextlib.suppress(ck.KafkaException):  # a broker down at a restart step: learnt later
                proxy._call("list_topics", self.namespace.name(topic), LEARN_LEADERS_S, timeout=LEARN_LEADERS_S)

    def pause(self, actor: str, ms: int) -> None:
        """A stop-the-world pause, for real: SIGSTOP the actor's process now and SIGCONT it ``ms``
        later. Its librdkafka threads, timers and sockets all freeze, as in a long GC pause."""
        proxy = self._current[actor]
        proxy.signal(signal.SIGSTOP)
        self._wakes[actor] = self.now() + ms
        timer = threading.Timer(ms / 1000, proxy.signal, args=(signal.SIGCONT,))
        self._timers.append(timer)
        timer.start()

    def paused_until(self, actor: str) -> int | None:
        wake = self._wakes.get(actor)
        return wake if wake is not None and wake > self.now() else None

    def after_step(self, index: int) -> None:
        """Rules armed after a step and the random nemesis are simulator-only (the loader refuses them here);
        the drops the proxy can do are armed from the start (run_on_kafka)."""

    # -- the broker nemesis ops, on a real N-broker cluster (the loader allows them with [cluster] brokers > 1) --

    def _cluster_or_refuse(self, op: str) -> Any:
        if self.cluster is None:
            raise DriverError(f"{op} needs the real N-broker cluster (sim/_realkafka/cluster.py)")
        return self.cluster

    def crash_broker(self, broker: str) -> None:
        """SIGKILL of the broker's JVM: its connections reset, nothing is flushed, its log directory stays. The
        driver does not wait for the controller to fence it: the scenario's next steps (a sleep past
        broker.session.timeout.ms) do, as in the simulator."""
        self._cluster_or_refuse("crash_broker").kill(broker_id(broker))

    def restart_broker(self, broker: str, load_ms: int) -> None:
        """The JVM again on the same log directory and ports; returns once the controller has unfenced it (it
        serves Metadata). The simulator's restart is a process start of no duration; a JVM takes seconds, and
        the next step must find the broker as the simulator's would: registered and fetching."""
        self._cluster_or_refuse("restart_broker").restart(broker_id(broker))

    def partition(self, nodes: tuple[str, ...]) -> None:
        """SIGSTOP of each broker's JVM: it sends and reads nothing (fetches, heartbeats, answers) until the
        heal, as a broker cut from every other node; what was sent to it waits in its socket buffers, as on the
        simulator's cut link. Unlike the simulator's cut, brokers in the same set cannot reach each other
        either (the loader allows brokers only; docs/conformance.md)."""
        cluster = self._cluster_or_refuse("partition")
        for node in nodes:
            cluster.pause(broker_id(node))

    def heal(self) -> None:
        """SIGCONT of every stopped broker that is still running."""
        cluster = self._cluster_or_refuse("heal")
        for node_id in cluster.broker_ids:
            if cluster.is_paused(node_id):
                cluster.resume(node_id)

    def crash(self, actor: str, client: ActorProxy) -> None:
        client.kill()

    def sleep(self, ms: int) -> None:
        _call_started()
        time.sleep(ms / 1000)

    def topic_partition(self, topic: str, partition: int, offset: int = OFFSET_INVALID) -> TopicPartition:
        return TopicPartition(topic, partition, offset)

    def error_name(self, exc: BaseException) -> str | None:
        return exc.args[0].name() if isinstance(exc, ck.KafkaException) else None

    def later(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def run_callbacks(self) -> None:
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return
            fn()

    def background(self, block: Block) -> None:
        """A nowait step: the call runs in a thread, its completion is queued for the driver. The
        next step starts once the call is on its way to the actor, so the actor sees them in order."""
        started = threading.Event()

        def run() -> None:
            _started.signal = started.set
            try:
                result = block.call()
            except _ActorKilled:
                return
            except DriverError as exc:  # not the step's outcome: the run failed
                self._failures.append(exc)
                return
            except Exception as exc:  # noqa: BLE001 - the step's outcome
                self.later(functools.partial(block.on_done, None, exc))
            else:
                self.later(functools.partial(block.on_done, result, None))
            finally:
                started.set()

        thread = threading.Thread(target=run, daemon=True)
        self._threads.append(thread)
        thread.start()
        started.wait(START_TIMEOUT_S)

    def check_failures(self) -> None:
        if self._failures:
            raise self._failures[0]

    def close(self) -> None:
        """Kill every actor, a paused (SIGSTOPped) one included: SIGKILL needs no SIGCONT."""
        with shielded():
            for timer in self._timers:
                timer.cancel()
            for actor in self._actors:
                actor.kill()
        for thread in self._threads:
            thread.join(KILL_TIMEOUT_S)


def _drive(backend: KafkaBackend, interpreter: Interpreter) -> None:
    """Perform the interpreter's blocking calls one at a time, as eosim._runner._drive does with SimPy."""
    steps = interpreter.run()
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            block = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration:
            return
        value, error = None, None
        if block.nowait:
            backend.background(block)
            continue
        try:
            value = block.call()
        except Exception as exc:  # noqa: BLE001 - handed back to the interpreter, which records it
            error = exc
        backend.run_callbacks()


# --- the broker: configuration check, topics, observation ------------------------------------------


def broker_requirements(scenario: sc.Scenario, default_tv: int) -> tuple[int, dict[str, str]]:
    """The transaction.version and the server properties (beyond the test profile every broker of
    sim/_realkafka/broker.py has) a broker needs to run this scenario as the simulator does; its
    release is ``kafka_version_of``."""
    base = cluster_config({}).to_kafka()
    wanted = cluster_config(scenario.cluster).to_kafka()
    simulator_only = sorted(k for k in wanted if k.startswith(SIMULATOR_ONLY_PREFIX) and k != KAFKA_VERSION_KEY
                            and wanted[k] != base[k])
    if simulator_only:
        raise BrokerMismatch(f"{', '.join(simulator_only)} exist only in the simulator (Kafka hard-codes the "
                             "dedup window and has the historical bugs fixed): this scenario cannot run on Kafka")
    tv = int(scenario.cluster.get("transaction.version", default_tv))
    overrides = {k: _property(v) for k, v in wanted.items()
                 if v != base[k] and k not in ("transaction.version", KAFKA_VERSION_KEY)}
    return tv, overrides


def kafka_version_of(scenario: sc.Scenario, default: str = PINNED_RELEASE) -> str:
    """The Kafka release the scenario runs on: its own ``eosim.kafka.version``, else ``default``."""
    return str(scenario.cluster.get(KAFKA_VERSION_KEY, default))


def for_broker(scenario: sc.Scenario, tv: int, kafka_version: str = PINNED_RELEASE) -> sc.Scenario:
    """The scenario as the simulator must run it to match a broker of release ``kafka_version`` formatted
    with ``tv`` (a scenario's own [cluster] keys stay)."""
    cluster = {"transaction.version": tv, KAFKA_VERSION_KEY: kafka_version, **scenario.cluster}
    return scenario if cluster == scenario.cluster else attrs.evolve(scenario, cluster=cluster)


def on_client(scenario: sc.Scenario, client: str | None) -> sc.Scenario:
    """The scenario with every actor on ``client`` (``eosim.client``, on both backends); None keeps
    each actor's own."""
    if client is None:
        return scenario
    actors = {name: attrs.evolve(actor, config={**actor.config, CLIENT_KEY: client})
              for name, actor in scenario.actors.items()}
    return attrs.evolve(scenario, actors=actors)


def _property(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


_verified: set[tuple[str, int, frozenset]] = set()
_verified_lock = threading.Lock()


def check_broker(admin: AdminClient, bootstrap: str, scenario: sc.Scenario, transaction_version: int) -> None:
    """Refuse a broker whose transaction.version or settings differ from the simulator's cluster for
    this scenario (TEST_CLUSTER_PROFILE plus the scenario's [cluster]); on the first use of a broker,
    also create the internal topics so no scenario pays for their creation."""
    if int(scenario.cluster.get("transaction.version", transaction_version)) != transaction_version:
        raise BrokerMismatch(f"the scenario needs transaction.version={scenario.cluster['transaction.version']}, "
                             f"the broker has {transaction_version}")
    wanted = {k: _property(v) for k, v in cluster_config(scenario.cluster).to_kafka().items()
              if k != "transaction.version" and not k.startswith(SIMULATOR_ONLY_PREFIX)}
    key = (bootstrap, transaction_version, frozenset(wanted.items()))
    with _verified_lock:
        if key in _verified:
            return
    finalized = _finalized_transaction_version(bootstrap)
    if finalized != transaction_version:
        raise BrokerMismatch(f"{bootstrap} has transaction.version={finalized}, expected {transaction_version}")
    broker_id = str(next(iter(admin.list_topics(timeout=ADMIN_TIMEOUT_S).brokers)))
    resource = ConfigResource(ResourceType.BROKER, broker_id)
    entries = admin.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(ADMIN_TIMEOUT_S)
    # Internal settings (producer.id.expiration.check.interval.ms) are not described: not checkable.
    differ = [f"{k}={entries[k].value} (the simulator uses {v})"
              for k, v in sorted(wanted.items()) if k in entries and entries[k].value != v]
    if differ:
        raise BrokerMismatch(f"{bootstrap} is configured differently from the simulator: {'; '.join(differ)}")
    _warm_up(bootstrap)
    with _verified_lock:
        _verified.add(key)


def _finalized_transaction_version(bootstrap: str) -> int:
    # confluent's AdminClient has no DescribeFeatures; kafka-python's does.
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(ADMIN_TIMEOUT_S * 1000))
    try:
        feature = admin.describe_features().get("transaction.version", {})
    finally:
        admin.close()
    return feature.get("finalized", (0, 0))[1]  # level 0 has no finalized range


def _warm_up(bootstrap: str) -> None:
    """__transaction_state and __consumer_offsets are created on first use; make them exist."""
    producer = ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": f"eosim-warm-up-{uuid.uuid4().hex}"})
    producer.init_transactions(ADMIN_TIMEOUT_S)
    _group_offsets(bootstrap, f"eosim-warm-up-{uuid.uuid4().hex}")  # creates __consumer_offsets, waits for its load


def _group_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """A group's committed offsets, (topic, partition) -> offset, as stored (OffsetFetch without
    require_stable: a transaction's offsets count once its marker is written).

    Asked through kafka-python, not librdkafka's admin client: librdkafka 2.16 answers a coordinator
    error to an admin OffsetFetch by queueing a coordinator query on the client's consumer group, which an
    admin client lacks (rd_kafka_cgrp_op on a NULL rk_cgrp, rdkafka_request.c), and the process crashes.
    That error is likely right after a broker start (__consumer_offsets is created by the first
    FindCoordinator, then loaded) and after a coordinator moves; it is retried here."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError, NotCoordinatorError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(ADMIN_TIMEOUT_S * 1000))
    try:
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while True:
            try:
                offsets = admin.list_group_offsets(group)[group]
                return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
            except (CoordinatorLoadInProgressError, CoordinatorNotAvailableError, NotCoordinatorError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        admin.close()


def broker_id(node: str) -> int:
    """broker-K's node.id: K (the cluster's brokers are 1..N, sim/_realkafka/cluster.py)."""
    return int(node.rsplit("-", 1)[1])


def replica_assignment(partitions: int, replication_factor: int, brokers: int) -> list[list[int]]:
    """The simulator's assignment (sim/_cluster.py, sim/_runner.py ``cluster_for``): partition p on brokers p+1,
    p+2, ... (mod N), the first one its preferred leader; a topic with one replica entirely on broker 1."""
    if replication_factor == 1:
        return [[1] for _ in range(partitions)]
    return [[(p + j) % brokers + 1 for j in range(replication_factor)] for p in range(partitions)]


def new_topic(namespace: Namespace, topic: sc.Topic, brokers: int) -> NewTopic:
    """One broker: a single replica and the broker's defaults. N brokers: the simulator's replica assignment and
    the topic's replication settings (min.insync.replicas, unclean.leader.election.enable)."""
    if brokers == 1:
        return NewTopic(namespace.name(topic.name), topic.partitions, 1)
    return NewTopic(namespace.name(topic.name), topic.partitions, replica_assignment=replica_assignment(
        topic.partitions, topic.replication_factor, brokers), config={k: _property(v) for k, v in topic.config.items()})


def create_topics(admin: AdminClient, namespace: Namespace, topics: tuple[sc.Topic, ...], brokers: int = 1) -> None:
    if not topics:
        return
    futures = admin.create_topics([new_topic(namespace, t, brokers) for t in topics],
                                  operation_timeout=ADMIN_TIMEOUT_S, request_timeout=ADMIN_TIMEOUT_S)
    for future in futures.values():
        future.result(ADMIN_TIMEOUT_S)
    # CreateTopics completes on the controller; wait until the broker leads every partition.
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    for t in topics:
        name = namespace.name(t.name)
        while True:
            md = admin.list_topics(name, timeout=ADMIN_TIMEOUT_S).topics[name]
            if md.error is None and len(md.partitions) == t.partitions and all(
                    p.leader >= 0 for p in md.partitions.values()):
                break
            if time.monotonic() > deadline:
                raise DriverError(f"topic {name} has no leaders after {ADMIN_TIMEOUT_S} s")
            time.sleep(0.02)


STALE_LEADER = frozenset({ck.KafkaError.FENCED_LEADER_EPOCH, ck.KafkaError.NOT_LEADER_FOR_PARTITION,
                          ck.KafkaError.UNKNOWN_LEADER_EPOCH, ck.KafkaError.LEADER_NOT_AVAILABLE})


def _list_offsets(admin: AdminClient, namespace: Namespace, partitions: list[tuple[str, int]], spec: OffsetSpec,
                  isolation: ck.IsolationLevel) -> dict[tuple[str, int], int]:
    """Asked again while the answer is a stale-leader error: after a failover the admin client's metadata may
    still name the old leader or epoch (FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER), which librdkafka's admin
    ListOffsets does not refresh and retry by itself."""
    request = {ck.TopicPartition(namespace.name(t), p): spec for t, p in partitions}
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while True:
        futures = admin.list_offsets(request, isolation_level=isolation, request_timeout=ADMIN_TIMEOUT_S)
        try:
            return {(t, p): futures[ck.TopicPartition(namespace.name(t), p)].result(ADMIN_TIMEOUT_S).offset
                    for t, p in partitions}
        except ck.KafkaException as exc:
            if exc.args[0].code() not in STALE_LEADER or time.monotonic() > deadline:
                raise
            admin.list_topics(timeout=ADMIN_TIMEOUT_S)  # a Metadata request: the admin client learns the leader
            time.sleep(0.1)


def _read_view(bootstrap: str, namespace: Namespace, isolation: str, start: dict[tuple[str, int], int],
               end: dict[tuple[str, int], int]) -> dict[tuple[str, int], list[tuple[int, Any, Any]]]:
    """What a fresh consumer of this isolation level reads from ``start`` up to ``end`` (the HW or
    the LSO). Control records and aborted records take offsets but are never delivered, so the read
    ends when the position reaches ``end``, not after a number of records."""
    records: dict[tuple[str, int], list[tuple[int, Any, Any]]] = {tp: [] for tp in end}
    todo = {tp for tp in end if end[tp] > start[tp]}
    if not todo:
        return records
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": namespace.name(f"eosim-observer-{isolation}"),
                            "isolation.level": isolation, "enable.auto.commit": False})
    try:
        consumer.assign([ck.TopicPartition(namespace.name(t), p, start[(t, p)]) for t, p in sorted(todo)])
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while todo:
            if time.monotonic() > deadline:
                raise DriverError(f"a fresh {isolation} reader did not reach {dict(end)} within {ADMIN_TIMEOUT_S} s")
            for msg in consumer.consume(500, 0.1):
                if msg.error() is not None:
                    raise ck.KafkaException(msg.error())
                tp = (namespace.strip(msg.topic()), msg.partition())
                if msg.offset() < end[tp]:
                    records[tp].append((msg.offset(), _text(msg.key()), _text(msg.value())))
            for pos in consumer.position([ck.TopicPartition(namespace.name(t), p) for t, p in todo]):
                if pos.offset >= end[(namespace.strip(pos.topic), pos.partition)]:
                    todo.discard((namespace.strip(pos.topic), pos.partition))
    finally:
        consumer.close()
    return records


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def observe(scenario: sc.Scenario, interpreter: Interpreter, admin: AdminClient, bootstrap: str,
            namespace: Namespace) -> Observation:
    """eosim._runner.observe's counterpart, from what fresh clients see on the broker."""
    partitions = [(t.name, p) for t in scenario.topics for p in range(t.partitions)]
    start = _list_offsets(admin, namespace, partitions, OffsetSpec.earliest(), ck.IsolationLevel.READ_UNCOMMITTED)
    hw = _list_offsets(admin, namespace, partitions, OffsetSpec.latest(), ck.IsolationLevel.READ_UNCOMMITTED)
    lso = _list_offsets(admin, namespace, partitions, OffsetSpec.latest(), ck.IsolationLevel.READ_COMMITTED)
    views = {"read_committed": _read_view(bootstrap, namespace, "read_committed", start, lso),
             "read_uncommitted": _read_view(bootstrap, namespace, "read_uncommitted", start, hw)}
    return observation_of(
        scenario, interpreter,
        [PartitionObservation(topic=t, partition=p, high_watermark=hw[(t, p)], last_stable_offset=lso[(t, p)],
                              read_committed=views["read_committed"][(t, p)],
                              read_uncommitted=views["read_uncommitted"][(t, p)])
         for t, p in partitions],
        lambda g: [(namespace.strip(topic), partition, offset)
                   for (topic, partition), offset in _group_offsets(bootstrap, namespace.name(g)).items()
                   if offset >= 0])


# --- a run -----------------------------------------------------------------------------------------


def proxied_listener(admin: AdminClient) -> tuple[int, int]:
    """(the port the broker's PROXIED listener binds, the port it advertises, where the proxy must
    listen), from the broker's own listeners and advertised.listeners (sim/_realkafka/broker.py)."""
    broker_id = str(next(iter(admin.list_topics(timeout=ADMIN_TIMEOUT_S).brokers)))
    resource = ConfigResource(ResourceType.BROKER, broker_id)
    entries = admin.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(ADMIN_TIMEOUT_S)
    ports = []
    for key in ("listeners", "advertised.listeners"):
        value = entries[key].value if key in entries else None
        port = next((int(item.rsplit(":", 1)[1]) for item in (value or "").split(",")
                     if item.strip().startswith(f"{PROXIED}://")), None)
        if port is None:
            raise BrokerMismatch(f"the broker has no {PROXIED} listener in {key} ({value}): message faults need "
                                 "a broker started by sim/_realkafka/broker.py")
        ports.append(port)
    return ports[0], ports[1]


def start_proxy(scenario: sc.Scenario, admin: AdminClient) -> KafkaProxy | None:
    """The scenario's drop rules on a proxy listening where the broker's PROXIED listener points
    clients; None without [[faults]]. One run with faults at a time per broker: the port is fixed."""
    if not scenario.faults:
        return None
    reasons = [f"{f.name}: {reason}" for f in scenario.faults if (reason := refusal(f)) is not None]
    if reasons:
        raise NotReproducible(f"{scenario.name}: the proxy cannot reproduce {'; '.join(reasons)}")
    upstream, port = proxied_listener(admin)
    try:
        return KafkaProxy(("127.0.0.1", upstream), port, [drop_rule(f) for f in scenario.faults])
    except OSError as exc:
        raise DriverError(f"cannot listen on the proxy port 127.0.0.1:{port} ({exc}): another run with "
                          "faults on this broker?") from exc


def place_internal_topics(bootstrap: str, brokers: int) -> None:
    """Before every run on a cluster: each internal topic's partition on the simulator's replicas, led by its
    preferred leader (eosim._topology.internal_replicas), as a fresh simulation starts, so that a scenario killing
    broker K moves the same coordinator on both backends. Kafka created them (check_broker's warm-up) with its
    own striped placement, a random start on the same three brokers: a reassignment reorders them (once). An
    earlier run's kill leaves a leadership moved (Kafka's leader rebalance waits 300 s): a preferred election
    moves it back."""
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import KafkaAdminClient

    wanted = {topic: internal_replicas(topic, brokers) for topic in INTERNAL_FIRST_BROKER}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while True:
        topics = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
        have = {t: (topics[t].partitions[0].replicas, topics[t].partitions[0].leader) for t in wanted}
        misplaced = {KTopicPartition(t, 0): wanted[t] for t, (replicas, _) in have.items() if replicas != wanted[t]}
        misled = [ck.TopicPartition(t, 0) for t, (_, leader) in have.items() if leader != wanted[t][0]]
        if not misplaced and not misled:
            return
        if time.monotonic() > deadline:
            raise DriverError(f"internal topics not placed as the simulator's {wanted} within {ADMIN_TIMEOUT_S} s: "
                              f"{have}")
        if misplaced:
            kp = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(ADMIN_TIMEOUT_S * 1000))
            try:
                kp.alter_partition_reassignments(misplaced)
            finally:
                kp.close()
        else:
            try:
                admin.elect_leaders(ck.ElectionType.PREFERRED, misled).result(ADMIN_TIMEOUT_S)
            except ck.KafkaException:
                pass  # ELECTION_NOT_NEEDED, or the preferred leader not in the ISR yet: the loop looks again
        time.sleep(0.2)


def restore(cluster: Any) -> None:
    """Every broker of the cluster running and unpaused, for the next scenario: the simulator's observation
    is of the final state whatever the scenario left down, and so is this one, read before."""
    for node_id in cluster.broker_ids:
        if cluster.is_paused(node_id):
            cluster.resume(node_id)
        if not cluster.is_running(node_id):
            cluster.restart(node_id)


@frozen
class KafkaOutcome:
    scenario: sc.Scenario
    bootstrap: str
    namespace: str
    transaction_version: int
    steps: tuple[StepObservation, ...]
    history: list[dict[str, Any]]
    observation: Observation
    result: CheckResult
    wall_s: float
    drops: tuple[ProxyEvent, ...] = ()  # what the proxy dropped, for [[faults]] scenarios

    @property
    def exit_code(self) -> int:
        return exit_code(self.result)


def run_on_kafka(scenario: sc.Scenario, bootstrap: str, *, transaction_version: int,
                 log_dir: Path | None = None, cluster: Any = None) -> KafkaOutcome:
    """Run the scenario's steps with real clients on the broker at ``bootstrap`` (formatted with
    ``transaction_version``), then observe and check as eosim._runner.run_scenario does. ``log_dir``
    receives each actor's librdkafka log (default: the parent's stderr). A ``[cluster] brokers = N`` scenario
    needs ``cluster``, a started N-broker KafkaCluster (``bootstrap`` is its bootstrap): its topics get the
    simulator's replica assignment, its broker nemesis ops act on the cluster's JVMs, and every broker runs
    again after the run."""
    brokers = len(scenario.brokers)
    if brokers > 1 and (cluster is None or len(cluster.broker_ids) != brokers):
        raise BrokerMismatch(f"{scenario.name} needs a real {brokers}-broker cluster")
    started = time.monotonic()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    check_broker(admin, bootstrap, scenario, transaction_version)
    if brokers > 1:
        place_internal_topics(bootstrap, brokers)
    namespace = Namespace.new(scenario.name)
    create_topics(admin, namespace, scenario.topics, brokers)
    proxy = start_proxy(scenario, admin)  # the actors go through it; the observers do not
    try:
        backend = KafkaBackend(bootstrap if proxy is None else proxy.address, namespace, log_dir,
                               cluster=cluster if brokers > 1 else None,
                               topics=tuple(t.name for t in scenario.topics) if brokers > 1 else ())
        interpreter = Interpreter(scenario, backend)
        try:
            _drive(backend, interpreter)
            time.sleep(SETTLE_MS / 1000)
            backend.run_callbacks()
            backend.check_failures()
            observation = observe(scenario, interpreter, admin, bootstrap, namespace)
        finally:
            backend.close()
    finally:
        if proxy is not None:
            with shielded():
                proxy.close()
        if brokers > 1:
            restore(cluster)
    result = judge(scenario, interpreter, observation, [], True)
    return KafkaOutcome(scenario, bootstrap, namespace.prefix, transaction_version, tuple(interpreter.steps),
                        interpreter.history, observation, result, time.monotonic() - started,
                        tuple(proxy.events) if proxy is not None else ())
