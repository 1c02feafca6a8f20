"""eosim._interpret
=============

Runs a scenario's steps against confluent-kafka-shaped clients, for any backend. The interpreter is a
generator: it yields a ``Block`` for every call that blocks (``init_transactions``, ``flush``,
``consume``, ``sleep`` ...), and the backend performs it. The simulator performs a ``Block`` by
yielding the SimPy event the simulated client returns; the real-Kafka driver calls the real client
and sends the result back. Either way the same code decides what each step does and records what it
returned, so the two backends produce observations that can be compared field by field.

What is recorded:
- per step, ``ok`` or the error name, and the values it returned (a produce's delivery report,
  consumed records, offsets);
- a history in the shape of Jepsen's Kafka workload (docs/design.md), for the checkers, through the
  one recorder of histories (eosim._history), which the public API's clients use too.
"""

from __future__ import annotations

from types import GeneratorType
from typing import Any, Callable, Generator, Protocol

from attrs import define, field

from eosim import _scenario as sc
from eosim._history import History, Send, text
from eosim._observation import PENDING, StepColumns
from eosim.models.values import frozen

OFFSET_BEGINNING, OFFSET_END, OFFSET_STORED = -2, -1, -1000  # confluent_kafka.OFFSET_*
ASSIGN_OFFSETS = {"beginning": OFFSET_BEGINNING, "end": OFFSET_END, "stored": OFFSET_STORED}
ERROR_UNKNOWN = PENDING  # a nowait step that had not completed when the scenario ended


@frozen
class Block:
    """A blocking client call for the backend to perform; ``call()`` starts it."""

    call: Callable[[], Any]
    nowait: bool = False
    on_done: Callable[[Any, BaseException | None], None] | None = None


class Backend(Protocol):
    """What the interpreter needs from a backend: clients, time, the client library's types, and the
    nemesis ops (docs/faults.md)."""

    def now(self) -> int: ...
    def new_client(self, actor: str, spec: sc.Actor) -> Any: ...
    def crash(self, actor: str, client: Any) -> None: ...
    def sleep(self, ms: int) -> Any: ...
    def topic_partition(self, topic: str, partition: int, offset: int = -1001) -> Any: ...
    def error_name(self, exc: BaseException) -> str | None: ...
    # Stop the world for the actor for ms (SIGSTOP, then SIGCONT ms later); returns at once.
    def pause(self, actor: str, ms: int) -> None: ...
    # When a paused actor wakes (in now()'s ms), or None: the interpreter holds its next step till then.
    def paused_until(self, actor: str) -> int | None: ...
    # Step ``index`` was performed: arm the [[faults]] of that step, start or stop [nemesis].
    def after_step(self, index: int) -> None: ...
    # The network nemesis ops (simulator only).
    def partition(self, nodes: tuple[str, ...]) -> None: ...
    def clog(self, nodes: tuple[str, ...], ms: int) -> None: ...
    def disconnect(self, nodes: tuple[str, ...]) -> None: ...
    def heal(self) -> None: ...
    # The broker nemesis ops (simulator only).
    def crash_broker(self, broker: str) -> None: ...
    def restart_broker(self, broker: str, load_ms: int) -> None: ...
    def coordinator_failover(self, down_ms: int, load_ms: int) -> None: ...


