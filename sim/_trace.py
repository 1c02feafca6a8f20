"""eosim._trace
=========

Every request, response, state transition and client operation becomes a typed ``TraceEvent``. The
trace serialises to JSON lines with sorted keys, so the same seed and inputs give identical bytes.
"""

from __future__ import annotations

import enum
import functools
import json
from typing import Any, Callable, Iterable

import attrs
from attrs import define, field, frozen

from eosim.models.records import TopicPartition


@frozen
class TraceEvent:
    seq: int
    t: int
    node: str
    kind: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "t": self.t, "node": self.node, "kind": self.kind, "data": self.data}


_SCALARS = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    """Turn model values into JSON-ready ones (enums by name, topic-partitions as "topic-p")."""
    kind = type(value)
    if kind in _SCALARS:  # the common case first: the trace is the simulator's hottest path
        return value
    if kind is TopicPartition:
        return str(value)
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


@define(eq=False)
class Trace:
    clock: Callable[[], int]
    events: list[TraceEvent] = field(factory=list)

    def emit(self, node: str, kind: str, **data: Any) -> TraceEvent:
        event = TraceEvent(len(self.events), self.clock(), node, kind, plain(data))
        self.events.append(event)
        return event

    def dicts(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.events]

    def to_jsonl(self) -> str:
        return dumps_lines(self.dicts())


def dumps_lines(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows)


def load_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
