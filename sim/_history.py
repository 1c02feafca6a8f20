"""eosim._history
==============

The Jepsen history of a run: what the clients were asked to do and what came back, in the shape of
Jepsen's Kafka workload (docs/design.md), for the checkers (eosim._checkers.jepsen). One recorder, two
users: the scenario interpreter (eosim._interpret, on either backend) and the clients an application
creates through the public API (eosim._simulation), so a user's own loop is checked like a scenario.

Ops are dicts ``{index, time, process, type, f, value}``:

- ``txn``: ``begin`` opens it (invoke), its sends are micro-ops ``["send", key, [offset, value]]``
  filled in by their delivery reports (``key`` is the topic-partition, ``"topic-p"``); it completes
  ``ok`` when the commit succeeded, ``fail`` when the abort did, ``info`` when unknown (a commit that
  failed without requiring an abort, a crash, a transaction still open at the end);
- ``send`` outside a transaction: invoke at produce, completed by its delivery report (``ok`` with the
  offset, ``info`` on an error); one process may have several sends in flight, so a completion names its
  invocation (``invoke_index``);
- ``poll``: ``[["poll", {"topic-p": [[offset, value], ...]}]]``, records in (topic, partition, offset)
  order, as Kafka orders records within a partition only;
- ``assign``/``subscribe`` (invoke + ok), ``seek`` and ``crash`` (info), the nemesis' ops (info, process
  "nemesis"),
  and the final read of a fresh read_committed reader (``final_read``).

Values are text, as the checkers compare values for equality and the history is JSON: a key or value
is the text of its bytes on the wire, so a str and its UTF-8 bytes are the same value. Bytes that are not
UTF-8 are decoded with ``surrogateescape`` (PEP 383): each undecodable byte becomes a lone surrogate
(``b"\\xff"`` -> ``"\\udcff"``), which no str a producer accepts can hold, so distinct bytes stay distinct
values (JSON writes them as ``\\udcff`` escapes and reads them back the same).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from attrs import define, field

NEMESIS = "nemesis"  # Jepsen records nemesis ops as info ops of the :nemesis process; the checkers skip them
FINAL_READER = "final-reader"


def text(value: Any) -> Any:
    """A key or value as the history holds it: text (bytes decoded, one-to-one; see above)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


@define(eq=False)
class _Txn:
    """The open transaction of one process, becoming one Jepsen ``txn`` op."""

    invoke_index: int
    sends: list[list[Any]] = field(factory=list)  # [["send", key, [offset, value]] ...], offsets filled on delivery


@define(eq=False)
class Send:
    """One send in the history, waiting for its delivery report."""

    _history: History
    _process: str
    _value: Any
    _micro: list[Any]
    _invoke: dict[str, Any] | None  # the send op's invocation (None: a micro-op of a txn)

    def delivered(self, topic: str, partition: int, offset: int) -> None:
        """A successful delivery report; an offset < 0 (librdkafka's implicit ack) leaves it unknown."""
        key = self._history.key(topic, partition)
        self._micro[1], self._micro[2] = key, [offset if offset >= 0 else None, self._value]
        if self._invoke is not None:
            self._invoke["value"][0][1] = key
            self._history.complete(self._process, self._invoke, "ok", [self._micro])

    def failed(self) -> None:
        """A failed delivery report: the send's outcome is unknown (info), as Jepsen records it."""
        if self._invoke is not None:
            self._history.complete(self._process, self._invoke, "info", [["send", None, self._value]])


