"""eosim._client.sender
=================

The producer's sender: partition queues, batches, in-flight requests and retries, after librdkafka's
partition sender (``rd_kafka_toppar_producer_serve``, ``src/rdkafka_broker.c``) and Produce response
handler (``rd_kafka_handle_Produce_error``, ``rd_kafka_handle_idempotent_Produce_error``,
``src/rdkafka_request.c``).

Messages get a per-partition ``msgid`` (1, 2, ...); a batch's sequence number is ``msgid -
epoch_base_msgid``, where the base is the first queued msgid when the partition adopted the current
(pid, epoch). ``serve`` runs whenever something changed and sends at most one batch per request, up to 5 in
flight per partition when idempotent, once ``linger.ms`` passed. Responses go through ``produce_outcome``
(a pure function of the error and the partition's sequence bookkeeping) whose verdict the sender applies:
deliver, re-queue (a retry keeps its msgids, hence its sequence), or fail, possibly with an epoch bump after
all partitions drained, an abortable transaction error or a fatal error.
"""

from __future__ import annotations

import math
import zlib
from bisect import insort
from typing import TYPE_CHECKING, Any

import simpy
from attrs import define, field, frozen

from eosim.models.errors import Errors
from eosim.models.protocol import ProduceRequest, ProduceResponse
from eosim.models.records import MAX_SEQUENCE, Record, RecordBatch, TopicPartition as TP, increment_sequence
from eosim._client.config import Client
from eosim._client.delivery import Msg, MsgStatus
from eosim._client.errors import Context, KafkaError, KafkaException, Reaction, action, normalize
from eosim._client.handle import LEADER, failure_code
from eosim._client.idempotence import NO_PID, IdempState
from eosim._client.reaction import is_fatal
from eosim._net import DISCONNECTED, Failure

if TYPE_CHECKING:
    from eosim._client.producer import Producer

IDEMP_MAX_INFLIGHT = 5  # RD_KAFKA_IDEMP_MAX_INFLIGHT (rdkafka_idempotence.h): the broker's dedup window
TIMEOUT_SCAN_MS = 1000  # rd_kafka_broker_producer_serve scans message timeouts once a second
RETRY_JITTER_PERCENT = 20  # RD_KAFKA_RETRY_JITTER_PERCENT (rdkafka_int.h)
STICKY_PARTITIONING_LINGER_MS = 10  # sticky.partitioning.linger.ms default (CONFIGURATION.md)
# Batches of a partition in flight while it resends: librdkafka resends as many as the dedup window
# takes, once the partition drained (rd_kafka_idemp_drain_toppar); Java resends one at a time
# ("This effectively reduces our in flight request count to 1", RecordAccumulator
# .shouldStopDrainBatchesForPartition).
RESEND_IN_FLIGHT: dict[Client, int] = {Client.LIBRDKAFKA: IDEMP_MAX_INFLIGHT, Client.JAVA: 1}
# Enum members read on every request's path, as module constants: on Python 3.11 reading a member
# through its class costs a Python-level __getattr__ (EnumType's), a global read does not.
_NONE = Errors.NONE
_JAVA = Client.JAVA
_ASSIGNED = IdempState.ASSIGNED
_PERSISTED = MsgStatus.PERSISTED


# -- pure decisions -------------------------------------------------------------------------------


def partition_for_key(key: str | bytes, partition_count: int) -> int:
    """rd_kafka_msg_partitioner_consistent: crc32 of the key bytes modulo the partition count (a str
    key is its UTF-8 bytes, as confluent-kafka encodes it)."""
    return zlib.crc32(key if isinstance(key, bytes) else key.encode()) % partition_count


