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

How they are held: a long run is mostly sends outside a transaction (invoke and completion) and polls,
so the recorder keeps those as columns (``History._code`` and the arrays beside it: a few machine words
per op, the key and value strings shared) and ``History.ops`` renders op dicts only when they are read
(an :class:`Ops` view, equal to the list of those dicts). The Jepsen checker reads the columns
directly (``check_recorded``) and renders op dicts for witnesses only; the other ops (transactions,
assign, crash, nemesis ...) are kept as their dicts.

Values are text, as the checkers compare values for equality and the history is JSON: a key or value
is the text of its bytes on the wire, so a str and its UTF-8 bytes are the same value. Bytes that are not
UTF-8 are decoded with ``surrogateescape`` (PEP 383): each undecodable byte becomes a lone surrogate
(``b"\\xff"`` -> ``"\\udcff"``), which no str a producer accepts can hold, so distinct bytes stay distinct
values (JSON writes them as ``\\udcff`` escapes and reads them back the same).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any, Callable, Iterable, Iterator

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


# How an op is held (``History._code``): most of a long run's ops are sends outside a transaction and
# polls, so they are kept as columns (a few machine words each, sharing the key and value strings) and
# rendered as op dicts only when read; every other op is its dict (``GENERIC``).
GENERIC, SEND_INVOKE, SEND_OK, SEND_INFO, POLL_OK, FINAL_READ = range(6)
NO_OFFSET = -1  # a send acknowledged without an offset (librdkafka's implicit ack): offset None
TYPES = (None, "invoke", "ok", "info", "ok", "ok")  # by code
FS = (None, "send", "send", "send", "poll", "poll")


@define(eq=False)
class Send:
    """One send in the history, waiting for its delivery report."""

    _history: History
    _process: str
    _value: Any
    _micro: list[Any] | None  # a micro-op of a txn; None: a send op of its own, invoked at ``_invoke``
    _invoke: int

    def delivered(self, topic: str, partition: int, offset: int) -> None:
        """A successful delivery report; an offset < 0 (librdkafka's implicit ack) leaves it unknown."""
        key = self._history.key(topic, partition)
        if self._micro is not None:
            self._micro[1], self._micro[2] = key, [offset if offset >= 0 else None, self._value]
        else:
            self._history._completed(self._process, self._invoke, SEND_OK, key, max(offset, NO_OFFSET),
                                     self._value)

    def failed(self) -> None:
        """A failed delivery report: the send's outcome is unknown (info), as Jepsen records it."""
        if self._micro is None:
            self._history._completed(self._process, self._invoke, SEND_INFO, None, 0, self._value)