@define(eq=False)
class History:
    """The recorder: ``ops`` is the history, in the order things happened."""

    clock: Callable[[], int]
    ops: list[dict[str, Any]] = field(factory=list)
    _txns: dict[str, _Txn] = field(factory=dict)
    _keys: dict[tuple[str, int], str] = field(factory=dict)

    def key(self, topic: str, partition: int) -> str:
        """The history's key of a topic-partition, "topic-p": one string per partition, not one per send."""
        key = self._keys.get((topic, partition))
        if key is None:
            key = self._keys[(topic, partition)] = f"{topic}-{partition}"
        return key

    def op(self, process: str, type_: str, f: str, value: Any) -> dict[str, Any]:
        op = {"index": len(self.ops), "time": self.clock(), "process": process, "type": type_, "f": f, "value": value}
        self.ops.append(op)
        return op

    def complete(self, process: str, invoke: dict[str, Any], type_: str, value: Any) -> None:
        """Complete an asynchronous send, naming its invocation (``invoke_index``)."""
        self.op(process, type_, "send", value)["invoke_index"] = invoke["index"]

    # -- producers ----------------------------------------------------------------------------------

    def begin(self, process: str) -> None:
        """begin_transaction succeeded: the txn op is invoked (its sends are filled in at its end)."""
        self._txns[process] = _Txn(invoke_index=self.op(process, "invoke", "txn", [])["index"])

    def send(self, process: str, value: Any) -> Send:
        """produce() accepted a record: part of the open transaction, else a send op of its own."""
        value = text(value)
        txn = self._txns.get(process)
        micro: list[Any] = ["send", None, [None, value]]
        if txn is not None:
            txn.sends.append(micro)
            return Send(self, process, value, micro, None)
        return Send(self, process, value, micro, self.op(process, "invoke", "send", [["send", None, value]]))

    def end(self, process: str, type_: str) -> None:
        """The open transaction ends: ok (committed), fail (aborted) or info (unknown)."""
        txn = self._txns.pop(process, None)
        if txn is None:
            return
        self.ops[txn.invoke_index]["value"] = [["send", key, value[1]] for _f, key, value in txn.sends]
        self.op(process, type_, "txn", txn.sends)

    def commit_failed(self, process: str, requires_abort: bool) -> None:
        """A failed commit_transaction ends the txn as unknown, unless the error requires an abort: then
        the abort that must follow decides (aborted for sure only after a successful abort)."""
        if not requires_abort:
            self.end(process, "info")

    def crash(self, process: str) -> None:
        self.op(process, "info", "crash", None)
        self.end(process, "info")

    def close_open(self) -> None:
        """The run is over: a transaction never committed has an unknown outcome."""
        for process in list(self._txns):
            self.end(process, "info")

    # -- consumers ------------------------------------------------------------------------------------

    def assigned(self, process: str, f: str, value: list[str]) -> None:
        """assign or subscribe: they return at once, so the invocation and its completion coincide."""
        self.op(process, "invoke", f, value)
        self.op(process, "ok", f, value)

    def seek(self, process: str, partition: str, offset: int) -> None:
        """seek() moves a position on purpose (a rewind after an abort): an info op, which ends the
        process's poll scan (eosim._checkers.jepsen), so the reads after it are not a nonmonotonic poll."""
        self.op(process, "info", "seek", [partition, offset])

    def poll_invoke(self, process: str) -> None:
        self.op(process, "invoke", "poll", [["poll"]])

    def poll_ok(self, process: str, records: Iterable[tuple[str, int, int, Any]]) -> None:
        """The records a poll returned, as (topic, partition, offset, value)."""
        polled: dict[str, list[list[Any]]] = {}
        for topic, partition, offset, value in sorted(records, key=lambda r: (r[0], r[1], r[2])):
            polled.setdefault(f"{topic}-{partition}", []).append([offset, text(value)])
        self.op(process, "ok", "poll", [["poll", polled]])

    # -- the nemesis and the end of the run ---------------------------------------------------------------

    def nemesis(self, f: str, value: Any) -> None:
        self.op(NEMESIS, "info", f, value)

    def final_read(self, partitions: Iterable[Any]) -> None:
        """A last poll of every partition by a fresh read_committed reader (Jepsen's final reads), so
        lost, duplicated and aborted values show up even when no consumer read them. ``partitions`` are
        the final state (eosim._observation.PartitionObservation); the op's ``complete`` names those read
        to their end (LSO = HW: no transaction left open), where every committed value must be among the
        records read."""
        partitions = list(partitions)
        read = {f"{p.topic}-{p.partition}": [[o, text(v)] for o, _k, v in p.read_committed] for p in partitions}
        complete = [f"{p.topic}-{p.partition}" for p in partitions if p.last_stable_offset == p.high_watermark]
        self.op(FINAL_READER, "invoke", "poll", [["poll"]])
        self.op(FINAL_READER, "ok", "poll", [["poll", read]])["complete"] = sorted(complete)