def retry_backoff_ms(retries: int, base_ms: int, max_ms: int, jitter_percent: int) -> int:
    """Exponential backoff of rd_kafka_retry_msgq / rd_kafka_broker_buf_retry: base * 2^(retries-1),
    scaled by a jitter of 80..120 %, capped at retry.backoff.max.ms."""
    backoff = base_ms * (1 << min(retries - 1, 34)) if retries > 0 else base_ms
    return min(backoff * jitter_percent // 100, max_ms)


@frozen(kw_only=True)
class ProduceOutcome:
    """What rd_kafka_handle_Produce_error (+ the idempotent special cases) decides for one batch."""

    verdict: str  # "deliver" | "retry" | "fail"
    error: int = 0  # the delivery report error (0 for success)
    status: MsgStatus = MsgStatus.NOT_PERSISTED
    incr_retry: bool = True
    update_next_ack: bool = False
    update_next_err: bool = True
    drain_toppar: bool = False  # wait for this partition's in-flight requests before retrying
    bump: bool = False  # rd_kafka_idemp_drain_epoch_bump (abortable with bump when transactional)
    abortable: bool = False  # rd_kafka_txn_set_abortable_error
    fatal: int = 0  # a fatal error code (rd_kafka_idemp_set_fatal_error / txn fatal)


LOCAL_PRODUCE_ERRORS: dict[int, tuple[Reaction, bool]] = {
    # request timeout: RD_KAFKA_ERR_ACTION_RETRY | MSG_POSSIBLY_PERSISTED
    KafkaError._TIMED_OUT: (Reaction.RETRY, True),  # type: ignore[attr-defined]
    # connection closed: REFRESH | MSG_POSSIBLY_PERSISTED, and the retry counts ("we can't be certain the
    # request wasn't sent", rd_kafka_handle_Produce_error): a counted retry, possibly persisted
    KafkaError._TRANSPORT: (Reaction.RETRY, True),  # type: ignore[attr-defined]
    # purge(in_flight=True): permanent, possibly persisted (rd_kafka_err_action default list)
    KafkaError._PURGE_INFLIGHT: (Reaction.PERMANENT, True),  # type: ignore[attr-defined]
}


def produce_outcome(error: int, context: Context, *, pid_matches: bool, first_seq: int, next_ack_seq: int,
                    next_err_seq: int, first_retries: int, client: Client = Client.LIBRDKAFKA) -> ProduceOutcome:
    """The reaction to a failed ProduceRequest for one batch (``error`` is never NONE)."""
    if error in LOCAL_PRODUCE_ERRORS:
        reaction, possibly = LOCAL_PRODUCE_ERRORS[error]
        if reaction is Reaction.PERMANENT and context is not Context.PRODUCE:
            reaction = Reaction.ABORTABLE if context is Context.PRODUCE_TRANSACTIONAL else Reaction.PERMANENT_BUMP
    else:
        act = action(context, Errors(error), client)
        reaction, possibly = act.reaction, act.possibly_persisted
    status = MsgStatus.POSSIBLY_PERSISTED if possibly else MsgStatus.NOT_PERSISTED
    idempotent = context is not Context.PRODUCE
    transactional = context is Context.PRODUCE_TRANSACTIONAL
    if idempotent and not pid_matches:
        # "Don't retry if PID changed since we can't guarantee correctness across PID sessions."
        return ProduceOutcome(verdict="fail", error=error, status=MsgStatus.POSSIBLY_PERSISTED,
                              abortable=transactional, bump=not transactional)
    if reaction is Reaction.OK:  # DUPLICATE_SEQUENCE_NUMBER: delivered, without an offset
        return ProduceOutcome(verdict="deliver", status=MsgStatus.PERSISTED, update_next_ack=True)
    if reaction in (Reaction.RETRY, Reaction.REFRESH):
        incr = reaction is Reaction.RETRY
        return ProduceOutcome(verdict="retry", error=error, status=status if incr else MsgStatus.NOT_PERSISTED,
                              incr_retry=incr, drain_toppar=idempotent)
    if reaction is Reaction.SEQUENCE_RETRY:  # Java's TM.canRetry
        if first_seq != next_ack_seq:  # not the next batch: an earlier one failed, retry behind it
            return ProduceOutcome(verdict="retry", error=error, status=status, drain_toppar=True)
        # head of line, a real gap: TM.handleFailedBatch / canRetry
        reaction = Reaction.ABORTABLE_BUMP if transactional else Reaction.BUMP_RETRY
    if reaction is Reaction.BUMP_RETRY:  # the retry counts: batch.attempts() grows on every reenqueue
        return ProduceOutcome(verdict="retry", error=error, status=status, bump=True)
    if reaction is Reaction.SEQUENCE:
        gap = first_seq - next_ack_seq
        if gap > 0:  # a later request failed because an earlier one did: bump and retry, no retry counted
            return ProduceOutcome(verdict="retry", error=error, incr_retry=False, bump=True)
        # head of line (gap == 0: desynchronised) or a rewound sequence (gap < 0): fatal
        return ProduceOutcome(verdict="fail", error=error, status=MsgStatus.POSSIBLY_PERSISTED,
                              update_next_err=gap == 0, fatal=error)
    if reaction is Reaction.UNKNOWN_PID:
        if first_retries == 0 and next_err_seq == first_seq:  # nothing unacked before it: safe to bump
            return ProduceOutcome(verdict="retry", error=error, incr_retry=False, bump=True)
        return ProduceOutcome(verdict="fail", error=error, status=MsgStatus.POSSIBLY_PERSISTED, fatal=error)
    if reaction is Reaction.ABORTABLE_BUMP:  # transactional UNKNOWN_PRODUCER_ID; Java: any failed batch (TV1)
        return ProduceOutcome(verdict="fail", error=error, bump=True)
    if is_fatal(reaction):  # librdkafka: a fenced transactional produce; Java: PRODUCER_FENCED, INVALID_PRODUCER_ID_MAPPING
        return ProduceOutcome(verdict="fail", error=error, status=status, fatal=normalize(error, client))
    if reaction is Reaction.ABORTABLE:
        return ProduceOutcome(verdict="fail", error=error, status=status, abortable=True)
    if reaction is Reaction.PERMANENT_BUMP:  # "message sequence gap": drain and bump the epoch
        return ProduceOutcome(verdict="fail", error=error, status=status, bump=True)
    return ProduceOutcome(verdict="fail", error=error, status=status)


def _partition_order(part: _Partition) -> tuple[str, int]:
    return part.tp.topic, part.tp.partition


# -- internal records -----------------------------------------------------------------------------


@define(eq=False)
class _Batch:
    tp: TP
    msgs: list[Msg]
    pid: tuple[int, int]
    first_seq: int
    purged: bool = False
    reply: simpy.Event | None = None


@define(eq=False)
class _Partition:
    tp: TP
    queue: list[Msg] = field(factory=list)
    inflight: list[_Batch] = field(factory=list)
    next_msgid: int = 1
    pid: tuple[int, int] = NO_PID  # the (pid, epoch) this partition's sequences belong to
    epoch_base_msgid: int = 0
    next_ack_seq: int = 0
    next_err_seq: int = 0
    acked_msgid: int = 0
    wait_drain: bool = False
    pending_txn: bool = False  # RD_KAFKA_TOPPAR_F_PEND_TXN
    in_txn: bool = False  # RD_KAFKA_TOPPAR_F_IN_TXN


@define(eq=False)
class Sender:
    """The partitions of one producer and what is queued, in flight and retried on each."""

    rk: Producer
    _partitioner: Any  # world.rng(name + "/partitioner")
    partitions: dict[TP, _Partition] = field(factory=dict)
    _in_order: list[_Partition] = field(factory=list)  # the partitions in TopicPartition order, kept as they are added
    _by_name: dict[tuple[str, int], _Partition] = field(factory=dict)  # (topic, partition): no TP built per produce
    _sticky: dict[str, tuple[int, int]] = field(factory=dict)  # topic -> (partition, chosen at)
    _serve_scheduled: bool = False
    aged: tuple[tuple[int, int], int] | None = None  # an aged producer's (pid, epoch) and its next sequence
    _wakeups: set[int] = field(factory=set)
    _next_scan: int = 0
    _inflight: int = field(default=0, init=False)  # batches in flight over every partition (each partition's ``inflight``, counted)
    _serve_now_alive: Any = field(init=False)  # _serve_now under rk._alive, made once
    # each Produce's reply event -> its (partition, batch): one guarded callback for every reply, made once, instead
    # of a guard and a partial per request
    _replies: dict[simpy.Event, tuple[_Partition, _Batch]] = field(factory=dict, init=False)
    _on_reply_alive: Any = field(init=False)  # _on_produce_reply under rk._alive, made once

    def __attrs_post_init__(self) -> None:
        self._serve_now_alive = self.rk._alive(self._serve_now)
        self._on_reply_alive = self.rk._alive(self._on_produce_reply)

    # -- produce ----------------------------------------------------------------------------------

    def enqueue(self, topic: str, value: str | None, key: str | None, partition: int, callback: Any) -> None:
        """rd_kafka_producev after rd_kafka_check_produce: queue the message on its partition."""
        rk = self.rk
        count = rk._cluster.topics.get(topic)
        if count is None:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_TOPIC))  # type: ignore[attr-defined]
        if partition < 0:
            partition = self._choose_partition(topic, key, count)
        if partition >= count:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))  # type: ignore[attr-defined]
        part = self._by_name.get((topic, partition))
        if part is None:
            part = self.partition(TP(topic, partition))
        tp = part.tp
        now = rk._env._now
        timeout = rk.config.message_timeout_ms
        # (tp, msgid, key, value, timestamp, timeout_at, callback) by position: a class called with keywords packs
        # them into a dict, about 0.4 µs more (eosim.models.values)
        msg = Msg(tp, part.next_msgid, key, value, now, now + timeout if timeout else None, callback)
        part.next_msgid += 1
        part.queue.append(msg)
        rk.dr.outstanding += 1
        if rk.transactional_id is not None:
            rk.txn.add_partition(part)
        linger = math.ceil(rk.config.linger_ms)
        if linger:
            self._wake_at(now + linger)
        self.kick()  # serves now: with linger.ms=0 that is the wake-up

    def _choose_partition(self, topic: str, key: str | None, count: int) -> int:
        if key:  # consistent_random (librdkafka's default partitioner)
            return partition_for_key(key, count)
        # null or empty key: the sticky partition, re-drawn after sticky.partitioning.linger.ms
        # (rd_kafka_msg_sticky_partition)
        now = self.rk._env._now
        sticky = self._sticky.get(topic)
        if sticky is None or now - sticky[1] >= STICKY_PARTITIONING_LINGER_MS:
            sticky = (self._partitioner.randrange(count), now)
            self._sticky[topic] = sticky
        return sticky[0]

    def partition(self, tp: TP) -> _Partition:
        part = self.partitions.get(tp)
        if part is None:
            part = self.partitions[tp] = self._by_name[(tp.topic, tp.partition)] = _Partition(tp=tp)
            insort(self._in_order, part, key=_partition_order)  # not sorted() per serve: TP's __lt__ is Python
        return part

    def inflight_total(self) -> int:
        return self._inflight

    def _queued(self) -> bool:
        for p in self._in_order:  # a loop, not any() over a generator: on every serve
            if p.queue:
                return True
        return False

    # -- serving ----------------------------------------------------------------------------------

    def kick(self) -> None:
        """Serve the partitions once, at the current time, after the running step."""
        if self._serve_scheduled:
            return
        self._serve_scheduled = True
        self.rk._env.call_later(0, self._serve_now_alive)

    def _serve_now(self, _event: object) -> None:
        self._serve_scheduled = False
        self._serve()

    def _wake_at(self, at: int) -> None:
        if at in self._wakeups:
            return
        self._wakeups.add(at)
        env = self.rk._env
        env.call_later(max(at - env._now, 0), self.rk._alive(lambda _e: self._wakeup(at)))

    def _wakeup(self, at: int) -> None:
        self._wakeups.discard(at)
        self._serve()

    def _may_send(self) -> bool:
        rk = self.rk
        if rk.fatal_error is not None:
            return False
        if not rk.idempotent:
            return True
        if rk.idemp.state is not _ASSIGNED:
            return False
        return rk.transactional_id is None or rk.txn.may_send()

    def _serve(self) -> None:
        """rd_kafka_broker_produce_toppars / rd_kafka_toppar_producer_serve, for every partition."""
        if not self._queued():
            return  # nothing queued: nothing to fail, send, scan or wake for (e.g. the pass after each response)
        rk = self.rk
        now = rk._env._now
        if rk._client is _JAVA and rk.transactional_id is not None and rk.txn.aborting():
            # Sender.maybeSendAndPollTransactionalRequest: while aborting, batches not yet drained (retries
            # included) fail at once (RecordAccumulator.abortUndrainedBatches), so the abort does not wait for them
            self.purge(in_queue=True, in_flight=False, abort_txn=True)
        if now >= self._next_scan and self._queued():  # the purge may have emptied them
            self._next_scan = now + TIMEOUT_SCAN_MS
            self._scan_timeouts(now)
        if self._may_send():
            network = rk._cluster.network
            for part in self._in_order:
                if not (network.disconnected and self._leader_down()):  # no request ever disconnected: no call
                    self._serve_partition(part, now)
        if self._queued():
            self._wake_at(self._next_scan)

    def _scan_timeouts(self, now: int) -> None:
        """rd_kafka_broker_toppar_msgq_scan: queued messages past message.timeout.ms fail with
        _MSG_TIMED_OUT; an idempotent producer then drains and bumps its epoch to close the gap."""
        rk = self.rk
        timed_out = 0
        for part in self._in_order:
            expired = [m for m in part.queue if m.timeout_at is not None and m.timeout_at <= now]
            if not expired:
                continue
            part.queue = [m for m in part.queue if m not in expired]
            timed_out += len(expired)
            for msg in expired:
                rk.dr.deliver(msg, KafkaError._MSG_TIMED_OUT, -1)  # type: ignore[attr-defined]
        if timed_out and rk.idempotent and rk.idemp.pid != NO_PID:
            rk.idemp.drain_epoch_bump(KafkaError._TIMED_OUT, allow_txn_abort=True)  # type: ignore[attr-defined]

    def _serve_partition(self, part: _Partition, now: int) -> None:
        if not part.queue:
            return
        rk = self.rk
        if rk.transactional_id is not None and not part.in_txn:
            return  # not registered with the transaction yet
        max_requests = rk.config.max_in_flight_requests_per_connection - self._inflight
        if rk.idempotent:
            pid = rk.idemp.pid
            if part.pid != pid:
                if part.inflight:
                    return  # rd_kafka_toppar_pid_change: wait for the old epoch's requests
                # new (pid, epoch): sequences restart at 0 from the first queued message
                part.pid = pid
                # an aged producer's first (pid, epoch) goes on where its earlier run left each partition
                start = self.aged[1] if self.aged is not None and self.aged[0] == pid else 0
                part.epoch_base_msgid = part.queue[0].msgid - start
                part.next_ack_seq = part.next_err_seq = start
            if part.wait_drain:
                if part.inflight:
                    return
                part.wait_drain = False
            window = RESEND_IN_FLIGHT[rk._client] if part.queue[0].last_msgid else IDEMP_MAX_INFLIGHT
            max_requests = min(max_requests, window - len(part.inflight))
        # linger: the first message waited linger.ms, or a full batch, or the app is flushing
        first = part.queue[0]
        ready = (rk.dr.flushing > 0 or now >= first.timestamp + math.ceil(rk.config.linger_ms)
                 or len(part.queue) >= rk.config.batch_num_messages)
        network = rk._cluster.network
        while ready and max_requests > 0 and part.queue and not (network.disconnected and self._leader_down()):
            batch = self._make_batch(part, now)
            if batch is None:
                break
            self._send_batch(part, batch)
            max_requests -= 1

    def _make_batch(self, part: _Partition, now: int) -> _Batch | None:
        rk = self.rk
        first = part.queue[0]
        if first.backoff_until > now:
            self._wake_at(first.backoff_until)
            return None
        limit = rk.config.batch_num_messages
        msgs = []
        for msg in part.queue:
            if len(msgs) == limit or (msgs and msg.backoff_until > now):
                break
            msgs.append(msg)
            if first.last_msgid and msg.msgid == first.last_msgid:
                break  # a retry is rebuilt with exactly the same messages (same sequence range)
        first.last_msgid = msgs[-1].msgid
        del part.queue[:len(msgs)]
        first_seq = (first.msgid - part.epoch_base_msgid) % (MAX_SEQUENCE + 1) if rk.idempotent else -1
        return _Batch(part.tp, msgs, part.pid if rk.idempotent else NO_PID, first_seq)  # (tp, msgs, pid, first_seq)

    def _send_batch(self, part: _Partition, batch: _Batch) -> None:
        rk = self.rk
        part.inflight.append(batch)
        self._inflight += 1
        records = tuple([Record(m.key, m.value, m.timestamp) for m in batch.msgs])
        # by make: a class called with keywords packs them into a dict (eosim.models.values)
        record_batch = RecordBatch.make(records=records, producer_id=batch.pid[0], producer_epoch=batch.pid[1],
                                   base_sequence=batch.first_seq, is_transactional=rk.transactional_id is not None)
        request = ProduceRequest.make(transactional_id=rk.transactional_id, acks=rk.config.acks,
                                 batches=((part.tp, record_batch),), api_version=rk.api_version("Produce"))
        # rd_kafka_ProduceRequest: the first message's remaining message.timeout.ms (100 ms if already
        # expired), capped by socket.timeout.ms (rd_kafka_buf_calc_timeout)
        timeout = rk.config.socket_timeout_ms
        first = batch.msgs[0]
        if first.timeout_at is not None:
            remaining = first.timeout_at - rk._env._now
            timeout = min(timeout, remaining if remaining > 0 else 100)
        reply = batch.reply = rk.request(request, timeout, LEADER)
        if rk.config.acks == 0:  # no response expected: delivered once sent
            part.inflight.remove(batch)
            self._inflight -= 1
            for msg in batch.msgs:
                rk.dr.deliver(msg, 0, -1)
            return
        self._replies[reply] = (part, batch)
        reply.callbacks.append(self._on_reply_alive)

    def _leader_down(self) -> bool:
        """The leader connection failed under a request (DISCONNECTED) and the client has not handled that yet:
        librdkafka's broker thread is then DOWN, rd_kafka_broker_fail failed every request queued or waiting on
        it with _TRANSPORT, and nothing more is sent before that is handled; a later batch must not overtake
        the failed ones on a fresh connection. (Its callers first ask whether any request ever failed so.)"""
        for p in self.partitions.values():
            for b in p.inflight:
                # triggered with DISCONNECTED (SimPy's value), not yet processed (callbacks still set)
                if b.reply is not None and b.reply._value is DISCONNECTED and b.reply.callbacks is not None:
                    return True
        return False

    def _context(self) -> Context:
        rk = self.rk
        if rk.transactional_id is not None:
            return Context.PRODUCE_TRANSACTIONAL
        return Context.PRODUCE_IDEMPOTENT if rk.idempotent else Context.PRODUCE

    # -- responses --------------------------------------------------------------------------------

    def _on_produce_reply(self, event: simpy.Event) -> None:
        part, batch = self._replies.pop(event)
        reply = event._value  # fired: SimPy's ``value`` property, without its Python call
        part.inflight.remove(batch)
        self._inflight -= 1
        if batch.purged:
            pass  # purge(in_flight=True) already reported these messages
        elif isinstance(reply, Failure):
            self._produce_failed(part, batch, failure_code(reply))
        else:
            assert isinstance(reply, ProduceResponse)
            response = reply.responses[0]
            if response.error is _NONE:
                self._produce_succeeded(part, batch, response.base_offset)
            else:
                self._produce_failed(part, batch, int(response.error))
        if not part.inflight:
            self.rk.idemp.check_drain_done()
        self._serve()  # as librdkafka's broker thread serves its partitions after handling a response

    def _produce_succeeded(self, part: _Partition, batch: _Batch, base_offset: int) -> None:
        if self.rk.idempotent:
            self._idempotent_success(part, batch)
        deliver = self.rk.dr.deliver
        for i, msg in enumerate(batch.msgs):
            msg.status = _PERSISTED
            deliver(msg, 0, base_offset + i if base_offset >= 0 else -1)

    def _idempotent_success(self, part: _Partition, batch: _Batch) -> None:
        """rd_kafka_handle_idempotent_Produce_success."""
        rk = self.rk
        first_msgid, last_msgid = batch.msgs[0].msgid, batch.msgs[-1].msgid
        next_seq = increment_sequence(batch.first_seq, len(batch.msgs))
        if part.acked_msgid < first_msgid - 1:
            # an earlier request failed with an uncertain status but this later one succeeded, so the
            # earlier messages were persisted too (rd_kafka_dr_implicit_ack)
            acked = [m for m in part.queue if m.msgid <= last_msgid]
            part.queue = [m for m in part.queue if m.msgid > last_msgid]
            for msg in acked:
                msg.status = MsgStatus.PERSISTED
                rk.dr.deliver(msg, 0, -1)
        elif batch.first_seq != part.next_ack_seq and batch.first_seq == part.next_err_seq:
            rk.set_fatal(KafkaError._INCONSISTENT,  # type: ignore[attr-defined]
                         f"ProduceRequest for {part.tp} succeeded when expecting failure")
            part.next_err_seq = next_seq
            part.acked_msgid = max(part.acked_msgid, last_msgid)
            return
        if part.next_err_seq == part.next_ack_seq:
            part.next_err_seq = next_seq
        part.next_ack_seq = next_seq
        part.acked_msgid = max(part.acked_msgid, last_msgid)

    def _produce_failed(self, part: _Partition, batch: _Batch, error: int) -> None:
        rk = self.rk
        outcome = produce_outcome(error, self._context(), pid_matches=batch.pid == part.pid or not rk.idempotent,
                                  first_seq=batch.first_seq, next_ack_seq=part.next_ack_seq,
                                  next_err_seq=part.next_err_seq, first_retries=batch.msgs[0].retries,
                                  client=rk._client)
        next_seq = increment_sequence(batch.first_seq, len(batch.msgs)) if rk.idempotent else 0
        if rk.idempotent:
            if outcome.update_next_ack:
                part.next_ack_seq = next_seq
            if outcome.update_next_err:
                part.next_err_seq = next_seq
        if outcome.fatal:
            rk.set_fatal(outcome.fatal, f"ProduceRequest for {part.tp} failed: {KafkaError(error).name()}")
        if outcome.bump:
            rk.idemp.drain_epoch_bump(error, allow_txn_abort=True)
        if outcome.abortable:
            rk.txn.set_abortable(error, f"ProduceRequest for {part.tp} failed: {KafkaError(error).name()}")
        if outcome.verdict == "deliver":
            if rk.idempotent:
                self._idempotent_success(part, batch)
            for msg in batch.msgs:
                msg.status = MsgStatus.PERSISTED
                rk.dr.deliver(msg, 0, -1)
            return
        if outcome.verdict == "retry":
            if outcome.drain_toppar:
                part.wait_drain = True
            self._retry(part, batch, outcome)
            return
        dr_error = KafkaError._MSG_TIMED_OUT if error == KafkaError._TIMED_OUT else outcome.error  # type: ignore[attr-defined]
        for msg in batch.msgs:
            msg.status = outcome.status
            rk.dr.deliver(msg, dr_error, -1)

    def _retry(self, part: _Partition, batch: _Batch, outcome: ProduceOutcome) -> None:
        """rd_kafka_toppar_retry_msgq: back on the queue in msgid order with an exponential backoff."""
        rk = self.rk
        now = rk._env._now
        jitter = rk._jitter.randint(100 - RETRY_JITTER_PERCENT, 100 + RETRY_JITTER_PERCENT)
        retryable = []
        for msg in batch.msgs:
            if msg.retries + outcome.incr_retry > rk.config.retries:
                # out of retries: a request timeout surfaces as _MSG_TIMED_OUT
                msg.status = outcome.status
                rk.dr.deliver(msg, KafkaError._MSG_TIMED_OUT if outcome.error == KafkaError._TIMED_OUT  # type: ignore[attr-defined]
                              else outcome.error, -1)
                continue
            msg.retries += outcome.incr_retry
            msg.backoff_until = now + retry_backoff_ms(msg.retries, rk.config.retry_backoff_ms,
                                                       rk.config.retry_backoff_max_ms, jitter)
            # never downgrade a possibly-persisted message to not-persisted
            if not (outcome.status is MsgStatus.NOT_PERSISTED and msg.status is not MsgStatus.NOT_PERSISTED):
                msg.status = outcome.status
            retryable.append(msg)
        part.queue = sorted(part.queue + retryable, key=lambda m: m.msgid)
        if retryable:
            self._wake_at(retryable[0].backoff_until)

    # -- purge ------------------------------------------------------------------------------------

    def purge(self, *, in_queue: bool, in_flight: bool, abort_txn: bool) -> None:
        """rd_kafka_purge: queued messages fail with _PURGE_QUEUE, in-flight ones with _PURGE_INFLIGHT
        (their responses are then ignored). An aborted transaction's purge moves the epoch base msgid
        past the purged messages so the sequence has no gap (rd_kafka_toppar_purge_queues)."""
        for part in self._in_order:
            if in_flight:
                for batch in part.inflight:
                    if not batch.purged:
                        batch.purged = True
                        self._batch_purged(part, batch)
            if in_queue and part.queue:
                purged, part.queue = part.queue, []
                if abort_txn:
                    part.epoch_base_msgid += len(purged)
                for msg in purged:
                    self.rk.dr.deliver(msg, KafkaError._PURGE_QUEUE, -1)  # type: ignore[attr-defined]

    def _batch_purged(self, part: _Partition, batch: _Batch) -> None:
        rk = self.rk
        outcome = produce_outcome(KafkaError._PURGE_INFLIGHT, self._context(), pid_matches=True,  # type: ignore[attr-defined]
                                  first_seq=batch.first_seq, next_ack_seq=part.next_ack_seq,
                                  next_err_seq=part.next_err_seq, first_retries=batch.msgs[0].retries,
                                  client=rk._client)
        if outcome.bump:
            rk.idemp.drain_epoch_bump(outcome.error, allow_txn_abort=True)
        if outcome.abortable:
            rk.txn.set_abortable(outcome.error, f"ProduceRequest for {part.tp} purged in flight")
        for msg in batch.msgs:
            msg.status = outcome.status
            rk.dr.deliver(msg, outcome.error, -1)


__all__ = ["IDEMP_MAX_INFLIGHT", "LOCAL_PRODUCE_ERRORS", "ProduceOutcome", "Sender", "partition_for_key",
           "produce_outcome", "retry_backoff_ms"]
