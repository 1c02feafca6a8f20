"""eosim._trace
=========

Every request, response, state transition and client operation becomes a typed ``TraceEvent``. The
trace serialises to JSON lines with sorted keys, so the same seed and inputs give identical bytes.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import tempfile
from array import array
from typing import IO, Any, Callable, Iterable, Iterator, Sequence, overload

import attrs
from attrs import define, field, frozen

from eosim.models.records import TopicPartition


@frozen
class TraceEvent:
    """One trace event, kept as the values it was emitted with; ``data`` renders them as JSON-ready
    values only when read, so a run pays for rendering only what it writes or checks."""

    seq: int
    t: int
    node: str
    kind: str
    fields: dict[str, Any]  # as emitted: model values, rendered by ``plain``

    @property
    def data(self) -> dict[str, Any]:
        return {str(k): plain(v) for k, v in self.fields.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "t": self.t, "node": self.node, "kind": self.kind, "data": self.data}


_SCALARS = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    """Turn model values into JSON-ready ones (enums by name, topic-partitions as "topic-p")."""
    kind = type(value)
    if kind in _SCALARS:  # the common case first
        return value
    if kind is TopicPartition:
        return str(value)
    if kind is bytes:  # a key or value produced as bytes: JSON has no bytes; one-to-one as in eosim._history
        return value.decode("utf-8", "surrogateescape")
    if kind is dict:
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.name
    fields = _attrs_fields(kind)
    if fields is not None:
        return {name: plain(getattr(value, name)) for name in fields}
    return value


@functools.cache
def _attrs_fields(kind: type) -> tuple[str, ...] | None:
    return tuple(f.name for f in attrs.fields(kind)) if attrs.has(kind) else None


class TraceView(Sequence[dict[str, Any]]):
    """The events of a trace as JSON-ready dicts, rendered (or read back from the spill file) on each
    access and never stored. ``kinds`` narrows it to events of those kinds, plus the last event (its
    time is where the trace ends)."""

    seq_ordered = True  # readers may stream it rather than sort it

    def __init__(self, trace: Trace, kinds: frozenset[str] | None = None) -> None:
        self._trace, self._kinds = trace, kinds

    def __len__(self) -> int:
        if self._kinds is None:
            return len(self._trace)
        return sum(1 for _ in self)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if self._kinds is not None:
            return list(self)[index]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._trace.event_dict(index)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (row if type(row) is dict else json.loads(row) for row in self._trace.rows(self._kinds))

    def lines(self) -> Iterator[str]:
        """The JSON lines of the events (``jsonl_lines``), spilled ones copied as written."""
        return (_encode(row) + "\n" if type(row) is dict else row.decode() for row in self._trace.rows(self._kinds))

    def of_kinds(self, kinds: frozenset[str]) -> TraceView:
        return TraceView(self._trace, kinds)


SPILL_EVENTS = 1_000_000  # events a trace holds before it streams them to a temporary file (about 140k records)
_SPILL_READ = 1 << 20


@define(eq=False)
class Trace:
    """A run's events. A long run's trace streams to an anonymous temporary file (gone with the
    process, however it ends) every ``SPILL_EVENTS`` events, so its memory stays bounded; ``events``
    holds those not spilled yet."""

    clock: Callable[[], int]
    events: list[TraceEvent] = field(factory=list)
    _spill: IO[bytes] | None = field(default=None, init=False)
    _offsets: array = field(factory=lambda: array("q"), init=False)  # where each spilled line starts
    _kind_ids: array = field(factory=lambda: array("H"), init=False)  # each spilled event's kind, by id
    _kinds: dict[str, int] = field(factory=dict, init=False)
    _spilled: int = field(default=0, init=False)
    _size: int = field(default=0, init=False)  # bytes spilled

    def emit(self, node: str, kind: str, **fields: Any) -> TraceEvent:
        # Emitted values must not change afterwards (frozen model values, fresh lists): they are
        # rendered when the trace is read or spilled, not now.
        event = TraceEvent(self._spilled + len(self.events), self.clock(), node, kind, fields)
        self.events.append(event)
        if len(self.events) >= SPILL_EVENTS:
            self._spill_events()
        return event

    def __len__(self) -> int:
        return self._spilled + len(self.events)

    def _spill_events(self) -> None:
        if self._spill is None:
            self._spill = tempfile.TemporaryFile()
        for start in range(0, len(self.events), 10_000):  # rendered a block at a time
            lines = []
            for event in self.events[start:start + 10_000]:
                line = (_encode(event.to_dict()) + "\n").encode()
                self._offsets.append(self._size)
                self._kind_ids.append(self._kinds.setdefault(event.kind, len(self._kinds)))
                self._size += len(line)
                lines.append(line)
            self._spill.writelines(lines)
        self._spilled += len(self.events)
        self.events = []

    def event_dict(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index >= self._spilled:
            return self.events[index - self._spilled].to_dict()
        assert self._spill is not None
        self._spill.flush()
        end = self._offsets[index + 1] if index + 1 < self._spilled else self._size
        return json.loads(os.pread(self._spill.fileno(), end - self._offsets[index], self._offsets[index]))

    def rows(self, kinds: frozenset[str] | None = None) -> Iterator[dict[str, Any] | bytes]:
        """The events in seq order: a dict for each event in memory, the JSON line (bytes) of each
        spilled one; with ``kinds``, only those of these kinds and the last event."""
        spilled, size, events = self._spilled, self._size, list(self.events)
        last = spilled + len(events) - 1
        wanted = None if kinds is None else {i for k, i in self._kinds.items() if k in kinds}
        if spilled:
            assert self._spill is not None
            self._spill.flush()
            fd, pos, rest, index = self._spill.fileno(), 0, b"", 0
            while pos < size:
                chunk = os.pread(fd, min(_SPILL_READ, size - pos), pos)
                pos += len(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if wanted is None or self._kind_ids[index] in wanted or index == last:
                        yield line + b"\n"
                    index += 1
        for event in events:
            if kinds is None or event.kind in kinds or event.seq == last:
                yield event.to_dict()

    def dicts(self) -> TraceView:
        return TraceView(self)

    def to_jsonl(self) -> str:
        return dumps_lines(self.dicts())


_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON line per row, sorted keys: byte-identical for equal rows."""
    if isinstance(rows, TraceView):
        return rows.lines()
    return (_encode(r) + "\n" for r in rows)


def dumps_lines(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(jsonl_lines(rows))


def load_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
