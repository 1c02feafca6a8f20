"""``Trace.emitter``: the hot emit sites' way to trace one kind. Its events are the ones ``emit`` builds (same
seq, time, fields, defaults), it spills and feeds the reader as ``emit`` does, and a wrong field fails at the call."""

from __future__ import annotations

import attrs
import pytest

from eosim import _trace
from eosim._trace import ABSENT, KINDS, Trace, TraceSchemaError
from eosim.models.records import TopicPartition

TP = TopicPartition("out", 0)


def _fields(cls: type) -> dict:
    """A value for every field of ``cls`` (every second optional one left out)."""
    values: dict = {}
    for i, name in enumerate(cls._fields):
        if attrs.fields(cls)[3 + i].default is ABSENT and i % 2:
            continue
        values[name] = TP if name in cls._tps else [i, name] if name in ("records", "failed", "nodes") else i
    return values


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_emitter_builds_what_emit_builds(kind):
    clock = iter(range(100)).__next__
    by_emit, by_emitter = Trace(clock=clock), Trace(clock=clock)
    fields = _fields(KINDS[kind])
    emit = by_emitter.emitter(kind)
    for node in ("b0", "p1"):
        one = by_emit.emit(node, kind, **fields)
        other = emit(node, **fields)
        assert type(one) is type(other) and one.to_dict() | {"t": 0} == other.to_dict() | {"t": 0}
        assert other.t == one.t + 1  # the clock read once per event
    assert [e.seq for e in by_emitter.events] == [0, 1]


def test_an_emitter_spills_and_hands_the_reader_its_events_as_emit_does(monkeypatch):
    monkeypatch.setattr(_trace, "SPILL_EVENTS", 4)
    traces = Trace(clock=lambda: 3), Trace(clock=lambda: 3)
    read: tuple[list, list] = ([], [])
    for trace, seen in zip(traces, read):
        trace.follow(lambda block, seen=seen: seen.extend(e.seq for e in block))
    offsets = traces[1].emitter("log.offsets")
    for n in range(10):
        traces[0].emit("b0", "log.offsets", tp=TP, log_end_offset=n, high_watermark=n, last_stable_offset=n)
        offsets("b0", tp=TP, log_end_offset=n, high_watermark=n, last_stable_offset=n)
        assert read[1] == read[0] == list(range(traces[1]._spilled))
    assert traces[1]._spilled == 8 and traces[0].to_jsonl() == traces[1].to_jsonl()


def test_a_wrong_field_or_kind_fails_at_the_call():
    trace = Trace(clock=lambda: 0)
    offsets = trace.emitter("log.offsets")
    with pytest.raises(TypeError, match="emit_log_offsets.. got an unexpected keyword argument 'high_watermak'"):
        offsets("b0", tp=TP, log_end_offset=1, high_watermak=1, last_stable_offset=1)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'high_watermark'"):
        offsets("b0", tp=TP, log_end_offset=1, last_stable_offset=1)
    with pytest.raises(TypeError):
        offsets("b0", TP, 1, 1, 1)  # fields by keyword only
    with pytest.raises(TraceSchemaError, match="unknown trace event kind 'log.ofsets'"):
        trace.emitter("log.ofsets")
    assert len(trace) == 0
