"""eosim._client.producer
===================

``Producer``: confluent-kafka's producer over librdkafka. Like librdkafka's sources, it is split by concern:

* ``eosim._client.sender``: partition queues, batches, in-flight requests and retries (``rdkafka_broker.c``
  ``rd_kafka_toppar_producer_serve``, ``rdkafka_request.c`` ``rd_kafka_handle_Produce_error``);
* ``eosim._client.idempotence``: the PID state machine as a table (``rdkafka_idempotence.c``);
* ``eosim._client.txnmgr``: the transaction manager (``rdkafka_txnmgr.c``);
* ``eosim._client.delivery``: the delivery-report queue (``rd_kafka_dr_msgq``);
* ``eosim._client.reaction``: fatal or fenced, else abortable, applied by ``Producer.fail``.

This module is the handle (``rd_kafka_t``): the public API, the fatal error (``rk_fatal``), requests and the
trace. docs/client.md lists every rule modelled and what is left out.

Blocking API calls return SimPy processes: ``yield producer.commit_transaction()``; an error is raised
as ``KafkaException`` inside the yielding process. Delivery callbacks only run inside ``poll``,
``flush`` and ``commit_transaction``/``abort_transaction`` (which flush), as in confluent-kafka.
Timeouts are seconds (float, -1 = infinite) truncated to ms as confluent-kafka's ``cfl_timeout_ms``.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Iterable

import simpy

from eosim.models.protocol import ProduceRequest
from eosim._client.config import Client, ProducerConfig
from eosim._client.delivery import DeliveryReports
from eosim._client.errors import API_VERSIONS, JAVA_TV2_VERSIONS, KafkaError, KafkaException, Reaction, normalize
from eosim._client.handle import Handle
from eosim._client.idempotence import Idempotence
from eosim._client.metadata import Metadata
from eosim._client.message import ConsumerGroupMetadata, Message, TopicPartition
from eosim._client.reaction import Consequence, consequence
from eosim._client.sender import RETRY_JITTER_PERCENT, Sender, retry_backoff_ms
from eosim._client.txnmgr import TransactionManager, TxnState


_JAVA = Client.JAVA  # a module constant: an enum member read through its class is a Python call on 3.11


def _timeout_ms(timeout: float) -> int | None:
    """cfl_timeout_ms (confluent_kafka.h): seconds to int ms by truncation; negative = infinite (None)."""
    return None if timeout < 0 else int(timeout * 1000)


class Producer(Handle):
    """confluent_kafka.Producer on the simulated cluster."""

    def __init__(self, config: dict[str, Any], *, cluster: Any, name: str) -> None:
        self.config: ProducerConfig = self._open("producer", config, cluster, name)
        self.idempotent = self.config.enable_idempotence
        self._api_versions = API_VERSIONS[self._client]  # looked up once: an Enum key hashes in Python
        self.transactional_id = self.config.transactional_id
        self.fatal_error: KafkaError | None = None  # rk_fatal
        self.sender = Sender(self, self._world.rng(f"{name}/partitioner"))
        self.dr = DeliveryReports(self, self._env.event())
        self.idemp = Idempotence(self)
        self.txn = TransactionManager(self)
        self.metadata = Metadata(self)
        if self.idempotent and self.transactional_id is None:
            # rd_kafka_idemp_init: a plain idempotent producer asks for a PID right away (500 ms timer)
            self.idemp.start(immediate=False)

    # == public API =================================================================================

    def produce(self, topic: str, value: str | None = None, key: str | None = None, partition: int = -1,
                on_delivery: Callable[[KafkaError | None, Message], Any] | None = None,
                callback: Callable[[KafkaError | None, Message], Any] | None = None) -> None:
        self._check_open()
        args = {"topic": topic, "key": key, "value": value, "partition": partition}
        try:
            self._produce(topic, value, key, partition, on_delivery or callback)
        except KafkaException as exc:
            self._op("produce", args, error=exc.args[0])
            raise
        self._emit_op(self.name, op="produce", args=args, result=None)  # _op without an error, without its call

    def poll(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("poll", self._call("poll", {"timeout": timeout}, self.dr.poll(_timeout_ms(timeout))))

    def flush(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("flush", self._call("flush", {"timeout": timeout},
                                                  self.dr.flush_api(_timeout_ms(timeout))))

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        self._check_open()
        self.sender.purge(in_queue=in_queue, in_flight=in_flight, abort_txn=False)
        self._op("purge", {"in_queue": in_queue, "in_flight": in_flight}, result=None)

    def __len__(self) -> int:
        return 0 if self._crashed else self.dr.outstanding  # Producer__len__: 0 without a handle

    def init_transactions(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("init_transactions", self._call("init_transactions", {"timeout": timeout},
                                                              self.txn.init_transactions(_timeout_ms(timeout))))

    def begin_transaction(self) -> None:
        self._check_open()
        error = self.txn.begin_transaction()
        self._op("begin_transaction", {}, error=error, result=None)
        if error is not None:
            raise KafkaException(error)

    def send_offsets_to_transaction(self, positions: Iterable[TopicPartition], group_metadata: ConsumerGroupMetadata,
                                    timeout: float = -1) -> simpy.Process:
        self._check_open()
        positions = list(positions)
        args = {"offsets": [[str(p.model()), p.offset] for p in positions],
                "group_id": group_metadata.group_id if group_metadata else None, "timeout": timeout}
        return self._blocking("send_offsets_to_transaction", self._call("send_offsets_to_transaction", args,
                                                                        self.txn.send_offsets(positions, group_metadata,
                                                                                              _timeout_ms(timeout))))

    def commit_transaction(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("commit_transaction", self._call("commit_transaction", {"timeout": timeout},
                                                               self.txn.commit_transaction(_timeout_ms(timeout))))

    def abort_transaction(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("abort_transaction", self._call("abort_transaction", {"timeout": timeout},
                                                              self.txn.abort_transaction(_timeout_ms(timeout))))

    def crash(self) -> None:
        """The process is killed (eosim._client.handle): nothing more is sent or called back; no flush,
        no EndTxn. The broker finds out through the transaction timeout."""
        if self._crashed:
            return
        self._crashed = True
        self._op("crash", {}, result=None)

    def _check_open(self) -> None:
        if self._crashed:
            raise RuntimeError("Producer has been closed")  # ERR_MSG_PRODUCER_CLOSED (confluent_kafka.h)
        if self._calls:
            self._check_yielded()

    # == trace ======================================================================================

    def _op(self, op: str, args: dict[str, Any], *, result: Any = None, error: KafkaError | None = None) -> None:
        if error is not None:
            extra = {} if result is None else {"result": result}  # a failed delivery keeps its status
            self._trace.emit(self.name, "client.op", op=op, args=args, error=error.name(), fatal=error.fatal(),
                             retriable=error.retriable(), txn_requires_abort=error.txn_requires_abort(), **extra)
        else:
            self._emit_op(self.name, op=op, args=args, result=result)

    def _call(self, op: str, args: dict[str, Any], body: Generator) -> Generator:
        """Run a blocking API body, trace its outcome, re-raise its KafkaException."""
        try:
            result = yield from body
        except KafkaException as exc:
            self._op(op, args, error=exc.args[0])
            raise
        self._emit_op(self.name, op=op, args=args, result=result)  # _op without an error, without its call
        return result

    # == produce ====================================================================================

    def _produce(self, topic: str, value: str | None, key: str | None, partition: int, callback: Any) -> None:
        # rd_kafka_check_produce: a fatal error, then the transactional state
        if self.fatal_error is not None:
            raise KafkaException(KafkaError(KafkaError._FATAL))  # type: ignore[attr-defined]
        if self.transactional_id is not None and self.txn.state is not TxnState.IN_TRANSACTION:
            raise KafkaException(KafkaError(KafkaError._STATE))  # type: ignore[attr-defined]
        self.sender.enqueue(topic, value, key, partition, callback)

    # == requests ===================================================================================

    def request(self, payload: Any, timeout_ms: int, connection: str) -> simpy.Event:
        """Send on one of the handle's connections (eosim._client.handle: the leader's or a coordinator's)."""
        replicated = self._cluster.replicated
        if replicated and isinstance(payload, ProduceRequest) and payload.batches[0][0].topic in replicated:
            return self.metadata.produce(payload, timeout_ms)  # to the partition's leader
        if self._coordinators is not None:
            return self._to_broker(payload, timeout_ms, connection)
        return self._cluster.network.request(self.name + connection, self._broker, payload, timeout_ms)

    def api_version(self, api: str) -> int:
        """The version this client sends: the Java client caps Produce at v11 for a transactional producer
        while TV2 is off (Sender.sendProduceRequest: useTransactionV1Version), a non-transactional one sends
        the latest."""
        if self._client is _JAVA and (self.txn.tv2 or (api == "Produce" and self.transactional_id is None)):
            return JAVA_TV2_VERSIONS[api]
        return self._api_versions[api]

    def backoff(self, retries: int) -> int:
        jitter = self._jitter.randint(100 - RETRY_JITTER_PERCENT, 100 + RETRY_JITTER_PERCENT)
        return retry_backoff_ms(retries, self.config.retry_backoff_ms, self.config.retry_backoff_max_ms, jitter)

    # == errors =====================================================================================

    def set_fatal(self, code: int, reason: str) -> None:
        """rd_kafka_set_fatal_error0 (+ rd_kafka_txn_set_fatal_error): the first fatal error wins."""
        if self.fatal_error is None:
            self.fatal_error = KafkaError(code, reason, fatal=True)
            self.dr.fatal_event()
        if self.transactional_id is not None:
            self.txn.on_fatal(code, reason)
        self.idemp.set_fatal()

    def fail(self, code: int, reaction: Reaction, reason: str, *, drain: bool = False) -> KafkaError:
        """The one reaction to a request that failed for good (eosim._client.reaction): fatal or fenced
        (the code normalised: _FENCED, or Java's PRODUCER_FENCED), else the transaction becomes abortable,
        needing an epoch bump for ABORTABLE_BUMP, reached by draining first when ``drain``
        (rd_kafka_idemp_drain_epoch_bump). Returns the error the API call in progress raises."""
        code = normalize(code, self._client)
        match consequence(reaction):
            case Consequence.FATAL:
                self.set_fatal(code, reason)
                return KafkaError(code, reason, fatal=True)
            case Consequence.ABORTABLE_BUMP if drain:
                self.idemp.drain_epoch_bump(code, allow_txn_abort=True)
            case other:
                self.txn.set_abortable(code, reason, requires_bump=other is Consequence.ABORTABLE_BUMP)
        return KafkaError(code, reason, txn_requires_abort=True)


__all__ = ["Producer"]
