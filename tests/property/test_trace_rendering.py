"""The trace's generated JSON renderers (``TraceEvent.line``, what spilling and writing ``trace.jsonl``
cost per event) write the same bytes as the reference rendering, ``json.dumps`` of the event's plain
form (``to_dict``) with sorted keys, for events of every kind holding any value ``plain`` renders:
scalars, odd strings and keys, bytes, enums, subclasses of str and int, topic-partitions, model values
(with a field that is not traced; nested ones, which the renderers write by their declared types), nested
lists, tuples and dicts, keys and topics equal to a str but written otherwise, and ``ABSENT`` anywhere."""

from __future__ import annotations

import enum
import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eosim import _trace
from eosim._trace import ABSENT, KINDS, Trace
from eosim.models.consumer_group import ConsumerGroupState
from eosim.models.errors import Errors
from eosim.models.protocol import PartitionProduceResponse, ProduceRequest, ProduceResponse
from eosim.models.records import ControlType, LogBatch, Record, RecordBatch, TopicPartition

reference = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


class _Colour(enum.Enum):
    RED = 1


class _Name(str):
    pass


class _Count(int):
    pass


text = st.text(st.characters(exclude_categories=()), max_size=6)  # surrogates, controls, quotes, non-ASCII
# A key or topic equal to a str but written otherwise (a str subclass, a StrEnum by its name), True equal to 1.
keys = st.one_of(st.sampled_from(["key", "value", "topic", "a\"b", "{x}", "\\", "é", "", "\x7f", "Stable",
                                  ConsumerGroupState.STABLE]), st.builds(_Name, st.just("key")), text)
topic_partitions = st.builds(TopicPartition, st.one_of(st.just("t"), st.just(ConsumerGroupState.STABLE), text),
                             st.one_of(st.integers(0, 3), st.just(True)))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.integers(), st.floats(), text, st.binary(max_size=4),
    topic_partitions, st.sampled_from([Errors.NONE, Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, ControlType.COMMIT,
                                       _Colour.RED]),
    st.builds(_Name, text), st.builds(_Count, st.integers()), st.just(ABSENT))


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    records = st.lists(st.builds(Record, children, children, children), max_size=3).map(tuple)
    return st.one_of(
        st.lists(children, max_size=5), st.lists(children, max_size=5).map(tuple),
        st.dictionaries(keys, children, max_size=5),
        st.dictionaries(st.one_of(keys, st.integers(), topic_partitions, st.none(), st.booleans()), children,
                        max_size=4),
        st.builds(Record, children, children), records.map(lambda r: RecordBatch(records=r)),
        st.builds(PartitionProduceResponse, partition=children, error=children),
        st.builds(LogBatch, base_offset=children, records=records, partition_leader_epoch=children),
        # nested declared types, written in by the generated renderers: pairs of a partition and a batch
        st.builds(ProduceRequest, transactional_id=children, acks=children, batches=st.lists(st.one_of(
            st.tuples(children, records.map(lambda r: RecordBatch(records=r))), children), max_size=2).map(tuple)),
        st.builds(ProduceResponse, responses=st.lists(st.builds(PartitionProduceResponse, partition=children,
                                                                error=children), max_size=2).map(tuple)))


values = st.recursive(scalars, _containers, max_leaves=12)


@st.composite
def events(draw: st.DrawFn, kind: str) -> tuple[str, dict]:
    """A kind's fields: every field without a default, each field with one now and then, any value."""
    fields = {}
    for f in attrs.fields(KINDS[kind])[3:]:
        if f.default is attrs.NOTHING or draw(st.booleans()):
            fields[f.name] = draw(values)
    return kind, fields


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=40, deadline=None)
@given(data=st.data(), seq=st.integers(0, 2**40), t=st.integers(0, 2**40), node=text)
def test_an_event_line_is_the_reference_rendering_for_every_kind(kind, data, seq, t, node):
    _, fields = data.draw(events(kind))
    event = KINDS[kind](seq, t, node, **fields)
    expected = reference(event.to_dict())
    assert event.line() == expected
    assert event._line() == expected + "\n"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(KINDS)).flatmap(events), min_size=1, max_size=12), st.integers(1, 5))
def test_a_spilled_trace_writes_the_reference_lines(emitted, spill_every):
    spill_events, _trace.SPILL_EVENTS = _trace.SPILL_EVENTS, spill_every
    try:
        trace = Trace(clock=lambda: 7)
        kept = [trace.emit("n", kind, **fields) for kind, fields in emitted]
    finally:
        _trace.SPILL_EVENTS = spill_events
    assert trace.to_jsonl() == "".join(reference(e.to_dict()) + "\n" for e in kept)
