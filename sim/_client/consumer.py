"""eosim._client.consumer
===================

``Consumer``: confluent-kafka's high-level consumer over librdkafka, on the simulated cluster.

Theory of operation
-------------------
Each assigned partition has a *fetch position* (what the fetcher asks for next) and an *app position*
(offset + 1 of the last message ``poll``/``consume`` returned: what ``position()`` reports, as
``rd_kafka_position``). A partition assigned without an offset first looks up its committed offset
(OffsetFetch with ``require_stable`` iff ``isolation.level=read_committed``, ``rd_kafka_assignment``;
UNSTABLE_OFFSET_COMMIT is retried with the request backoff), else applies ``auto.offset.reset``
through ListOffsets. One fetcher process sends a FetchRequest for every ready partition with the
consumer's isolation level and runs each partition's result through ``eosim.models.fetch.visible_records``
(the read_committed filter: aborted data and control records never reach the application) and
``eosim.models.fetch.next_offset`` (the position skips marker slots). Messages wait in the consumer queue
until ``poll``/``consume`` hands them out; handing one out stores offset + 1 in the offset store when
``enable.auto.offset.store`` is on, and the auto-commit process commits stored offsets every
``auto.commit.interval.ms`` and on ``close()``.

``subscribe`` joins the group with the protocol ``group.protocol`` names (docs/groups.md). Classic:
JoinGroup (twice for a new member), SyncGroup with the leader's client-side assignment, Heartbeat every
``heartbeat.interval.ms``, a rejoin on REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID, and
librdkafka's own session check (a lost assignment is not committed: ``_ASSIGNMENT_LOST``). KIP-848:
ConsumerGroupHeartbeat, the broker's assignment reconciled incrementally. As in confluent-kafka, a new
assignment (and a revocation) takes effect inside ``poll``/``consume``, where ``on_assign``/``on_revoke``
run, and a rejoin after a revocation waits for it.

Blocking calls (``poll``, ``consume``, ``committed``, synchronous ``commit``, ``close``) return SimPy
processes to yield; errors are raised as ``KafkaException`` inside the yielding process.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable, Generator, Iterable

import simpy
from attrs import define

from eosim.models.errors import Errors
from eosim.models.fetch import next_offset, visible_records
from eosim.models.consumer_group import LEAVE_GROUP_MEMBER_EPOCH, ConsumerGroupHeartbeatRequest
from eosim.models.group_coordinator import (
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
)
from eosim.models.protocol import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, FetchRequest, ListOffsetsRequest
from eosim.models.records import IsolationLevel, TopicPartition as TP
from eosim._client.assignors import ASSIGNORS
from eosim._client.config import Client, ConsumerConfig
from eosim._client.errors import Context, KafkaError, KafkaException, Reaction, action
from eosim._client.handle import GROUP_COORDINATOR, LEADER, Handle, failure_code
from eosim._client.message import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    TIMESTAMP_CREATE_TIME,
    ConsumerGroupMetadata,
    Message,
    TopicPartition,
)
from eosim._client.metadata import Metadata
from eosim._client.producer import RETRY_JITTER_PERCENT, _timeout_ms, retry_backoff_ms
from eosim._net import Failure

FETCH_ERROR_BACKOFF_MS = 500  # fetch.error.backoff.ms default (CONFIGURATION.md)
# The partition's offset-query timer (rd_kafka_toppar_offset_request, rd_kafka_toppar_offset_retry in
# rdkafka_partition.c): a logical-offset lookup waits 500 ms when the partition's leader is not known
# yet, 100 ms when the reset follows an error (rd_kafka_offset_reset: no committed offset, offset out
# of range), and a failed ListOffsets is retried after 500 ms (rd_kafka_toppar_handle_Offset).
OFFSET_QUERY_NO_LEADER_MS = 500
OFFSET_RESET_ERROR_BACKOFF_MS = 100
OFFSET_QUERY_RETRY_MS = 500
CHUNK_MS = 200  # confluent-kafka polls librdkafka in 200 ms chunks (Consumer_consume)
# JoinGroup waits max.poll.interval.ms (the rebalance timeout), SyncGroup session.timeout.ms, plus a grace
# (rd_kafka_JoinGroupRequest, rd_kafka_SyncGroupRequest).
GROUP_REQUEST_GRACE_MS = 3000
_UUID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
JOIN_ERROR_BACKOFF_MS = 1000  # rd_kafka_cgrp_handle_JoinGroup: rd_interval_backoff(rkcg_join_intvl, 1 s)


class _ControlMessage(Message):
    """A transaction marker in the consumer queue: consumed silently, it only moves the app position."""


@define(eq=False)
class _Part:
    tp: TP
    fetch_pos: int | None = None  # None: the start offset is still being resolved
    app_pos: int = OFFSET_INVALID
    stored: int = OFFSET_INVALID  # the offset store (next offset to commit)
    committed: int = OFFSET_INVALID  # last offset this consumer committed or read
    version: int = 0  # bumped by seek/assign: queued messages of an older version are dropped
    backoff_until: int = 0
    eof_reported: bool = False


class Consumer(Handle):
    """confluent_kafka.Consumer on the simulated cluster."""

    def __init__(self, config: dict[str, Any], *, cluster: Any, name: str) -> None:
        self.config: ConsumerConfig = self._open("consumer", config, cluster, name)
        self._isolation: IsolationLevel = self.config.isolation_level
        self._parts: dict[TP, _Part] = {}
        self._queue: list[tuple[TP, int, Message]] = []  # (partition, version, message)
        self._queue_event: simpy.Event = self._env.event()
        self._fetch_wake: simpy.Event = self._env.event()
        self._closed = False
        self._leader_known_at: dict[str, int] = {}  # topic -> when its metadata (the leader) arrived
        self.metadata = Metadata(self)  # replicated partitions: where each leader is
        # group membership
        self._subscription: list[str] = []
        self._member_id = ""
        self._generation_id = -1
        self._on_assign: Callable[..., Any] | None = None
        self._on_revoke: Callable[..., Any] | None = None
        # ("assign"|"revoke", partitions, incremental) for poll; incremental under group.protocol=consumer
        self._rebalances: list[tuple[str, list[TP], bool]] = []
        # rkcg_ts_session_timeout: the member's own view of its session, pushed on by every successful
        # Heartbeat/SyncGroup response; None once it expired (no more expiry until the next join).
        self._session_deadline: int | None = None
        self._assignment_lost = False  # rkcg_assignment_lost: set on losing the group, cleared by (un)assign
        self._revoked: simpy.Event = self._env.event()  # poll served the queued rebalance events
        self._group_epoch = 0  # bumped to stop the current join/heartbeat loop
        self._spawn(self._fetcher())
        if self.config.enable_auto_commit and self.config.auto_commit_interval_ms > 0:
            self._spawn(self._auto_committer())

    # == public API =================================================================================

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        self._check_open()
        partitions = list(partitions)
        self._assign(partitions)
        self._assignment_lost = False  # rd_kafka_cgrp_assignment_clear_lost: "assign() called"
        self._op("assign", {"partitions": [[str(p.model()), p.offset] for p in partitions]})

    def unassign(self) -> None:
        self._check_open()
        self._assign([])
        self._assignment_lost = False  # rd_kafka_cgrp_assignment_clear_lost: "unassign() called"
        self._op("unassign", {})

    def subscribe(self, topics: list[str], on_assign: Callable[..., Any] | None = None,
                  on_revoke: Callable[..., Any] | None = None) -> None:
        self._check_open()
        self._learn_topics(topics)  # the group refreshes the subscription's metadata before joining
        self._subscription = list(topics)
        self._on_assign, self._on_revoke = on_assign, on_revoke
        self._group_epoch += 1
        loop = self._consumer_group if self.config.group_protocol == "consumer" else self._group
        self._spawn(loop(self._group_epoch))
        self._op("subscribe", {"topics": list(topics)})

    def assignment(self) -> list[TopicPartition]:
        self._check_open()
        return [TopicPartition(tp.topic, tp.partition) for tp in sorted(self._parts)]

    def poll(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("poll", self._call("poll", {"timeout": timeout}, self._poll(_timeout_ms(timeout))))

    def consume(self, num_messages: int = 1, timeout: float = -1) -> simpy.Process:
        self._check_open()
        if not 0 <= num_messages <= 1_000_000:
            raise ValueError("num_messages must be between 0 and 1000000 (1M)")
        return self._blocking("consume", self._call("consume", {"num_messages": num_messages, "timeout": timeout},
                                                    self._consume(num_messages, _timeout_ms(timeout))))

    def commit(self, message: Message | None = None, offsets: list[TopicPartition] | None = None,
               asynchronous: bool = True) -> simpy.Process | None:
        """Commit ``message``'s offset + 1, ``offsets``, or (neither) the stored offsets of the
        assignment. Asynchronous: returns None and commits in the background; synchronous: returns a
        process whose value is the committed list."""
        self._check_open()
        if message is not None and offsets is not None:
            raise ValueError("message and offsets are mutually exclusive")
        if message is not None:
            if message.error() is not None:
                raise KafkaException(KafkaError(KafkaError._INVALID_ARG,  # type: ignore[attr-defined]
                                                "Cannot commit offsets for message with error"))
            offsets = [TopicPartition(message.topic(), message.partition(), message.offset() + 1)]
        args = {"offsets": None if offsets is None else [[str(p.model()), p.offset] for p in offsets],
                "asynchronous": asynchronous}
        body = self._call("commit", args, self._commit(offsets))
        if asynchronous:
            self._spawn(body).defused = True  # the outcome is only traced, as for an async commit without on_commit
            return None
        return self._blocking("commit", body)

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> simpy.Process:
        self._check_open()
        args = {"partitions": [str(p.model()) for p in partitions], "timeout": timeout}
        return self._blocking("committed", self._call("committed", args,
                                                      self._committed(partitions, _timeout_ms(timeout))))

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """rd_kafka_position: the app position, offset + 1 of the last message (or control message)
        handed to the application; OFFSET_INVALID after assign or seek until one is (rdkafka.c
        rd_kafka_position, rdkafka_offset.c rd_kafka_update_app_pos). Not where fetching starts."""
        self._check_open()
        result = []
        for p in partitions:
            part = self._parts.get(p.model())
            result.append(TopicPartition(p.topic, p.partition, part.app_pos if part else OFFSET_INVALID))
        self._op("position", {"partitions": [str(p.model()) for p in partitions]},
                 result=[[str(p.model()), p.offset] for p in result])
        return result

    def seek(self, partition: TopicPartition) -> None:
        self._check_open()
        part = self._parts.get(partition.model())
        if part is None:
            error = KafkaError(KafkaError._STATE)  # type: ignore[attr-defined]
            self._op("seek", {"partition": [str(partition.model()), partition.offset]}, error=error)
            raise KafkaException(error)
        self._start(part, partition.offset)
        self._op("seek", {"partition": [str(partition.model()), partition.offset]})

    def store_offsets(self, message: Message | None = None, offsets: list[TopicPartition] | None = None) -> None:
        self._check_open()
        if message is not None and offsets is not None:
            raise ValueError("message and offsets are mutually exclusive")
        if message is None and offsets is None:
            raise ValueError("expected either message or offsets")
        if message is not None:
            offsets = [TopicPartition(message.topic(), message.partition(), message.offset() + 1)]
        assert offsets is not None
        args = {"offsets": [[str(p.model()), p.offset] for p in offsets]}
        # rd_kafka_offsets_store: refused while enable.auto.offset.store is on; unassigned: _STATE
        error = None
        if self.config.enable_auto_offset_store:
            error = KafkaError(KafkaError._INVALID_ARG)  # type: ignore[attr-defined]
        elif any(p.model() not in self._parts for p in offsets):
            error = KafkaError(KafkaError._STATE)  # type: ignore[attr-defined]
        if error is not None:
            self._op("store_offsets", args, error=error)
            raise KafkaException(error)
        for p in offsets:
            self._parts[p.model()].stored = p.offset
        self._op("store_offsets", args)

    def consumer_group_metadata(self) -> ConsumerGroupMetadata:
        self._check_open()
        return ConsumerGroupMetadata(group_id=self.config.group_id or "", generation_id=self._generation_id,
                                     member_id=self._member_id, group_instance_id=self.config.group_instance_id)

    def close(self) -> simpy.Process:
        self._check_open()
        return self._blocking("close", self._call("close", {}, self._close()))

    def crash(self) -> None:
        """The process is killed (eosim._client.handle): no final commit, no LeaveGroup, no more fetches or
        heartbeats; the group coordinator finds out when the session times out."""
        if self._crashed:
            return
        self._crashed = True
        self._op("crash", {})

    # == plumbing ===================================================================================

    def _check_open(self) -> None:
        if self._closed or self._crashed:
            raise RuntimeError("Consumer closed")  # ERR_MSG_CONSUMER_CLOSED (confluent_kafka.h)
        self._check_yielded()

    def _op(self, op: str, args: dict[str, Any], *, result: Any = None, error: KafkaError | None = None) -> None:
        if error is not None:
            self._trace.emit(self.name, "client.op", op=op, args=args, error=error.name(), fatal=error.fatal(),
                             retriable=error.retriable())
        else:
            self._emit_op(self.name, op=op, args=args, result=result)

    def _call(self, op: str, args: dict[str, Any], body: Generator) -> Generator:
        try:
            result = yield from body
        except KafkaException as exc:
            self._op(op, args, error=exc.args[0])
            raise
        self._op(op, args, result=_describe(result))
        return result

    def _request(self, payload: Any, timeout_ms: int, connection: str) -> simpy.Event:
        """Send on one of the handle's connections (eosim._client.handle: Fetch and ListOffsets to the
        leader, everything of the group to the GroupCoordinator logical broker). A replicated partition's
        ListOffsets goes to its leader from the metadata (eosim._client.metadata)."""
        if isinstance(payload, ListOffsetsRequest) and payload.partitions[0][0].topic in self._cluster.replicated:
            [(tp, _timestamp)] = payload.partitions
            return self.metadata.send(tp, payload, timeout_ms, connection)
        if self._coordinators is not None:
            return self._to_broker(payload, timeout_ms, connection)
        return self._cluster.network.request(self.name + connection, self._broker, payload, timeout_ms)

    def _fetch_from_leaders(self, request: FetchRequest, timeout_ms: int) -> Generator:
        """librdkafka fetches each partition from its leader's broker thread: one Fetch per leader, all at once
        (rd_kafka_broker_fetch_toppars); returns the answers. A partition whose leader moved is asked for again
        (eosim._client.metadata) and backs off like any fetch error."""
        metadata, replicated = self.metadata, self._cluster.replicated
        positions = dict(request.partitions)
        yield from metadata.find_leaders([tp for tp in positions if tp.topic in replicated],
                                         self.config.socket_timeout_ms)
        by_leader: dict[str, list[TP]] = {}
        for tp in positions:  # a single-replica topic's partitions are on the cluster's first broker
            leader = metadata.leaders[tp] if tp.topic in replicated else self._broker
            by_leader.setdefault(leader, []).append(tp)
        sent = [(tps, self._cluster.network.request(
            self.name, leader, FetchRequest(isolation_level=request.isolation_level,
                                            partitions=tuple((tp, positions[tp]) for tp in tps)), timeout_ms))
                for leader, tps in sorted(by_leader.items())]
        yield self._env.all_of([event for _tps, event in sent])
        for tps, event in sent:
            metadata.learn(event.value, tps)
        return [event.value for _tps, event in sent]

    def _backoff(self, retries: int) -> int:
        jitter = self._jitter.randint(100 - RETRY_JITTER_PERCENT, 100 + RETRY_JITTER_PERCENT)
        return retry_backoff_ms(retries, self.config.retry_backoff_ms, self.config.retry_backoff_max_ms, jitter)

    def _wake_fetcher(self) -> None:
        if not self._fetch_wake.triggered:
            self._fetch_wake.succeed()

    def _enqueue(self, tp: TP, version: int, message: Message) -> None:
        self._queue.append((tp, version, message))
        if not self._queue_event.triggered:
            self._queue_event.succeed()

    def _queue_wait(self) -> simpy.Event:
        if self._queue_event.triggered:
            self._queue_event = self._env.event()
        return self._queue_event

    # == assignment and start offsets ===============================================================

    def _assign(self, partitions: list[TopicPartition]) -> None:
        """rd_kafka_assign: replace the assignment; each partition starts at its given offset, or at the
        committed one (OFFSET_INVALID / OFFSET_STORED)."""
        self._parts = {}
        self._queue = [q for q in self._queue if q[0] in self._parts]
        self._learn_topics(p.topic for p in partitions)
        for p in partitions:
            part = self._parts[p.model()] = _Part(tp=p.model())
            self._start(part, p.offset)

    def _drop(self, tps: Iterable[TP]) -> None:
        """rd_kafka_incremental_unassign: these partitions stop; their queued messages go."""
        gone = set(tps)
        for tp in gone:
            self._parts.pop(tp, None)
        self._queue = [q for q in self._queue if q[0] not in gone]

    def _learn_topics(self, topics: Iterable[str]) -> None:
        """A topic the handle has not used yet gets a local topic object and a metadata request
        (rd_kafka_topic_new0 -> leader query): its partitions' leader is known one round trip later.
        The simulator has no Metadata request; it counts a round trip on the default link."""
        for topic in topics:
            self._leader_known_at.setdefault(topic, self._env.now + 2 * self._cluster.network.default_latency_ms)

    def _leader_known(self, topic: str) -> bool:
        known_at = self._leader_known_at.get(topic)
        return known_at is not None and self._env.now >= known_at

    def _start(self, part: _Part, offset: int) -> None:
        """Start (assign) or restart (seek) fetching at ``offset``. The app position is reset, as
        rd_kafka_toppar_seek does (rdkafka_partition.c: "seek()ing is analogue to a (re)assign()"): it
        moves again only when a message is handed to the application."""
        part.version += 1
        part.eof_reported = False
        part.app_pos = OFFSET_INVALID
        self._queue = [q for q in self._queue if q[0] != part.tp]
        if offset >= 0:
            part.fetch_pos = offset
            self._wake_fetcher()
            return
        part.fetch_pos = None
        if offset in (OFFSET_INVALID, OFFSET_STORED):
            self._spawn(self._resolve_committed(part, part.version))
        else:
            self._spawn(self._reset_offset(part, part.version, offset))

    def _resolve_committed(self, part: _Part, version: int) -> Generator:
        """The assignment's OffsetFetch (rd_kafka_assignment_serve_pending), retried on
        UNSTABLE_OFFSET_COMMIT while the assignment is unchanged."""
        offsets = yield from self._offset_fetch([part.tp], deadline=None)
        if part.version != version or self._parts.get(part.tp) is not part:
            return
        offset, error = offsets[part.tp]
        if error:
            self._enqueue(part.tp, version, Message(part.tp.topic, part.tp.partition, OFFSET_INVALID,
                                                    error=KafkaError(error)))
            return
        if offset < 0:
            # no committed offset: the fetcher starts at INVALID and resets with _NO_OFFSET
            # (rd_kafka_toppar_fetch_start -> rd_kafka_offset_reset)
            yield from self._reset_offset(part, version, OFFSET_INVALID, error=True)
            return
        part.committed = offset
        part.fetch_pos = offset
        self._wake_fetcher()

    def _reset_offset(self, part: _Part, version: int, logical: int, *, error: bool = False) -> Generator:
        """rd_kafka_offset_reset: BEGINNING/END (or auto.offset.reset) through ListOffsets; LATEST is
        the LSO for read_committed, the HW otherwise. The lookup runs on the partition's offset-query
        timer (rd_kafka_toppar_offset_request): after 100 ms when the reset is due to an ``error``,
        after 500 ms while the leader is unknown (right after the first assign of a topic), 500 ms
        again after a failed ListOffsets."""
        reset = self.config.auto_offset_reset
        if logical == OFFSET_BEGINNING or (logical == OFFSET_INVALID and reset == "earliest"):
            timestamp = EARLIEST_TIMESTAMP
        elif logical == OFFSET_END or (logical == OFFSET_INVALID and reset == "latest"):
            timestamp = LATEST_TIMESTAMP
        else:
            self._enqueue(part.tp, version, Message(part.tp.topic, part.tp.partition, OFFSET_INVALID,
                                                    error=KafkaError(KafkaError._AUTO_OFFSET_RESET)))  # type: ignore[attr-defined]
            return
        backoff = OFFSET_RESET_ERROR_BACKOFF_MS if error else 0
        while True:
            if not backoff and not self._leader_known(part.tp.topic):
                backoff = OFFSET_QUERY_NO_LEADER_MS  # "no current leader for partition"
            if backoff:
                yield self._env.timeout(backoff)  # the offset-query timer (seek/reassign stop it)
                backoff = 0
            else:
                reply = yield self._request(ListOffsetsRequest(isolation_level=self._isolation,
                                                               partitions=((part.tp, timestamp),)),
                                            self.config.socket_timeout_ms, LEADER)
                if not isinstance(reply, Failure) and reply.responses[0][1] is Errors.NONE:
                    break
                backoff = OFFSET_QUERY_RETRY_MS
            if part.version != version or self._parts.get(part.tp) is not part:
                return
        if part.version != version or self._parts.get(part.tp) is not part:
            return  # outdated response (a seek or reassign meanwhile)
        part.fetch_pos = reply.responses[0][2]
        self._wake_fetcher()

    def _offset_fetch(self, tps: list[TP], deadline: int | None) -> Generator:
        """OffsetFetch with require_stable iff read_committed (rd_kafka_assignment.c, rd_kafka_committed);
        retriable errors and UNSTABLE_OFFSET_COMMIT are retried with the request backoff
        (rd_kafka_handle_OffsetFetch). Returns {tp: (offset, error code)}; raises _TIMED_OUT past the
        deadline."""
        require_stable = self._isolation is IsolationLevel.READ_COMMITTED
        retries = 0
        while True:
            timeout = self.config.socket_timeout_ms
            if deadline is not None:
                timeout = max(min(timeout, deadline - self._env.now), 1)
            reply = yield self._request(OffsetFetchRequest(group_id=self.config.group_id, partitions=tuple(tps),
                                                           require_stable=require_stable), timeout,
                                        GROUP_COORDINATOR)
            if isinstance(reply, Failure):
                retry = True
                result: dict[TP, tuple[int, int]] = {}
            else:
                result = {tp: (offset, int(error)) for tp, offset, error in reply.results}
                codes = [reply.error] + [e for _, _, e in reply.results]
                retry = any(e is not Errors.NONE and action(Context.OFFSET_FETCH, e, self._client).reaction in
                            (Reaction.RETRY, Reaction.REFRESH) for e in codes)
                if not retry and reply.error is not Errors.NONE:
                    result = {tp: (OFFSET_INVALID, int(reply.error)) for tp in tps}
            if not retry:
                return result
            retries += 1
            backoff = self._backoff(retries)
            if deadline is not None and self._env.now + backoff >= deadline:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT))  # type: ignore[attr-defined]
            yield self._env.timeout(backoff)

    # == fetcher ====================================================================================

    def _fetcher(self) -> Generator:
        """Fetch every ready partition; an empty response waits fetch.wait.max.ms before the next fetch,
        standing in for the broker's long poll."""
        while not self._closed:
            now = self._env.now
            ready = sorted(tp for tp, part in self._parts.items()
                           if part.fetch_pos is not None and part.backoff_until <= now)
            if not ready:
                self._fetch_wake = self._env.event()
                waits = [self._fetch_wake]
                backoffs = [p.backoff_until for p in self._parts.values() if p.backoff_until > now]
                if backoffs:
                    waits.append(self._env.timeout(min(backoffs) - now))
                yield self._env.any_of(waits)
                continue
            positions = {}
            for tp in ready:
                part = self._parts[tp]
                positions[tp] = (part, part.version, part.fetch_pos)
            request = FetchRequest(isolation_level=self._isolation,
                                   partitions=tuple((tp, pos) for tp, (_, _, pos) in positions.items()))
            timeout = self.config.fetch_wait_max_ms + self.config.socket_timeout_ms
            if self._cluster.replicated:
                replies = yield from self._fetch_from_leaders(request, timeout)
            else:
                replies = [(yield self._request(request, timeout, LEADER))]
            got = False
            for reply in replies:
                if isinstance(reply, Failure):
                    continue
                for tp, result in reply.responses:
                    part, version, pos = positions[tp]
                    if self._parts.get(tp) is not part or part.version != version or part.fetch_pos != pos:
                        continue  # reassigned or sought meanwhile: outdated
                    got |= self._fetched(part, pos, result)
            if not got and not self._closed:
                self._fetch_wake = self._env.event()
                yield self._env.any_of([self._fetch_wake, self._env.timeout(self.config.fetch_wait_max_ms)])

    def _fetched(self, part: _Part, pos: int, result: Any) -> bool:
        if result.error is Errors.OFFSET_OUT_OF_RANGE:
            # rd_kafka_offset_reset: straight to auto.offset.reset, not the committed offset
            part.version += 1
            part.fetch_pos = None
            self._spawn(self._reset_offset(part, part.version, OFFSET_INVALID, error=True))
            return False
        if result.error is not Errors.NONE:
            part.backoff_until = self._env.now + FETCH_ERROR_BACKOFF_MS
            return False
        records = visible_records(result, self._isolation)
        # Control records never reach the application, but librdkafka queues them so that handing out
        # the queue moves the app position (and the offset store) past the marker slots
        # (rd_kafka_op_new_ctrl_msg, rd_kafka_op_handle_std).
        entries: list[tuple[int, Message | None]] = [
            (offset, Message(part.tp.topic, part.tp.partition, offset, record.key, record.value, None,
                             (TIMESTAMP_CREATE_TIME, record.timestamp)))
            for offset, record in records]
        entries += [(batch.base_offset, None) for batch in result.batches if batch.is_control and batch.base_offset >= pos]
        for offset, message in sorted(entries, key=_OFFSET):
            self._enqueue(part.tp, part.version,
                          message if message is not None else _ControlMessage(part.tp.topic, part.tp.partition, offset))
        part.fetch_pos = next_offset(result, pos)
        bound = result.last_stable_offset if self._isolation is IsolationLevel.READ_COMMITTED else result.high_watermark
        if self.config.enable_partition_eof and part.fetch_pos >= bound and not part.eof_reported:
            part.eof_reported = True
            self._enqueue(part.tp, part.version, Message(part.tp.topic, part.tp.partition, part.fetch_pos,
                                                         error=KafkaError(KafkaError._PARTITION_EOF)))  # type: ignore[attr-defined]
        elif records:
            part.eof_reported = False
        return bool(result.batches)

    # == handing messages to the application ========================================================

    def _take(self, limit: int) -> list[Message]:
        """Pop up to ``limit`` current messages; advance the app position and the offset store
        (enable.auto.offset.store: offset + 1 of each message returned)."""
        taken = []
        while self._queue and len(taken) < limit:
            tp, version, message = self._queue.pop(0)
            part = self._parts.get(tp)
            if part is None or part.version != version:
                continue  # outdated (rd_kafka_op_version_outdated)
            if message.error() is None:
                part.app_pos = message.offset() + 1
                if self.config.enable_auto_offset_store:
                    part.stored = part.app_pos
            if not isinstance(message, _ControlMessage):
                taken.append(message)
        return taken

    def _serve_rebalances(self) -> None:
        """confluent-kafka's rebalance callback runs inside poll: on_assign/on_revoke, then the
        (un)assignment itself."""
        while self._rebalances:
            kind, tps, incremental = self._rebalances.pop(0)
            partitions = [TopicPartition(tp.topic, tp.partition) for tp in tps]
            if kind == "revoke":
                if self._on_revoke is not None:
                    self._on_revoke(self, partitions)
                if incremental:  # incremental_unassign (COOPERATIVE: the KIP-848 protocol)
                    self._drop(tps)
                else:
                    self._assign([])
                self._assignment_lost = False
            else:
                if self._on_assign is not None:
                    self._on_assign(self, partitions)
                if incremental:  # incremental_assign
                    self._learn_topics(tp.topic for tp in tps)
                    for tp in tps:
                        if tp not in self._parts:
                            self._start(self._parts.setdefault(tp, _Part(tp=tp)), OFFSET_INVALID)
                else:
                    self._assign(partitions)
            self._op(kind, {"partitions": [str(tp) for tp in tps]})
        if not self._revoked.triggered:
            self._revoked.succeed()

    def _poll(self, timeout_ms: int | None) -> Generator:
        deadline = None if timeout_ms is None else self._env.now + timeout_ms
        while True:
            self._serve_rebalances()
            taken = self._take(1)
            if taken:
                return taken[0]
            if deadline is not None and self._env.now >= deadline:
                return None
            yield from self._wait_queue(deadline)

    def _consume(self, num_messages: int, timeout_ms: int | None) -> Generator:
        """rd_kafka_consume_batch_queue waits for a full batch or its timeout; confluent-kafka calls it
        in 200 ms chunks and returns after the first chunk that yielded anything."""
        deadline = None if timeout_ms is None else self._env.now + timeout_ms
        while True:
            chunk_end = self._env.now + CHUNK_MS if deadline is None else min(self._env.now + CHUNK_MS, deadline)
            if timeout_ms is not None and timeout_ms < CHUNK_MS:
                chunk_end = deadline
            taken: list[Message] = []
            while True:
                self._serve_rebalances()
                taken += self._take(num_messages - len(taken))
                if len(taken) >= num_messages or self._env.now >= chunk_end:
                    break
                yield from self._wait_queue(chunk_end)
            if taken or (deadline is not None and self._env.now >= deadline):
                return taken

    def _wait_queue(self, deadline: int | None) -> Generator:
        waits = [self._queue_wait()]
        if deadline is not None:
            waits.append(self._env.timeout(max(deadline - self._env.now, 0)))
        yield self._env.any_of(waits)

    # == commits ====================================================================================

    def _commit(self, offsets: list[TopicPartition] | None) -> Generator:
        """rd_kafka_commit_queue: without offsets, the assignment's stored offsets not yet committed;
        nothing to commit is _NO_OFFSET; a lost assignment is not committed, _ASSIGNMENT_LOST
        (rd_kafka_cgrp_offsets_commit)."""
        if self._client is Client.LIBRDKAFKA:  # the Java consumer has no such check: its commit is sent
            self._session_timeout_check()  # the cgrp serve that handles the commit op checks the session first
        if offsets is None and self._parts and self._assignment_lost and self._client is Client.LIBRDKAFKA:
            raise KafkaException(KafkaError(KafkaError._ASSIGNMENT_LOST))  # type: ignore[attr-defined]
        if offsets is None:
            offsets = [TopicPartition(tp.topic, tp.partition, part.stored) for tp, part in sorted(self._parts.items())
                       if part.stored >= 0 and part.stored != part.committed]
        offsets = [p for p in offsets if p.offset >= 0]
        if not offsets:
            raise KafkaException(KafkaError(KafkaError._NO_OFFSET))  # type: ignore[attr-defined]
        retries = 0
        while True:
            request = OffsetCommitRequest(group_id=self.config.group_id, generation_id=self._generation_id,
                                          member_id=self._member_id,
                                          offsets=tuple((p.model(), p.offset) for p in offsets))
            reply = yield self._request(request, self.config.socket_timeout_ms, GROUP_COORDINATOR)
            if isinstance(reply, Failure):
                errors = {p.model(): failure_code(reply) for p in offsets}
                retry = True
            else:
                errors = {tp: int(e) for tp, e in reply.results if e is not Errors.NONE}
                retry = bool(errors) and all(action(Context.OFFSET_COMMIT, Errors(e), self._client).reaction in
                                             (Reaction.RETRY, Reaction.REFRESH) for e in errors.values())
            if not retry:
                break
            retries += 1
            yield self._env.timeout(self._backoff(retries))
        result = []
        for p in offsets:
            tp = p.model()
            committed = TopicPartition(p.topic, p.partition, p.offset)
            if tp in errors:
                committed.error = KafkaError(errors[tp])
            elif tp in self._parts:
                self._parts[tp].committed = p.offset
            result.append(committed)
        if errors:
            # all failed: the last partition's error is the request's (rd_kafka_handle_OffsetCommit)
            code = list(errors.values())[-1]
            if self._client is Client.JAVA and code in (Errors.UNKNOWN_MEMBER_ID, Errors.ILLEGAL_GENERATION):
                # ConsumerCoordinator turns them into CommitFailedException, which has no ApiException cause
                code = KafkaError._STATE  # type: ignore[attr-defined]
            raise KafkaException(KafkaError(code))
        return result

    def _committed(self, partitions: list[TopicPartition], timeout_ms: int | None) -> Generator:
        deadline = None if timeout_ms is None else self._env.now + timeout_ms
        offsets = yield from self._offset_fetch([p.model() for p in partitions], deadline)
        result = []
        for p in partitions:
            offset, error = offsets.get(p.model(), (OFFSET_INVALID, 0))
            tp = TopicPartition(p.topic, p.partition, offset if offset >= 0 else OFFSET_INVALID)
            if error:
                tp.error = KafkaError(error)
            result.append(tp)
        return result

    def _auto_committer(self) -> Generator:
        """The auto-commit timer: commit the stored offsets every auto.commit.interval.ms."""
        while not self._closed:
            yield self._env.timeout(self.config.auto_commit_interval_ms)
            if self._closed:
                return
            if any(p.stored >= 0 and p.stored != p.committed for p in self._parts.values()):
                process = self._spawn(self._call("auto_commit", {}, self._commit(None)))
                process.defused = True

    # == group membership: the classic protocol (rdkafka_cgrp.c join states) ===========================

    def _active(self, epoch: int) -> bool:
        return self._group_epoch == epoch and not self._closed

    def _group(self, epoch: int) -> Generator:
        """JoinGroup (twice for a new member: MEMBER_ID_REQUIRED hands out the id), then SyncGroup, with the
        assignment computed here when this member is the leader; then heartbeat until the group needs a
        rejoin (rd_kafka_cgrp_join, rd_kafka_cgrp_handle_JoinGroup, rd_kafka_cgrp_handle_SyncGroup)."""
        strategies = [n.strip() for n in self.config.partition_assignment_strategy.split(",") if n.strip()]
        topics = tuple(sorted(self._subscription))
        while self._active(epoch):
            join = JoinGroupRequest(group_id=self.config.group_id, member_id=self._member_id,
                                    client_id=self.config.client_id,
                                    session_timeout_ms=self.config.session_timeout_ms,
                                    rebalance_timeout_ms=self.config.max_poll_interval_ms,
                                    protocols=tuple((name, topics) for name in strategies))
            reply = yield self._request(join, self.config.max_poll_interval_ms + GROUP_REQUEST_GRACE_MS,
                                        GROUP_COORDINATOR)
            if not self._active(epoch):
                return
            if not isinstance(reply, Failure) and reply.error is Errors.MEMBER_ID_REQUIRED:
                self._member_id = reply.member_id  # KIP-394: rejoin at once with the id (join backoff reset)
                continue
            if isinstance(reply, Failure) or reply.error is not Errors.NONE:
                self._group_error(None if isinstance(reply, Failure) else reply.error)
                yield self._env.timeout(JOIN_ERROR_BACKOFF_MS)
                continue
            self._member_id, self._generation_id = reply.member_id, reply.generation_id
            assignments: tuple[tuple[str, tuple[TP, ...]], ...] = ()
            if reply.leader == reply.member_id:  # rd_kafka_cgrp_assignor_run
                subscriptions = dict(reply.members)
                counts = {t: self._cluster.topics[t] for ts in subscriptions.values() for t in ts
                          if t in self._cluster.topics}
                assignments = tuple(sorted(ASSIGNORS[reply.protocol_name](subscriptions, counts).items()))
            sync = SyncGroupRequest(group_id=self.config.group_id, generation_id=self._generation_id,
                                    member_id=self._member_id, protocol_name=reply.protocol_name,
                                    assignments=assignments)
            reply = yield self._request(sync, self.config.session_timeout_ms + GROUP_REQUEST_GRACE_MS,
                                        GROUP_COORDINATOR)
            if not self._active(epoch):
                return
            if isinstance(reply, Failure) or reply.error is not Errors.NONE:
                self._group_error(None if isinstance(reply, Failure) else reply.error)
                continue  # rd_kafka_cgrp_rejoin: the join interval has passed since the last JoinGroup
            self._session_deadline = self._env.now + self.config.session_timeout_ms
            self._rebalances.append(("assign", sorted(reply.assignment), False))
            if not self._queue_event.triggered:
                self._queue_event.succeed()  # wake a waiting poll to serve the assignment
            rejoin = yield from self._heartbeat(epoch)
            if not rejoin:
                return
            yield from self._revoke(epoch, lost=rejoin == "lost")

    def _group_error(self, error: Errors | None) -> None:
        """What a JoinGroup/SyncGroup error resets before the rejoin."""
        if error is Errors.UNKNOWN_MEMBER_ID:
            self._member_id = ""
        elif error is Errors.ILLEGAL_GENERATION:
            self._generation_id = -1

    def _heartbeat(self, epoch: int) -> Generator:
        """Heartbeat until the group needs a rejoin: "rejoin" (rebalance) or "lost" (the session expired, or
        the generation/member is gone); None when unsubscribed or closed (rd_kafka_cgrp_handle_Heartbeat)."""
        while True:
            yield self._env.timeout(self.config.heartbeat_interval_ms)
            if not self._active(epoch):
                return None
            if self._session_deadline is None or self._session_timeout_check():
                return "lost"
            reply = yield self._request(HeartbeatRequest(group_id=self.config.group_id, member_id=self._member_id,
                                                         generation_id=self._generation_id),
                                        self.config.socket_timeout_ms, GROUP_COORDINATOR)
            if not self._active(epoch):
                return None
            if self._session_deadline is None:
                return "lost"  # expired while the heartbeat was in flight (a commit checked it)
            if isinstance(reply, Failure):
                continue
            if reply.error in (Errors.NONE, Errors.REBALANCE_IN_PROGRESS):
                self._session_deadline = self._env.now + self.config.session_timeout_ms
            if reply.error is Errors.NONE:
                continue
            reaction = action(Context.HEARTBEAT, reply.error, self._client).reaction
            if reaction is not Reaction.REJOIN:
                continue
            if reply.error is Errors.REBALANCE_IN_PROGRESS:
                return "rejoin"
            if reply.error is Errors.UNKNOWN_MEMBER_ID:
                self._member_id = ""
            self._generation_id = -1
            self._assignment_lost = bool(self._parts)  # rd_kafka_cgrp_assignment_set_lost
            return "lost"

    def _session_timeout_check(self) -> bool:
        """rd_kafka_cgrp_session_timeout_check: without a successful response for session.timeout.ms the
        member gives up on its own: the member id is forgotten and the assignment is lost."""
        if self._session_deadline is None or self._env.now < self._session_deadline:
            return False
        self._session_deadline = None
        self._member_id = ""
        self._assignment_lost = bool(self._parts)
        self._trace.emit(self.name, "client.session_timeout", group_id=self.config.group_id)
        return True

    def _revoke(self, epoch: int, *, lost: bool) -> Generator:
        """rd_kafka_cgrp_revoke_all_rejoin_maybe (eager): commit the stored offsets when auto-committing (not
        when the assignment was lost), hand the revocation to poll, and rejoin only once the application
        has served it (join state WAIT_UNASSIGN_CALL)."""
        self._session_deadline = None
        if not lost and self.config.enable_auto_commit and any(
                p.stored >= 0 and p.stored != p.committed for p in self._parts.values()):
            try:
                yield from self._call("auto_commit", {}, self._commit(None))
            except KafkaException:
                pass  # traced; the rejoin goes ahead
        if not self._parts and not self._rebalances:
            return
        self._rebalances.append(("revoke", sorted(self._parts), self.config.group_protocol == "consumer"))
        yield from self._await_rebalance_served(epoch)

    def _await_rebalance_served(self, epoch: int) -> Generator:
        """Wake a waiting poll, and wait until the application's poll has run the rebalance callbacks."""
        if not self._queue_event.triggered:
            self._queue_event.succeed()
        while self._rebalances and self._active(epoch):
            self._revoked = self._env.event()
            yield self._revoked

    # == group membership: the KIP-848 consumer protocol (rd_kafka_cgrp_consumer_*) =====================

    def _consumer_group(self, epoch: int) -> Generator:
        """ConsumerGroupHeartbeat: join with member epoch 0 and a member id of the client's own (KIP-1082),
        then heartbeat every interval the broker gives. An assignment that differs from the current one is
        reconciled through poll (revoked partitions first, then the new ones, incrementally) and
        acknowledged at once by a heartbeat listing the partitions now owned. UNKNOWN_MEMBER_ID or
        FENCED_MEMBER_EPOCH: the assignment is lost, and once poll has revoked it the member rejoins with
        epoch 0 and the same member id (rd_kafka_cgrp_handle_ConsumerGroupHeartbeat,
        rd_kafka_cgrp_consumer_serve)."""
        if not self._member_id:
            rng = self._world.rng(f"{self.name}/member-id")
            self._member_id = "".join(rng.choice(_UUID_ALPHABET) for _ in range(22))  # a base64 UUID
        topics = tuple(sorted(self._subscription))
        current: tuple[TP, ...] = ()
        full, ack, interval = True, False, 0
        self._generation_id = 0
        while self._active(epoch):
            request = ConsumerGroupHeartbeatRequest(
                group_id=self.config.group_id, member_id=self._member_id, member_epoch=max(self._generation_id, 0),
                rebalance_timeout_ms=self.config.max_poll_interval_ms if full else -1,
                subscribed_topic_names=topics if full else None,
                server_assignor=self.config.group_remote_assignor if full else None,
                topic_partitions=current if full or ack else None)
            reply = yield self._request(request, self.config.socket_timeout_ms, GROUP_COORDINATOR)
            if not self._active(epoch):
                return
            if isinstance(reply, Failure) or reply.error in (Errors.NOT_COORDINATOR, Errors.COORDINATOR_NOT_AVAILABLE,
                                                             Errors.COORDINATOR_LOAD_IN_PROGRESS):
                full = True  # re-query the coordinator, then a full request
                yield self._env.timeout(self._backoff(1))
                continue
            if reply.error in (Errors.UNKNOWN_MEMBER_ID, Errors.FENCED_MEMBER_EPOCH):
                self._assignment_lost = bool(self._parts)
                yield from self._revoke(epoch, lost=True)
                self._generation_id, current, full, ack = 0, (), True, False
                continue
            if reply.error is not Errors.NONE:
                # INVALID_REQUEST, GROUP_ID_NOT_FOUND, UNSUPPORTED_ASSIGNOR, ...: a fatal consumer error
                self._trace.emit(self.name, "client.group_fatal", group_id=self.config.group_id,
                                 error=reply.error.name)
                return
            self._generation_id = reply.member_epoch
            interval = reply.heartbeat_interval_ms or interval
            full = ack = False
            if reply.assignment is not None and set(reply.assignment) != set(current):
                target = tuple(sorted(reply.assignment))
                revoked = [tp for tp in current if tp not in target]
                added = [tp for tp in target if tp not in current]
                if revoked:
                    self._rebalances.append(("revoke", revoked, True))
                if added:
                    self._rebalances.append(("assign", added, True))
                yield from self._await_rebalance_served(epoch)
                current, ack = target, True
                continue  # the acknowledgement goes out at once (rd_kafka_cgrp_consumer_expedite_next_heartbeat)
            yield self._env.timeout(interval)

    def _close(self) -> Generator:
        """rd_kafka_consumer_close: final commit of the stored offsets (auto-commit), leave the group."""
        if self.config.enable_auto_commit and any(p.stored >= 0 and p.stored != p.committed
                                                  for p in self._parts.values()):
            try:
                yield from self._call("auto_commit", {}, self._commit(None))
            except KafkaException:
                pass  # traced; closing goes ahead
        if self._subscription and self._member_id and self.config.group_protocol == "consumer":
            if self._generation_id > 0:  # leaving: a heartbeat with member epoch -1 (rd_kafka_cgrp_leave)
                yield self._request(ConsumerGroupHeartbeatRequest(
                    group_id=self.config.group_id, member_id=self._member_id, member_epoch=LEAVE_GROUP_MEMBER_EPOCH),
                    self.config.socket_timeout_ms, GROUP_COORDINATOR)
        elif self._subscription and self._member_id:
            yield self._request(LeaveGroupRequest(group_id=self.config.group_id, member_id=self._member_id),
                                self.config.socket_timeout_ms, GROUP_COORDINATOR)
        self._group_epoch += 1
        self._closed = True
        self._parts = {}
        self._wake_fetcher()
        return None


_OFFSET = itemgetter(0)  # a fetched entry's sort key, (offset, message), read in C


def _describe(result: Any) -> Any:
    """API results for the trace, small and JSON-ready."""
    if isinstance(result, Message):
        if result.error() is not None:
            return {"topic": result.topic(), "partition": result.partition(), "error": result.error().name()}
        return {"topic": result.topic(), "partition": result.partition(), "offset": result.offset(),
                "key": result.key(), "value": result.value()}
    if isinstance(result, TopicPartition):
        entry: dict[str, Any] = {"tp": f"{result.topic}-{result.partition}", "offset": result.offset}
        if result.error is not None:
            entry["error"] = result.error.name()
        return entry
    if isinstance(result, list):
        return [_describe(r) for r in result]
    return result
