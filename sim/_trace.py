"""eosim._trace
=========

Every request, response, state transition and client operation becomes a typed ``TraceEvent``. The
trace serialises to JSON lines with sorted keys, so the same seed and inputs give identical bytes.
"""

from __future__ import annotations

import enum
import functools
import json
from typing import Any, Callable, Iterable, Iterator, Sequence, overload

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
    if kind is bytes:  # a key or value produced as bytes: JSON has no bytes, show its text
        return value.decode("utf-8", "backslashreplace")
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
    """The events of a trace as JSON-ready dicts, rendered on each access and never stored: a run's
    trace is held once, as its events. ``kinds`` narrows it to events of those kinds, plus the last
    event (its time is where the trace ends)."""

    def __init__(self, events: list[TraceEvent], kinds: frozenset[str] | None = None) -> None:
        if kinds is not None and events:
            last = events[-1]
            events = [e for e in events if e.kind in kinds or e is last]
        self._events = events

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [e.to_dict() for e in self._events[index]]
        return self._events[index].to_dict()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (e.to_dict() for e in self._events)

    def of_kinds(self, kinds: frozenset[str]) -> TraceView:
        return TraceView(self._events, kinds)


@define(eq=False)
class Trace:
    clock: Callable[[], int]
    events: list[TraceEvent] = field(factory=list)

    def emit(self, node: str, kind: str, **fields: Any) -> TraceEvent:
        # Emitted values must not change afterwards (frozen model values, fresh lists): they are
        # rendered when the trace is read, not now.
        event = TraceEvent(len(self.events), self.clock(), node, kind, fields)
        self.events.append(event)
        return event

    def dicts(self) -> TraceView:
        return TraceView(self.events)

    def to_jsonl(self) -> str:
        return dumps_lines(self.dicts())


_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON line per row, sorted keys: byte-identical for equal rows."""
    return (_encode(r) + "\n" for r in rows)


def dumps_lines(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(jsonl_lines(rows))


def load_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
