"""eosim._observation
===============

What a scenario run showed, in a form both backends produce: the simulator and the conformance
suite's real Kafka broker each turn a run into an ``Observation``, and ``diff`` compares two of
them. ``check_expectations`` lists what a run violates of the scenario's own expectations
(``expect_error``, ``expect_records``, ``expect_offsets``, ``[expect]``); anomalies are the
checkers' business (sim/checkers).

A step's ``values`` are JSON data; the keys read here are the contract with the runners:

- ``"records"`` (consume): ``[[topic, partition, offset, key, value], ...]`` in the order returned;
- ``"offsets"`` (position, committed): ``[[topic, partition, offset], ...]``, a negative offset
  meaning none (confluent-kafka's OFFSET_INVALID, -1001);
- ``"delivery"`` (produce): ``[topic, partition, offset]`` of the record's delivery report, when it
  reported success (a negative offset: librdkafka's implicit ack, offset unknown);
- ``"delivery_error"`` (produce): ``{"name", "fatal", "retriable", "abortable"}`` of the report's
  KafkaError (``abortable`` is ``txn_requires_abort()``), when it reported a failure. Neither key: no
  report by the end of the run.
"""

from __future__ import annotations

import json
from array import array
from typing import Any, Iterator, Sequence, overload

import cattrs
from attrs import field, frozen

from eosim._scenario import Committed, Consume, ConsumedRecord, ExpectedDelivery, Position, Produce, Scenario

OK = "ok"


def _json_data(value: Any) -> Any:
    # JSON-normalise (tuples become lists) so an observation equals itself after a JSON round trip;
    # walked by hand, as a json.dumps + json.loads per step cost a tenth of a run. A value that is JSON
    # already is kept, not copied (a run's steps are over when they are observed): a long run's
    # observation does not hold its steps' values twice. One pass, copying a container only once an
    # item of it changes; scalars are not walked into.
    kind = type(value)
    if kind in _JSON_SCALARS:
        return value
    if kind is dict:
        out = None
        for k, v in value.items():
            if type(k) is not str:
                return json.loads(json.dumps(value))  # non-str keys: JSON's own rules
            if type(v) not in _JSON_SCALARS:
                normal = _json_data(v)
                if normal is not v:
                    if out is None:
                        out = dict(value)
                    out[k] = normal
        return value if out is None else out
    if kind is list or kind is tuple:
        out = None if kind is list else list(value)
        for i, v in enumerate(value):
            if type(v) not in _JSON_SCALARS:
                normal = _json_data(v)
                if normal is not v:
                    if out is None:
                        out = list(value)
                    out[i] = normal
        return value if out is None else out
    return json.loads(json.dumps(value))  # anything else: JSON's own rules


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _records(records: Any) -> tuple[tuple[int, str | None, str | None], ...]:
    # rows that already are (offset, key, value) tuples are kept, not copied
    return tuple(r if type(r) is tuple and len(r) == 3 else _row(*r) for r in records)


def _row(offset: int, key: str | None, value: str | None) -> tuple[int, str | None, str | None]:
    return (offset, key, value)


@frozen(kw_only=True)
class StepObservation:
    index: int  # position in the scenario's steps, from 0
    actor: str
    op: str
    outcome: str  # "ok", or the error name (KafkaError.name()) the call failed with
    values: dict[str, Any] = field(factory=dict, converter=_json_data, hash=False)


PENDING = "pending"  # the outcome of a step that had not completed when the run ended (a nowait step)

# How a step's values are held (``StepColumns``): none, ``{"remaining": n}`` (flush), ``{"delivery": [topic,
# partition, offset]}`` (produce), anything else as its dict.
_NONE, _REMAINING, _DELIVERY, _DICT = range(4)