class Ops(Sequence):
    """The ops of a history, read as op dicts (rendered on each read from the recorder's columns: equal
    to, not the same as, the dict read before). Compares equal to a list of the same dicts."""

    __slots__ = ("_history",)

    def __init__(self, history: History):
        self._history = history

    def __len__(self) -> int:
        return len(self._history._code)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._history.op_dict(h) for h in range(len(self))[i]]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("history index out of range")
        return self._history.op_dict(i)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        op_dict = self._history.op_dict
        return (op_dict(h) for h in range(len(self)))

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, (Ops, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Ops({list(self)!r})"

    @property
    def recorder(self) -> History:
        return self._history


@define(eq=False)
class History:
    """The recorder: ``ops`` is the history, in the order things happened (an :class:`Ops` view)."""

    clock: Callable[[], int]
    _txns: dict[str, _Txn] = field(factory=dict)
    _keys: dict[tuple[str, int], str] = field(factory=dict)
    # One entry per op, by index: how it is held, when, by whom, and its fields (see GENERIC ...).
    _code: bytearray = field(factory=bytearray)
    _time: array = field(factory=lambda: array("q"))
    _process: list[Any] = field(factory=list)
    _obj: list[Any] = field(factory=list)  # the op dict (generic), the value (sends), the records (polls)
    _key: list[Any] = field(factory=list)  # a send's key (filled on delivery)
    _num: array = field(factory=lambda: array("q"))  # a completion's invoke_index
    _offset: array = field(factory=lambda: array("q"))  # an ok send's offset (NO_OFFSET: None)
    _complete: dict[int, list[str]] = field(factory=dict)  # the final read's complete partitions

    @property
    def ops(self) -> Ops:
        return Ops(self)

    def key(self, topic: str, partition: int) -> str:
        """The history's key of a topic-partition, "topic-p": one string per partition, not one per send."""
        key = self._keys.get((topic, partition))
        if key is None:
            key = self._keys[(topic, partition)] = f"{topic}-{partition}"
        return key

    def _append(self, code: int, process: Any, obj: Any, key: Any = None, num: int = 0, offset: int = 0,
                time: int | None = None) -> int:
        h = len(self._code)
        self._code.append(code)
        self._time.append(self.clock() if time is None else time)
        self._process.append(process)
        self._obj.append(obj)
        self._key.append(key)
        self._num.append(num)
        self._offset.append(offset)
        return h

    def op(self, process: str, type_: str, f: str, value: Any) -> dict[str, Any]:
        op = {"index": len(self._code), "time": self.clock(), "process": process, "type": type_, "f": f, "value": value}
        self._append(GENERIC, process, op, time=op["time"])
        return op

    def _completed(self, process: str, invoke: int, code: int, key: Any, offset: int, value: Any) -> None:
        """Complete an asynchronous send, naming its invocation (``invoke_index``)."""
        if code == SEND_OK:
            self._key[invoke] = key
        self._append(code, process, value, key, invoke, offset)

    # -- reading ------------------------------------------------------------------------------------------

    def op_dict(self, h: int) -> dict[str, Any]:
        """Op ``h`` as a dict (the generic ops are their own dict)."""
        code = self._code[h]
        if code == GENERIC:
            return self._obj[h]
        op: dict[str, Any] = {"index": h, "time": self._time[h], "process": self._process[h]}
        value = self._obj[h]
        if code == SEND_INVOKE:
            op.update(type="invoke", f="send", value=[["send", self._key[h], value]])
        elif code == POLL_OK:
            op.update(type="ok", f="poll", value=[["poll", {k: [[o, v] for o, v in pairs] for k, pairs in value.items()}]])
        elif code == FINAL_READ:
            op.update(type="ok", f="poll", value=[["poll", {k: [[o, text(v)] for o, _k, v in rows]
                                                            for k, rows in value.items()}]])
            op["complete"] = list(self._complete[h])
        else:
            if code == SEND_OK:
                offset = self._offset[h]
                op.update(type="ok", f="send", value=[["send", self._key[h], [None if offset == NO_OFFSET else offset, value]]])
            else:
                op.update(type="info", f="send", value=[["send", None, value]])
            op["invoke_index"] = self._num[h]
        return op

    # -- producers ----------------------------------------------------------------------------------

    def begin(self, process: str) -> None:
        """begin_transaction succeeded: the txn op is invoked (its sends are filled in at its end)."""
        self._txns[process] = _Txn(invoke_index=self.op(process, "invoke", "txn", [])["index"])

    def send(self, process: str, value: Any) -> Send:
        """produce() accepted a record: part of the open transaction, else a send op of its own."""
        value = text(value)
        txn = self._txns.get(process)
        if txn is not None:
            micro: list[Any] = ["send", None, [None, value]]
            txn.sends.append(micro)
            return Send(self, process, value, micro, -1)
        return Send(self, process, value, None, self._append(SEND_INVOKE, process, value))

    def end(self, process: str, type_: str) -> None:
        """The open transaction ends: ok (committed), fail (aborted) or info (unknown)."""
        txn = self._txns.pop(process, None)
        if txn is None:
            return
        self._obj[txn.invoke_index]["value"] = [["send", key, value[1]] for _f, key, value in txn.sends]
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
        polled: dict[str, list[tuple[int, Any]]] = {}
        for topic, partition, offset, value in sorted(records, key=lambda r: (r[0], r[1], r[2])):
            polled.setdefault(self.key(topic, partition), []).append((offset, text(value)))
        self._append(POLL_OK, process, polled)

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
        # the observation's own rows (offset, key, value), not a copy: a long run's final read is its log
        read = {self.key(p.topic, p.partition): p.read_committed for p in partitions}
        complete = [f"{p.topic}-{p.partition}" for p in partitions if p.last_stable_offset == p.high_watermark]
        self.op(FINAL_READER, "invoke", "poll", [["poll"]])
        self._complete[self._append(FINAL_READ, FINAL_READER, read)] = sorted(complete)
