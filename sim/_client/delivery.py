"""eosim._client.delivery
===================

The producer's main queue of delivery reports (librdkafka's ``rk_rep`` with ``rd_kafka_dr_msgq``): reports
are queued where a message's fate is decided and served, callbacks included, only inside ``poll``,
``flush`` and the transactional calls that flush, as in confluent-kafka. The fatal-error event
(``rd_kafka_set_fatal_error0`` queues it once) sits in the same queue.
"""

from __future__ import annotations

import enum
from heapq import heappush
from typing import TYPE_CHECKING, Any, Callable, Generator

import simpy
from simpy.core import NORMAL
from simpy.events import PENDING
from attrs import define, field

from eosim._client.errors import KafkaError, KafkaException
from eosim._client.handle import first_of
from eosim._client.message import TIMESTAMP_CREATE_TIME, Message
from eosim.models.records import TopicPartition as TP

if TYPE_CHECKING:
    from eosim._client.producer import Producer


class MsgStatus(enum.Enum):
    """rd_kafka_msg_status_t: what a delivery report can say about persistence."""

    NOT_PERSISTED = 0
    POSSIBLY_PERSISTED = 1
    PERSISTED = 2


@define(eq=False)
class Msg:
    """A produced message (rd_kafka_msg_t) until its delivery report is served."""

    tp: TP
    msgid: int
    key: str | None
    value: str | None
    timestamp: int
    timeout_at: int | None
    callback: Callable[[KafkaError | None, Message], Any] | None
    retries: int = 0
    status: MsgStatus = MsgStatus.NOT_PERSISTED
    backoff_until: int = 0
    last_msgid: int = 0  # set on a batch's first message once sent: a retry rebuilds the same batch


@define(eq=False)
class DeliveryReports:
    """The main queue: (message, error, offset) reports and the one fatal-error event (None)."""

    rk: Producer
    event: simpy.Event
    outstanding: int = 0  # rd_kafka_outq_len: produced, delivery report not yet served
    flushing: int = 0  # flush calls in progress: the sender bypasses linger.ms meanwhile
    _queue: list[tuple[Msg, int, int] | None] = field(factory=list)

    def deliver(self, msg: Msg, error: int, offset: int) -> None:
        """Queue a delivery report (rd_kafka_dr_msgq); callbacks run in poll()/flush()."""
        if error and self.rk.transactional_id is not None:
            self.rk.txn.dr_fails += 1
        self._queue.append((msg, error, offset))
        self._signal()

    def fatal_event(self) -> None:
        """rd_kafka_set_fatal_error0: the fatal-error event, queued once."""
        self._queue.append(None)
        self._signal()

    def _signal(self) -> None:
        event = self.event
        if event._value is PENDING:  # not triggered (SimPy's ``triggered`` property is a Python call)
            # event.succeed(), inlined (SimPy's succeed and schedule: two Python calls per report)
            env = event.env
            event._ok, event._value = True, None
            heappush(env._queue, (env._now, NORMAL, next(env._eid), event))

    def serve(self) -> int:
        """Serve the main queue in order. The fatal-error event (None) is raised as a KafkaException by
        confluent-kafka's error_cb instead of reaching the user's error_cb, and serving stops there: the
        reports behind it wait for a later poll (confluent_kafka.c error_cb, CallState crash)."""
        rk = self.rk
        served = 0
        while self._queue:
            entry = self._queue.pop(0)
            if entry is None:
                raise KafkaException(rk.fatal_error)
            msg, error, offset = entry
            self.outstanding -= 1
            served += 1
            err = KafkaError(error) if error else None
            tp = msg.tp
            offset = offset if offset >= 0 else -1001
            message = Message(tp.topic, tp.partition, offset, msg.key, msg.value, err,
                              (TIMESTAMP_CREATE_TIME, msg.timestamp))
            args = {"topic": tp.topic, "key": msg.key, "value": msg.value}
            result = {"partition": tp.partition, "offset": offset, "status": msg.status._name_}  # not Enum's name property: a Python call
            if err is None:
                rk._emit_op(rk.name, op="delivery", args=args, result=result)  # _op without an error, without its call
            else:
                rk._op("delivery", args, error=err, result=result)
            if msg.callback is not None:
                msg.callback(err, message)
        return served

    def _wait(self) -> simpy.Event:
        if self.event._value is not PENDING:  # triggered (SimPy's property is a Python call)
            self.event = self.rk._env.event()
        return self.event

    def poll(self, timeout_ms: int | None) -> Generator:
        env = self.rk._env
        served = self.serve()
        deadline = None if timeout_ms is None else env.now + timeout_ms
        while not served and (deadline is None or env.now < deadline):
            waits = [self._wait()]
            if deadline is not None:
                waits.append(env.timeout(deadline - env.now))
            yield first_of(env, waits)
            served = self.serve()
        return served

    def flush(self, timeout_ms: int | None) -> Generator:
        """rd_kafka_flush: linger is bypassed; serve delivery reports until nothing is outstanding.
        Returns True when everything was delivered in time."""
        env = self.rk._env
        self.flushing += 1
        self.rk.sender.kick()
        deadline = None if timeout_ms is None else env.now + timeout_ms
        try:
            while True:
                self.serve()
                if self.outstanding == 0:
                    return True
                if deadline is not None and env.now >= deadline:
                    return False
                # one event is waited for itself (first_of's rule, without its list and call: once per report)
                yield self._wait() if deadline is None else env.any_of([self._wait(), env.timeout(deadline - env.now)])
        finally:
            self.flushing -= 1

    def flush_api(self, timeout_ms: int | None) -> Generator:
        """Producer.flush(). Unlike poll, it does not stop at the fatal-error event: it serves the
        reports queued behind it (a fenced produce's INVALID_PRODUCER_EPOCH) until nothing is
        outstanding or the timeout, then raises the fatal error (measured with confluent-kafka 2.16.1 on
        Kafka 4.1.2: the fenced record's report arrives in the flush that raises _FENCED)."""
        env = self.rk._env
        deadline = None if timeout_ms is None else env.now + timeout_ms
        try:
            yield from self.flush(timeout_ms)
        except KafkaException:
            yield from self.flush(None if deadline is None else max(deadline - env.now, 0))
            raise
        return self.outstanding


__all__ = ["DeliveryReports", "Msg", "MsgStatus"]