class StepColumns(Sequence[StepObservation]):
    """The steps of a run as they are recorded, in columns: a ``Sequence`` of ``StepObservation`` (in index
    order, equal to the tuple of them) that builds each on read. A long run is two steps per record (produce,
    flush), so a step costs about 14 bytes here instead of an object, its values dict and its delivery list;
    the actor and op are the scenario's step's. The interpreter writes a step's outcome and values as they
    come (``start``, ``finish``, ``put``, ``delivered``), possibly after the step (a delivery report, a nowait
    step)."""

    __slots__ = ("_steps", "_started", "_outcomes", "_names", "_codes", "_shapes", "_nums", "_tps", "_tp_ids",
                 "_tp_list", "_dicts")

    def __init__(self, steps: Sequence[Any]) -> None:
        self._steps = steps  # the scenario's steps: each started step's actor and op
        self._started = 0  # the steps started so far (the first ones: steps start in order)
        # The columns are as long as the steps from the start (a run starts them all, unless it stops early), so a
        # step's start is a count, not four appends: a step's outcome is pending (code 0) and it holds no values.
        n = len(steps)
        self._outcomes = array("H", [0]) * n  # per step, its outcome's code in _names
        self._names: list[str] = [PENDING]
        self._codes: dict[str, int] = {PENDING: 0}
        self._shapes = bytearray(n)  # per step, how its values are held (_NONE is 0)
        self._nums = array("q", [0]) * n  # per step, the remaining count or the delivery's offset
        self._tps = array("I", [0]) * n  # per step, the delivery's (topic, partition) by id in _tp_ids
        self._tp_ids: dict[tuple[str, int], int] = {}
        self._tp_list: list[tuple[str, int]] = []
        self._dicts: dict[int, dict[str, Any]] = {}  # the values of the steps held as their dict

    def start(self) -> int:
        """A step starts (the next of the scenario's): its index."""
        index = self._started
        self._started = index + 1
        return index

    def _code(self, outcome: str) -> int:
        code = self._codes.get(outcome)
        if code is None:
            code = self._codes[outcome] = len(self._names)
            self._names.append(outcome)
        return code

    def finish(self, index: int, outcome: str) -> None:
        code = self._codes.get(outcome)  # known (mostly "ok"): no _code call
        self._outcomes[index] = self._code(outcome) if code is None else code

    def delivered(self, index: int, topic: str, partition: int, offset: int) -> None:
        """``put(index, "delivery", [topic, partition, offset])``, without the list."""
        if self._shapes[index] == _NONE and type(topic) is str and type(partition) is int and type(offset) is int:
            tp = (topic, partition)
            tp_id = self._tp_ids.get(tp)
            if tp_id is None:
                tp_id = self._tp_ids[tp] = len(self._tp_list)
                self._tp_list.append(tp)
            self._shapes[index], self._nums[index], self._tps[index] = _DELIVERY, offset, tp_id
        else:
            self.put(index, "delivery", [topic, partition, offset])

    def put(self, index: int, key: str, value: Any) -> None:
        """The step's ``values[key] = value`` (a list or dict put is held, not copied: it may still grow)."""
        shape = self._shapes[index]
        if key == "remaining" and type(value) is int and (shape == _NONE or shape == _REMAINING):
            self._shapes[index], self._nums[index] = _REMAINING, value
            return
        values = self._values(index)
        values[key] = value
        self._shapes[index] = _DICT
        self._dicts[index] = values

    def _values(self, index: int) -> dict[str, Any]:
        shape = self._shapes[index]
        if shape == _NONE:
            return {}
        if shape == _REMAINING:
            return {"remaining": self._nums[index]}
        if shape == _DELIVERY:
            topic, partition = self._tp_list[self._tps[index]]
            return {"delivery": [topic, partition, self._nums[index]]}
        return self._dicts[index]

    def of(self, steps: Sequence[Any]) -> bool:
        """Whether these are the columns of ``steps`` (a step's actor and op are then its own)."""
        return self._steps is steps

    def actor_op(self, index: int) -> tuple[str, str]:
        step = self._steps[index]
        return step.actor, step.op

    def outcome(self, index: int) -> str:
        return self._names[self._outcomes[index]]

    def __len__(self) -> int:
        return self._started

    @overload
    def __getitem__(self, index: int) -> StepObservation: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[StepObservation, ...]: ...

    def __getitem__(self, index: int | slice) -> StepObservation | tuple[StepObservation, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        step = self._steps[index]
        return StepObservation(index=index, actor=step.actor, op=step.op, outcome=self._names[self._outcomes[index]],
                               values=self._values(index))

    def __iter__(self) -> Iterator[StepObservation]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StepColumns | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


def _steps(steps: Any) -> Sequence[StepObservation]:
    # a run's columns are in index order already, and held as they are; anything else becomes a sorted tuple
    return steps if type(steps) is StepColumns else tuple(sorted(steps, key=lambda x: x.index))


@frozen(kw_only=True)
class PartitionObservation:
    """A partition's final state, as fresh readers of each isolation level see it."""

    topic: str
    partition: int
    high_watermark: int
    last_stable_offset: int
    read_committed: tuple[tuple[int, str | None, str | None], ...] = field(converter=_records)
    read_uncommitted: tuple[tuple[int, str | None, str | None], ...] = field(converter=_records)


@frozen(kw_only=True)
class GroupObservation:
    """A group's visible committed offsets; a partition without one is absent."""

    group: str
    committed: tuple[tuple[str, int, int], ...] = field(
        converter=lambda offsets: tuple(sorted((t, p, o) for t, p, o in offsets)))


@frozen(kw_only=True)
class Observation:
    scenario: str
    steps: tuple[StepObservation, ...] = field(converter=_steps)  # a run's own: its StepColumns
    partitions: tuple[PartitionObservation, ...] = field(
        converter=lambda ps: tuple(sorted(ps, key=lambda p: (p.topic, p.partition))))
    groups: tuple[GroupObservation, ...] = field(converter=lambda gs: tuple(sorted(gs, key=lambda g: g.group)))

    def to_json(self) -> str:
        """Deterministic JSON: sorted keys, canonical order of partitions and groups."""
        return json.dumps(_converter.unstructure(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Observation:
        return _converter.structure(json.loads(text), cls)


_converter = cattrs.Converter()

_MISSING = object()


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(missing)"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def nearest(allowed: Sequence[Observation], observed: Observation) -> tuple[int, list[str]]:
    """The allowed observation closest to ``observed`` (fewest differences; the first on a tie), as (its index,
    ``diff(allowed[i], observed)``): the differences are empty when ``observed`` is one of them."""
    if not allowed:
        raise ValueError("no allowed observation to compare with")
    scored = [(len(lines), i, lines) for i, lines in enumerate(diff(a, observed) for a in allowed)]
    _count, index, lines = min(scored, key=lambda t: t[:2])
    return index, lines


def diff(a: Observation, b: Observation, *, labels: tuple[str, str] = ("sim", "kafka")) -> list[str]:
    """One line per difference, e.g. ``partitions[out-0].last_stable_offset: sim=4 kafka=0``; empty when equal."""
    lines: list[str] = []

    def differ(path: str, x: Any, y: Any) -> None:
        if x != y:
            lines.append(f"{path}: {labels[0]}={_show(x)} {labels[1]}={_show(y)}")

    def keyed(xs: dict, ys: dict, path: str, compare, describe=lambda v: v) -> None:
        """Compare what both sides have under a key; a key on one side only is one line."""
        for key in sorted(xs.keys() | ys.keys()):
            if key in xs and key in ys:
                compare(f"{path}[{key}]", xs[key], ys[key])
            else:
                x, y = (describe(xs[key]) if key in xs else _MISSING), (describe(ys[key]) if key in ys else _MISSING)
                differ(f"{path}[{key}]", x, y)

    def by_offset(records) -> dict:
        return {f"offset={o}": [k, v] for o, k, v in records}

    def step(path: str, x: StepObservation, y: StepObservation) -> None:
        for name in ("actor", "op", "outcome"):
            differ(f"{path}.{name}", getattr(x, name), getattr(y, name))
        keyed(x.values, y.values, f"{path}.values", differ)

    def partition(path: str, x: PartitionObservation, y: PartitionObservation) -> None:
        differ(f"{path}.high_watermark", x.high_watermark, y.high_watermark)
        differ(f"{path}.last_stable_offset", x.last_stable_offset, y.last_stable_offset)
        for name in ("read_committed", "read_uncommitted"):
            keyed(by_offset(getattr(x, name)), by_offset(getattr(y, name)), f"{path}.{name}", differ)

    def group(path: str, x: GroupObservation, y: GroupObservation) -> None:
        keyed({f"{t}-{p}": o for t, p, o in x.committed}, {f"{t}-{p}": o for t, p, o in y.committed},
              f"{path}.committed", differ)

    def by_tp(parts) -> dict:
        return {f"{p.topic}-{p.partition}": p for p in parts}

    differ("scenario", a.scenario, b.scenario)
    keyed({s.index: s for s in a.steps}, {s.index: s for s in b.steps}, "steps", step,
          lambda s: f"{s.op} by {s.actor}: {s.outcome}")
    keyed(by_tp(a.partitions), by_tp(b.partitions), "partitions", partition,
          lambda p: f"high_watermark={p.high_watermark} last_stable_offset={p.last_stable_offset}")
    keyed({g.group: g for g in a.groups}, {g.group: g for g in b.groups}, "groups", group,
          lambda g: _show([list(c) for c in g.committed]))
    return lines


def check_expectations(scenario: Scenario, observation: Observation) -> list[str]:
    """Every expectation of the scenario the observation violates, one sentence each (anomalies aside)."""
    problems: list[str] = []
    if observation.scenario != scenario.name:
        problems.append(f'the observation is of scenario "{observation.scenario}", not "{scenario.name}"')
    steps = observation.steps
    if type(steps) is StepColumns:  # a run's own: most steps expect nothing, so are not built to be passed
        observed, own = len(steps), steps.of(scenario.steps)  # own: the actor and op are the step's own
        for i, step in enumerate(scenario.steps):
            if i < observed and not _expects(step) and (own or steps.actor_op(i) == (step.actor, step.op)):
                continue
            problems += _check_step(i, step, steps[i] if i < observed else None)
    else:
        observed = {s.index: s for s in steps}
        for i, step in enumerate(scenario.steps):
            problems += _check_step(i, step, observed.get(i))
    partitions = {(p.topic, p.partition): p for p in observation.partitions}
    for exp in scenario.expect.partitions:
        where = f"partition {exp.topic}-{exp.partition}"
        got = partitions.get((exp.topic, exp.partition))
        if got is None:
            problems.append(f"{where}: not observed")
            continue
        for name in ("high_watermark", "last_stable_offset"):
            want = getattr(exp, name)
            if want is not None and want != getattr(got, name):
                problems.append(f"{where}: expected {name} {want}, got {getattr(got, name)}")
        for name in ("read_committed", "read_uncommitted"):
            want = getattr(exp, name)
            if want is not None and [(r.offset, r.key, r.value) for r in want] != list(getattr(got, name)):
                problems.append(f"{where}: expected {name} {_show([[r.offset, r.key, r.value] for r in want])}, "
                                f"got {_show(getattr(got, name))}")
    groups = {g.group: dict(((t, p), o) for t, p, o in g.committed) for g in observation.groups}
    for exp in scenario.expect.committed:
        got = groups.get(exp.group, {}).get((exp.topic, exp.partition))
        if not _offset_matches(exp.offset, got):
            problems.append(f"group {exp.group} {exp.topic}-{exp.partition}: expected committed offset {exp.offset}, "
                            f"got {'none' if got is None else got}")
    return problems


def _offset_matches(want: int | str, got: int | None) -> bool:
    return (got is None or got < 0) if want == "none" else got == want


def _expects(step) -> bool:
    """Whether the scenario expects anything of the step (an error, records, offsets, a delivery)."""
    return (step.expect_error is not None or getattr(step, "expect_records", None) is not None
            or getattr(step, "expect_offsets", None) is not None or getattr(step, "expect_delivery", None) is not None)


def _check_step(index: int, step, got: StepObservation | None) -> list[str]:
    if not _expects(step) and got is not None and got.actor == step.actor and got.op == step.op:
        return []  # most steps of a run: nothing expected of them, observed where they belong
    where = f"steps[{index}] ({step.op} by {step.actor})"
    if got is None:
        return [f"{where}: not observed"] if _expects(step) else []
    if (got.actor, got.op) != (step.actor, step.op):
        return [f"{where}: the observation at this index is {got.op} by {got.actor}"]
    problems = []
    if step.expect_error == "NONE" and got.outcome != OK:
        problems.append(f"{where}: expected success, got {got.outcome}")
    elif step.expect_error not in (None, "NONE") and got.outcome != step.expect_error:
        problems.append(f"{where}: expected error {step.expect_error}, "
                        f"got {'success' if got.outcome == OK else got.outcome}")
    if isinstance(step, Consume) and step.expect_records is not None:
        records = got.values.get("records", [])
        if len(records) != len(step.expect_records) or not all(
                _record_matches(want, have) for want, have in zip(step.expect_records, records)):
            want = [[r.offset, r.key, r.value] if r.topic is None else [r.topic, r.partition, r.offset, r.key, r.value]
                    for r in step.expect_records]
            problems.append(f"{where}: expected records {_show(want)}, got {_show(records)}")
    if isinstance(step, (Position, Committed)) and step.expect_offsets is not None:
        offsets = {(t, p): o for t, p, o in got.values.get("offsets", [])}
        for want in step.expect_offsets:
            have = offsets.get((want.topic, want.partition))
            if not _offset_matches(want.offset, have):
                problems.append(f"{where}: expected offset {want.offset} for {want.topic}-{want.partition}, "
                                f"got {'none' if have is None or have < 0 else have}")
    if isinstance(step, Produce) and step.expect_delivery is not None:
        problems += _check_delivery(where, step.expect_delivery, got.values)
    return problems


def _check_delivery(where: str, want: ExpectedDelivery, values: dict[str, Any]) -> list[str]:
    delivered, failed = values.get("delivery"), values.get("delivery_error")
    got = ("no delivery report" if delivered is None and failed is None
           else f"delivery error {failed['name']}" if failed is not None
           else f"delivery at offset {delivered[2]}")
    if want.error not in (None, "NONE"):
        if failed is None or failed["name"] != want.error:
            return [f"{where}: expected delivery error {want.error}, got {got}"]
        return [f"{where}: expected the delivery error's {flag} to be {str(value).lower()}, got "
                f"{str(failed[flag]).lower()}"
                for flag, value in (("fatal", want.fatal), ("retriable", want.retriable), ("abortable", want.abortable))
                if value is not None and failed[flag] != value]
    if delivered is None:
        return [f"{where}: expected delivery{'' if want.offset is None else f' at offset {want.offset}'}, got {got}"]
    if want.offset is not None and delivered[2] != want.offset:
        return [f"{where}: expected delivery at offset {want.offset}, got {got}"]
    return []


def _record_matches(want: ConsumedRecord, have: list) -> bool:
    topic, partition, offset, key, value = have
    if want.topic is not None and (want.topic, want.partition) != (topic, partition):
        return False
    return (want.offset, want.key, want.value) == (offset, key, value)