@define(eq=False)
class Interpreter:
    scenario: sc.Scenario
    backend: Backend
    clients: dict[str, Any] = field(factory=dict)
    steps: StepColumns = field(init=False)  # what each step returned: the observation's steps
    recorder: History = field(init=False)
    _incarnations: dict[str, int] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.steps = StepColumns(self.scenario.steps)
        self.recorder = History(clock=self.backend.now)

    # -- history ----------------------------------------------------------------------------------

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.recorder.ops

    def _process(self, actor: str) -> str:
        """The actor's Jepsen process: a restarted actor is a new client, so a new process (its reads
        start afresh)."""
        n = self._incarnations.get(actor, 1)
        return actor if n == 1 else f"{actor}#{n}"

    # -- running ----------------------------------------------------------------------------------

    def run(self) -> Generator[Block, Any, None]:
        for name, spec in self.scenario.actors.items():
            self.clients[name] = self.backend.new_client(name, spec)
        # Only a scenario with faults asks the backend about them (docs/faults.md).
        faults = bool(self.scenario.faults or self.scenario.nemesis
                      or sc.NEMESIS in [step.actor for step in self.scenario.steps])
        for step in self.scenario.steps:
            index = self.steps.start()
            wake = self.backend.paused_until(step.actor) if faults else None
            if wake is not None and wake > self.backend.now():  # a paused application makes no calls
                yield Block(lambda: self.backend.sleep(wake - self.backend.now()))
            yield from self._step(step, index)
            if faults:
                self.backend.after_step(index)
        self.recorder.close_open()  # a transaction never committed: its outcome is unknown

    def _step(self, step: sc.Step, index: int) -> Generator[Block, Any, None]:
        try:
            result = _STEP_HANDLERS[step.op](self, step, index)  # plain for calls that return at once, a generator for blocking ones
            if isinstance(result, GeneratorType):  # inspect.isgenerator, without its Python call
                result = yield from result
        except Exception as exc:  # noqa: BLE001 - a client error is an outcome, not a crash
            name = self.backend.error_name(exc)
            if name is None:
                raise
            self.steps.finish(index, name)
            self._after_error(step, exc)
        else:
            if result is not _PENDING:
                self.steps.finish(index, "ok")

    def _block(self, step: sc.Step, index: int, call: Callable[[], Any],
               on_result: Callable[[Any], None] | None = None) -> Generator[Block, Any, Any]:
        """Perform a blocking call; with ``nowait`` the outcome is filled in when it completes."""
        if not step.nowait:
            result = yield Block(call)
            if on_result is not None:
                on_result(result)
            return result

        def done(result: Any, exc: BaseException | None) -> None:
            if exc is None:
                self.steps.finish(index, "ok")
                if on_result is not None:
                    on_result(result)
            else:
                self.steps.finish(index, self.backend.error_name(exc) or type(exc).__name__)

        yield Block(call, nowait=True, on_done=done)
        return _PENDING

    def _after_error(self, step: sc.Step, exc: BaseException) -> None:
        if step.op == "commit_transaction":
            self.recorder.commit_failed(self._process(step.actor), _requires_abort(exc))

    # -- producer ops -----------------------------------------------------------------------------

    def _timeout(self, step: Any) -> float:
        return -1 if step.timeout_ms is None else step.timeout_ms / 1000

    def _do_init_transactions(self, step: sc.InitTransactions, index: int):
        return self._block(step, index, lambda: self.clients[step.actor].init_transactions(
            self._timeout(step)))

    def _do_begin_transaction(self, step: sc.BeginTransaction, index: int):
        self.clients[step.actor].begin_transaction()
        self.recorder.begin(self._process(step.actor))

    def _do_produce(self, step: sc.Produce, index: int):
        send: Send = self.recorder.send(self._process(step.actor), step.value)

        def delivered(err: Any, msg: Any) -> None:
            if err is None:
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                self.steps.delivered(index, topic, partition, offset)
                send.delivered(topic, partition, offset)
            else:
                self.steps.put(index, "delivery_error", {"name": err.name(), "fatal": err.fatal(),
                                                   "retriable": err.retriable(),
                                                   "abortable": err.txn_requires_abort()})
                send.failed()

        kwargs: dict[str, Any] = {"value": step.value, "key": step.key, "on_delivery": delivered}
        if step.partition is not None:
            kwargs["partition"] = step.partition
        self.clients[step.actor].produce(step.topic, **kwargs)

    def _do_flush(self, step: sc.Flush, index: int):
        def remaining(n: int) -> None:
            self.steps.put(index, "remaining", n)

        return self._block(step, index, lambda: self.clients[step.actor].flush(self._timeout(step)), remaining)

    def _do_poll(self, step: sc.Poll, index: int):
        return self._block(step, index, lambda: self.clients[step.actor].poll(step.timeout_ms / 1000))

    def _do_send_offsets_to_transaction(self, step: sc.SendOffsetsToTransaction, index: int):
        consumer = self.clients[step.consumer]
        if step.offsets is None:
            positions = consumer.position(consumer.assignment())
        else:
            positions = [self.backend.topic_partition(o.topic, o.partition, o.offset) for o in step.offsets]
        self.steps.put(index, "offsets", sorted([tp.topic, tp.partition, tp.offset] for tp in positions))
        metadata = consumer.consumer_group_metadata()
        return self._block(step, index, lambda: self.clients[step.actor].send_offsets_to_transaction(
            positions, metadata, self._timeout(step)))

    def _do_commit_transaction(self, step: sc.CommitTransaction, index: int):
        result = yield from self._block(step, index, lambda: self.clients[step.actor].commit_transaction(
            self._timeout(step)))
        self.recorder.end(self._process(step.actor), "ok")
        return result

    def _do_abort_transaction(self, step: sc.AbortTransaction, index: int):
        result = yield from self._block(step, index, lambda: self.clients[step.actor].abort_transaction(
            self._timeout(step)))
        self.recorder.end(self._process(step.actor), "fail")
        return result

    # -- consumer ops -----------------------------------------------------------------------------

    def _do_assign(self, step: sc.Assign, index: int):
        partitions = [self.backend.topic_partition(p.topic, p.partition,
                                                   ASSIGN_OFFSETS.get(p.offset, p.offset) if p.offset is not None
                                                   else OFFSET_STORED)
                      for p in step.partitions]
        self.clients[step.actor].assign(partitions)
        self.recorder.assigned(self._process(step.actor), "assign", [f"{p.topic}-{p.partition}" for p in step.partitions])

    def _do_subscribe(self, step: sc.Subscribe, index: int):
        self.clients[step.actor].subscribe(list(step.topics))
        self.recorder.assigned(self._process(step.actor), "subscribe", list(step.topics))

    def _do_consume(self, step: sc.Consume, index: int):
        consumer = self.clients[step.actor]
        records: list[list[Any]] = []
        self.steps.put(index, "records", records)
        self.recorder.poll_invoke(self._process(step.actor))
        # The step reads for its whole time budget: right after an assign, librdkafka spends its first
        # second or so looking up offsets (rdkafka_partition.c), so an empty call proves nothing.
        deadline = self.backend.now() + step.timeout_ms
        while step.max_records is None or len(records) < step.max_records:
            remaining = deadline - self.backend.now()
            if remaining <= 0:
                break
            want = 500 if step.max_records is None else min(step.max_records - len(records), 500)
            batch = yield Block(lambda: consumer.consume(want, remaining / 1000))
            records.extend([m.topic(), m.partition(), m.offset(), text(m.key()), text(m.value())]
                           for m in batch if m.error() is None)
        # Kafka orders records within a partition only: record them in (topic, partition, offset) order.
        records.sort(key=lambda r: (r[0], r[1], r[2]))
        self.recorder.poll_ok(self._process(step.actor), [(t, p, o, v) for t, p, o, _k, v in records])
        return records

    def _do_commit(self, step: sc.Commit, index: int):
        consumer = self.clients[step.actor]
        kwargs: dict[str, Any] = {"asynchronous": step.asynchronous}
        if step.offsets is not None:
            kwargs["offsets"] = [self.backend.topic_partition(o.topic, o.partition, o.offset) for o in step.offsets]
        if step.asynchronous:
            return consumer.commit(**kwargs)

        def committed(result: Any) -> None:
            self.steps.put(index, "offsets", _offsets(result))

        return self._block(step, index, lambda: consumer.commit(**kwargs), committed)

    def _partitions(self, step: Any) -> list[Any]:
        consumer = self.clients[step.actor]
        if step.partitions is None:
            return consumer.assignment()
        return [self.backend.topic_partition(p.topic, p.partition) for p in step.partitions]

    def _do_position(self, step: sc.Position, index: int):
        self.steps.put(index, "offsets", _offsets(self.clients[step.actor].position(self._partitions(step))))

    def _do_committed(self, step: sc.Committed, index: int):
        partitions = self._partitions(step)

        def committed(result: Any) -> None:
            self.steps.put(index, "offsets", _offsets(result))

        return self._block(step, index, lambda: self.clients[step.actor].committed(
            partitions, self._timeout(step)), committed)

    # -- any actor --------------------------------------------------------------------------------

    def _do_close(self, step: sc.Close, index: int):
        client = self.clients[step.actor]
        if self.scenario.actors[step.actor].kind == "consumer":
            return self._block(step, index, client.close)
        return self._block(step, index, lambda: client.flush(-1))

    def _do_crash(self, step: sc.Crash, index: int):
        self.backend.crash(step.actor, self.clients[step.actor])
        self.recorder.crash(self._process(step.actor))

    def _do_restart(self, step: sc.Restart, index: int):
        self._incarnations[step.actor] = self._incarnations.get(step.actor, 1) + 1
        self.clients[step.actor] = self.backend.new_client(step.actor, self.scenario.actors[step.actor])

    def _do_sleep(self, step: sc.Sleep, index: int):
        return self._block(step, index, lambda: self.backend.sleep(step.ms))

    # -- the nemesis --------------------------------------------------------------------------------
    # Jepsen records nemesis ops as info ops of the :nemesis process; the checkers skip them.

    def _nemesis(self, step: sc.Step, **value: Any) -> None:
        self.recorder.nemesis(step.op, value)

    def _do_partition(self, step: sc.Partition, index: int):
        self.backend.partition(step.nodes)
        self._nemesis(step, nodes=list(step.nodes))

    def _do_clog(self, step: sc.Clog, index: int):
        self.backend.clog(step.nodes, step.ms)
        self._nemesis(step, nodes=list(step.nodes), ms=step.ms)

    def _do_disconnect(self, step: sc.Disconnect, index: int):
        self.backend.disconnect(step.nodes)
        self._nemesis(step, nodes=list(step.nodes))

    def _do_heal(self, step: sc.Heal, index: int):
        self.backend.heal()
        self._nemesis(step)

    def _do_pause(self, step: sc.Pause, index: int):
        for actor in step.nodes:
            self.backend.pause(actor, step.ms)
        self._nemesis(step, nodes=list(step.nodes), ms=step.ms)

    def _do_crash_broker(self, step: sc.CrashBroker, index: int):
        self.backend.crash_broker(step.broker)
        self._nemesis(step)

    def _do_restart_broker(self, step: sc.RestartBroker, index: int):
        self.backend.restart_broker(step.broker, step.load_ms)
        self._nemesis(step, load_ms=step.load_ms)

    def _do_coordinator_failover(self, step: sc.CoordinatorFailover, index: int):
        self.backend.coordinator_failover(step.down_ms, step.load_ms)
        self._nemesis(step, down_ms=step.down_ms, load_ms=step.load_ms)


_PENDING = object()  # a nowait step's result: its outcome arrives later
# op -> Interpreter._do_<op>: looked up once, not a name built and an attribute looked up per step
_STEP_HANDLERS: dict[str, Callable[..., Any]] = {name[len("_do_"):]: fn for name, fn in vars(Interpreter).items()
                                                 if name.startswith("_do_")}


def _offsets(partitions: Any) -> list[list[Any]]:
    return sorted([tp.topic, tp.partition, tp.offset] for tp in partitions or [])


def _requires_abort(exc: BaseException) -> bool:
    err = exc.args[0] if exc.args else None
    return bool(getattr(err, "txn_requires_abort", lambda: False)())
