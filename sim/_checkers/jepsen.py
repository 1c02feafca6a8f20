"""eosim._checkers.jepsen
===================

Jepsen's Kafka checker (``jepsen.tests.kafka``: ``analysis``, ``allowed-error-types``) ported in spirit
to the history format of docs/design.md. Anomaly names are Jepsen's ``:errors`` keys.

Pipeline, as in Jepsen:

1. version orders per key (offset -> values) from every poll, whatever its op's outcome, and from the
   sends of ops that must have committed; "index" is the dense position among known offsets;
2. data checks on those orders: inconsistent-offsets, duplicate, lost-write, unseen, G1a,
   precommitted-read, and the skip / nonmonotonic scans across and inside ops;
3. a dependency graph of completed ops (ww: consecutive versions of a key, wr: a poll saw a send,
   plus process and realtime orders), its strongly connected components, and one short witness
   cycle per component for G0, G1c and their -process / -realtime variants (Elle's method).

Deliberate differences from Jepsen: ``unseen`` is informational (allowed), since a run need not end
with draining polls; an ``info`` op or a ``crash`` ends a process's per-key scan state, since Jepsen
retires such a process; a ``subscribe`` to a topic keeps that topic's partitions. PL-1/PL-2
"cycle-exists" summaries are not produced: every cyclic component gets an explicit cycle instead.
With ww edges, wr edges are drawn only where the ww chain does not already imply them (the rule of
Jepsen's docstring; its code draws them all): the same components and cycle types, fewer edges.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import types
from array import array
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Callable


from eosim import _history as _hist
from eosim._checkers.anomaly import Anomaly, CheckResult

Op = dict[str, Any]

_CLIENT_FS = frozenset({"send", "poll", "txn"})
_WRITE_FS = frozenset({"send", "txn"})
_READ_FS = frozenset({"poll", "txn"})

# Dependency kinds, as bits of an edge's mask.
WW, WR, PROCESS, REALTIME = 1, 2, 4, 8
_REL_NAMES = ((WW, "ww"), (WR, "wr"), (PROCESS, "process"), (REALTIME, "realtime"))

# Elle's cycle specs for the types Kafka's checker reports: (type, usable edges, required edges), in
# search order. Finding a type in a component skips the types it implies (elle.consistency-model).
_CYCLE_SPECS = (
    ("G0", WW, ()),
    ("G1c", WW | WR, (WR,)),
    ("G0-process", WW | PROCESS, (PROCESS,)),
    ("G1c-process", WW | WR | PROCESS, (WR, PROCESS)),
    ("G0-realtime", WW | REALTIME, (REALTIME,)),
    ("G1c-realtime", WW | WR | REALTIME, (WR, REALTIME)),
)
_IMPLIES = {
    "G0": {"G1c", "G0-process", "G1c-process", "G0-realtime", "G1c-realtime"},
    "G1c": {"G1c-process", "G1c-realtime"},
    "G0-process": {"G1c-process", "G0-realtime", "G1c-realtime"},
    "G1c-process": {"G1c-realtime"},
    "G0-realtime": {"G1c-realtime"},
    "G1c-realtime": set(),
}
_CYCLE_MEANING = {
    "G0": "a write cycle: Kafka transactions do not isolate writes, so this is expected",
    "G1c": "circular information flow: each op's effects reach the next one around the loop",
}
# Start edges tried per component: the shortest cycle found wins. A cycle needing two kinds of edge
# may come back as a closed walk that is not simple; past this many tries that type is given up.
_MAX_STARTS = 16


def allowed_types(*, subscribe_used: bool, ww_deps: bool) -> frozenset[str]:
    """jepsen.tests.kafka/allowed-error-types, plus the informational ``unseen``."""
    allowed = {"int-send-skip", "G0", "G0-process", "G0-realtime", "unseen"}
    if subscribe_used:  # rebalances legitimately move a consumer's position
        allowed |= {"poll-skip", "nonmonotonic-poll"}
    if ww_deps:  # no write isolation: t0 <ww t1 <wr t0 is normal
        allowed |= {"G1c", "G1c-process", "G1c-realtime"}
    return frozenset(allowed)


def check_history(history: list[Op], *, subscribe_used: bool = False, ww_deps: bool = True) -> CheckResult:
    """Jepsen's Kafka checker on ``history``, a list of op dicts (docs/api.md). A history of another
    shape raises TypeError or ValueError naming the op and the field."""
    _check_shape(history)
    return check_recorded(history, subscribe_used=subscribe_used, ww_deps=ww_deps)


def check_recorded(history: list[Op], *, subscribe_used: bool = False, ww_deps: bool = True) -> CheckResult:
    """``check_history`` of a history eosim's recorder built (sim/_history.py: a run's, on either backend), whose
    shape is right by construction: not checked again (a quarter of the checker's time on a nemesis run)."""
    source = _ColumnSource(history.recorder) if isinstance(history, _hist.Ops) else _DictSource(history)
    with _gc_paused():
        found = _Analysis(source).all_anomalies(ww_deps=ww_deps)
    return CheckResult.classify(found, allowed_types=allowed_types(subscribe_used=subscribe_used, ww_deps=ww_deps))


@contextlib.contextmanager
def _gc_paused():
    # The analysis allocates ~10^6 small acyclic objects; cyclic-GC passes over them cost a third of
    # the run and reclaim nothing (reference counting frees them).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_TYPES = frozenset({"invoke", "ok", "fail", "info"})


def _check_shape(history: Any) -> None:
    """What the analysis reads of each op, checked first, so bad input is an error that names it."""
    if not isinstance(history, (list, tuple, _hist.Ops)):
        raise TypeError(f"check_history() takes a list of op dicts (a Jepsen history), got {type(history).__name__}")
    for position, op in enumerate(history):
        if not isinstance(op, dict):
            raise TypeError(f"history[{position}] is not an op dict: {op!r}")
        for name, ok, want in (("index", lambda v: type(v) is int, "an integer"),
                               ("type", lambda v: v in _TYPES, "one of invoke, ok, fail, info"),
                               ("f", lambda v: isinstance(v, str), "a string")):
            if name not in op:
                raise ValueError(f'history[{position}] has no "{name}" field: {op!r}')
            if not ok(op[name]):
                raise ValueError(f'history[{position}] field "{name}" must be {want}, got {op[name]!r}')
        if op["f"] in _CLIENT_FS and op["type"] != "invoke":
            _check_mops(position, op.get("value"))


def _check_mops(position: int, mops: Any) -> None:
    where = f'history[{position}] field "value"'
    if mops is None:
        return
    if not isinstance(mops, (list, tuple)):
        raise ValueError(f"{where} must be a list of micro-ops, got {mops!r}")
    for mop in mops:
        if not isinstance(mop, (list, tuple)) or not mop or mop[0] not in ("send", "poll"):
            raise ValueError(f'{where}: a micro-op is ["send", key, [offset, value]] or ["poll", {{key: '
                             f"[[offset, value], ...]}}], got {mop!r}")
        if mop[0] == "send":
            if len(mop) != 3:
                raise ValueError(f'{where}: a send is ["send", key, [offset, value]], got {mop!r}')
            pairs = [mop[2]] if isinstance(mop[2], (list, tuple)) else [[None, mop[2]]]
        elif len(mop) == 1:
            continue
        elif len(mop) != 2 or not isinstance(mop[1], dict):
            raise ValueError(f'{where}: a poll is ["poll", {{key: [[offset, value], ...]}}], got {mop!r}')
        else:
            pairs = [pair for read in mop[1].values() for pair in (read if isinstance(read, (list, tuple)) else [read])]
        for pair in pairs:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2 or isinstance(pair[1], (list, dict, set)) \
                    or not (pair[0] is None or type(pair[0]) is int):
                raise ValueError(f"{where}: [offset, value] must be an integer or null and a str, number or "
                                 f"null, got {pair!r} in {mop!r}")


# -- helpers -----------------------------------------------------------------------------------------


def _vkey(value: Any) -> tuple[str, Any]:
    # Orders values of one type naturally and never compares across types.
    return (type(value).__name__, value)


def _parse(op: Op) -> tuple[dict[Any, tuple], dict[Any, tuple]]:
    """An op's sends and polls: key -> ((offset or None, value), ...) in micro-op order. Tuples, not
    lists (a long history has one per op), and each pair one tuple that every later set and map shares."""
    writes: dict[Any, Any] = {}
    reads: dict[Any, Any] = {}
    for mop in op.get("value") or ():
        if mop[0] == "send" and op["f"] in _WRITE_FS:
            v = mop[2]
            writes.setdefault(mop[1], []).append((v[0], v[1]) if isinstance(v, (list, tuple)) else (None, v))
        elif mop[0] == "poll" and len(mop) > 1 and op["f"] in _READ_FS:
            for k, pairs in mop[1].items():
                reads.setdefault(k, []).extend(p if type(p) is tuple else (p[0], p[1]) for p in pairs)
    for parsed in (writes, reads):
        for k, pairs in parsed.items():
            parsed[k] = tuple(pairs)
    return writes or _NOTHING, reads or _NOTHING


_NOTHING: Any = types.MappingProxyType({})  # one read-only empty mapping for every op without sends or polls


def _topic(key: Any) -> Any:
    return key.rsplit("-", 1)[0] if isinstance(key, str) else key


class _Order:
    """One key's version order. ``log`` maps each known offset to its values (sorted)."""

    def __init__(self, log: dict[int, list[Any]]):
        """``log``: offset -> its distinct values, in the order they were first seen (taken over)."""
        for o, vs in log.items():
            log[o] = tuple(sorted(vs, key=_vkey)) if len(vs) > 1 else (vs[0],)
        if any(a > b for a, b in itertools.pairwise(log)):
            log = {o: log[o] for o in sorted(log)}
        self.log = log
        self.by_index = [vs[0] for vs in log.values()]
        self.by_value = {v: i for i, v in enumerate(self.by_index)}

    def index_of(self, offset: int) -> int:
        """The dense index of a known offset (for witnesses only: a list scan)."""
        return list(self.log).index(offset)

    def index(self, value: Any) -> int | None:
        return self.by_value.get(value)

    def delta(self, v1: Any, v2: Any) -> int:
        i1, i2 = self.by_value.get(v1), self.by_value.get(v2)
        return 1 if i1 is None or i2 is None else i2 - i1

    def between(self, v1: Any, v2: Any) -> list[Any]:
        return self.by_index[self.by_value[v1] + 1 : self.by_value[v2]]


_EMPTY_ORDER = _Order({})
_NONE = object()  # no value (a value may be None)


def _wanted(cases: Any) -> dict[Any, set[tuple[int, Any]]]:
    wanted: dict[Any, set[tuple[int, Any]]] = {}
    for k, o, v in cases:
        wanted.setdefault(k, set()).add((o, v))
    return wanted


class _DictSource:
    """``check_history``'s ops (dicts), as the analysis reads a history: by handle (the op's position),
    each op its own witness. Parses are kept (a caller's dicts are held anyway)."""

    def __init__(self, history: list[Op]):
        self.history = history
        self._parsed: dict[int, tuple[dict, dict]] = {}

    def __len__(self) -> int:
        return len(self.history)

    def fields(self, h: int) -> tuple[int, str, Any, Any]:
        op = self.history[h]
        return op["index"], op["type"], op.get("f"), op.get("process")

    def get(self, h: int, name: str, default: Any = None) -> Any:
        return self.history[h].get(name, default)

    def op(self, h: int) -> Op:
        return self.history[h]

    def parse(self, h: int) -> tuple[dict[Any, tuple], dict[Any, tuple]]:
        parsed = self._parsed.get(h)
        if parsed is None:
            parsed = self._parsed[h] = _parse(self.history[h])
        return parsed


class _Pairs(Sequence):
    """The (offset, value) pairs of the final read, read off the observation's (offset, key, value)
    rows as they are needed: a long run's final read is not held a second time. The rows' values are
    text already (PartitionObservation's, on either backend), so a pair is the row's first and last item,
    taken in C: the analysis reads the final read several times."""

    __slots__ = ("rows",)

    def __init__(self, rows: Sequence[tuple[int, Any, Any]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return list(map(_OFFSET_VALUE, self.rows[i]))
        return _OFFSET_VALUE(self.rows[i])

    def __iter__(self) -> Any:
        return map(_OFFSET_VALUE, self.rows)


_OFFSET_VALUE = itemgetter(0, 2)
_VALUE = itemgetter(1)  # of an (offset, value) pair


class _ColumnSource:
    """The recorder's columns (sim/_history.py), as the analysis reads a history: a send is parsed
    when it is read and never held as a dict; op dicts are rendered for witnesses only."""

    def __init__(self, recorder: Any):
        self.r = recorder
        self._parsed: dict[int, tuple[dict, dict]] = {}  # the ops held as dicts, and polls

    def __len__(self) -> int:
        return len(self.r._code)

    def fields(self, h: int) -> tuple[int, str, Any, Any]:
        code = self.r._code[h]
        if code == _hist.GENERIC:
            op = self.r._obj[h]
            return op["index"], op["type"], op.get("f"), op.get("process")
        return h, _hist.TYPES[code], _hist.FS[code], self.r._process[h]

    def get(self, h: int, name: str, default: Any = None) -> Any:
        code = self.r._code[h]
        if code == _hist.GENERIC:
            return self.r._obj[h].get(name, default)
        if name == "invoke_index":
            return self.r._num[h] if code in (_hist.SEND_OK, _hist.SEND_INFO) else default
        if name == "complete":
            return self.r._complete.get(h, default)
        if name in ("index", "time", "process", "type", "f", "value"):
            return self.r.op_dict(h)[name]
        return default  # an op held as columns has no other field (not rendered to find that out)

    def op(self, h: int) -> Op:
        return self.r.op_dict(h)

    def parse(self, h: int) -> tuple[dict[Any, tuple], dict[Any, tuple]]:
        r = self.r
        code = r._code[h]
        if code == _hist.SEND_OK:
            offset = r._offset[h]
            return {r._key[h]: ((None if offset == _hist.NO_OFFSET else offset, r._obj[h]),)}, _NOTHING
        if code == _hist.SEND_INFO:
            return {None: ((None, r._obj[h]),)}, _NOTHING
        parsed = self._parsed.get(h)
        if parsed is None:
            if code == _hist.POLL_OK:  # (offset, value) tuples already: shared by every set and map
                parsed = _NOTHING, ({k: tuple(pairs) for k, pairs in r._obj[h].items()} or _NOTHING)
            elif code == _hist.FINAL_READ:
                parsed = _NOTHING, ({k: _Pairs(rows) for k, rows in r._obj[h].items()} or _NOTHING)
            else:
                parsed = _parse(r.op_dict(h))
            self._parsed[h] = parsed
        return parsed


_INVOKE, _OK, _FAIL, _INFO = range(4)
_TYPES_BY_CODE = ("invoke", "ok", "fail", "info")
_TYPE_CODES = {name: code for code, name in enumerate(_TYPES_BY_CODE)}


class _Analysis:
    """Over a source of ops read by handle (``_DictSource``, ``_ColumnSource``): the per-op columns
    below, the parses on demand; op dicts only in witnesses."""

    def __init__(self, source: Any):
        self.src = source
        self.idx = array("q")  # the op's "index"
        self.typ = bytearray()  # _INVOKE ...
        self.fn: list[Any] = []
        self.proc: list[Any] = []
        for h in range(len(source)):
            index, type_, f, process = source.fields(h)
            self.idx.append(index)
            self.typ.append(_TYPE_CODES[type_])
            self.fn.append(f)
            self.proc.append(process)
        typ, fn = self.typ, self.fn
        self.ops = array("q", (h for h in range(len(fn)) if fn[h] in _CLIENT_FS))
        self.done = array("q", (h for h in self.ops if typ[h] != _INVOKE))

        # Reads and failed writes are kept as (offset, value): a value an aborted transaction wrote may
        # be written again later (an application redoing its work), and only the aborted offset is
        # an aborted read. A send whose offset is unknown is matched by value alone.
        self.ok_reads: dict[Any, set] = {}
        self.ok_read_pairs: dict[Any, set] | None = None  # built when an info op asks (_was_read)
        self.failed: dict[Any, dict[tuple, int]] = {}
        self.unfailed_values: dict[Any, set] = {}  # built for a key when a failed send asks (_failed_writer)
        self.writer_of: dict[Any, dict[Any, int]] = {}
        parse = source.parse
        for h in self.done:
            writes, reads = parse(h)
            for k, pairs in writes.items():
                w = self.writer_of.setdefault(k, {})
                for o, v in pairs:
                    w[v] = h
                    if typ[h] == _FAIL:
                        self.failed.setdefault(k, {})[(o, v)] = h
            if typ[h] == _OK:
                for k, pairs in reads.items():
                    self.ok_reads.setdefault(k, set()).update(map(_VALUE, pairs))

        # key -> offset -> its values, from every poll and the sends of the ops that must have committed
        # (sends count only once all ok reads are known: must-have-committed needs them). Which op put
        # a value there first is looked up again for witnesses only (_first_ops).
        logs: dict[Any, dict[int, list[Any]]] = {}
        for h in self.done:
            writes, reads = parse(h)
            for source_ in ((reads, writes) if self._must_have_committed(h) else (reads,)):
                for k, pairs in source_.items():
                    log = logs.get(k)
                    if log is None:
                        log = logs[k] = {}
                    for o, v in pairs:
                        if o is not None:
                            vs = log.get(o)
                            if vs is None:
                                log[o] = [v]
                            elif v not in vs:
                                vs.append(v)
        self.orders = {k: _Order(log) for k, log in logs.items()}

    def writes(self, h: int) -> dict[Any, tuple]:
        return self.src.parse(h)[0]

    def reads(self, h: int) -> dict[Any, tuple]:
        return self.src.parse(h)[1]

    def _name(self, h: int) -> str:
        return f"{self.fn[h]} op {self.idx[h]} ({self.proc[h]}, {_TYPES_BY_CODE[self.typ[h]]})"

    def _witness(self, facts: dict[str, Any], *handles: int | None) -> tuple[dict[str, Any], ...]:
        unique = {self.idx[h]: h for h in handles if h is not None}
        return (facts, *(self.src.op(unique[i]) for i in sorted(unique)))

    def all_anomalies(self, *, ww_deps: bool) -> list[Anomaly]:
        found = [
            *self.inconsistent_offsets(),
            *self.duplicates(),
            *self.g1a(),
            *self.precommitted_reads(),
            *(lost := self.lost_writes()),
            *self.unread_lost_writes({(a.witness[0]["key"], a.witness[0]["value"]) for a in lost}),
            *self.unseen(),
            *self.poll_scans(),
            *self.send_scans(),
            *self.internal_polls(),
            *self.internal_sends(),
        ]
        self._release_data_checks()
        return found + self.cycles(ww_deps=ww_deps)

    def _release_data_checks(self) -> None:
        """The data checks are done: drop what only they read, so that the dependency graph (the
        analysis' largest structure) is not built on top of it (a long history's peak memory)."""
        for name in ("ok_reads", "ok_read_pairs", "failed", "unfailed_values"):
            delattr(self, name)
        for order in self.orders.values():
            del order.log

    def _must_have_committed(self, h: int) -> bool:
        """ok, or info with one of its sends polled by an ok op (jepsen: must-have-committed?)."""
        if self.typ[h] == _OK:
            return True
        if self.typ[h] != _INFO:
            return False
        return any(self._was_read(k, o, v) for k, pairs in self.writes(h).items() for o, v in pairs)

    def _was_read(self, key: Any, offset: Any, value: Any) -> bool:
        if offset is not None:
            if self.ok_read_pairs is None:
                self.ok_read_pairs = {}
                for h in self.done:
                    if self.typ[h] == _OK:
                        for k, pairs in self.reads(h).items():
                            self.ok_read_pairs.setdefault(k, set()).update(pairs)
            return (offset, value) in self.ok_read_pairs.get(key, ())
        return value in self.ok_reads.get(key, ())

    def _failed_writer(self, key: Any, offset: Any, value: Any) -> int | None:
        """The definitely-failed op whose send this read shows, if any."""
        failed = self.failed.get(key, {})
        if (offset, value) in failed:
            return failed[(offset, value)]
        unknown = failed.get((None, value))
        if unknown is not None and value not in self._unfailed(key):
            return unknown
        return None

    def _unfailed(self, key: Any) -> set:
        """The values of ``key`` sent by ops that did not definitely fail."""
        values = self.unfailed_values.get(key)
        if values is None:
            values = self.unfailed_values[key] = {v for h in self.done if self.typ[h] != _FAIL
                                                  for _, v in self.writes(h).get(key, ())}
        return values

    def order(self, key: Any) -> _Order:
        return self.orders.get(key, _EMPTY_ORDER)

    # -- version-order checks --------------------------------------------------------------------------

    def _first_ops(self, wanted: dict[Any, set[tuple[int, Any]]]) -> dict[tuple[Any, int, Any], int]:
        """(key, offset, value) -> the first op (in history order) that put each ``wanted`` (offset,
        value) of a key into its version order (as the orders are built), for witnesses."""
        found: dict[tuple[Any, int, Any], int] = {}
        for h in self.done:
            writes, reads = self.src.parse(h)
            for source_ in ((reads, writes) if self._must_have_committed(h) else (reads,)):
                for k, pairs in source_.items():
                    want = wanted.get(k)
                    if want:
                        for o, v in pairs:
                            if (o, v) in want:
                                found.setdefault((k, o, v), h)
        return found

    def inconsistent_offsets(self) -> list[Anomaly]:
        cases = []
        for k in sorted(self.orders, key=_vkey):
            order = self.orders[k]
            cases += [(k, o, vs, order) for o, vs in order.log.items() if len(vs) > 1]
        first = self._first_ops(_wanted((k, o, v) for k, o, vs, _ in cases for v in vs))
        return [Anomaly(
            name="inconsistent-offsets",
            description=f"Offset {o} of {k} holds {len(vs)} different values ({', '.join(map(repr, vs))}): "
                        "ops disagree about what the log contains there.",
            witness=self._witness({"key": k, "offset": o, "index": order.index_of(o), "values": list(vs)},
                                  *(first[(k, o, v)] for v in vs)))
            for k, o, vs, order in cases]

    def duplicates(self) -> list[Anomaly]:
        cases = []
        for k in sorted(self.orders, key=_vkey):
            order = self.orders[k]
            if len(order.by_value) == len(order.log) and all(len(vs) == 1 for vs in order.log.values()):
                continue  # one value per offset and no value at two: nothing written twice
            first: dict[Any, int] = {}
            offsets_of: dict[Any, list[int]] = {}  # only values at more than one offset
            for o, vs in self.orders[k].log.items():
                for v in vs:
                    if v in first:
                        offsets_of.setdefault(v, [first[v]]).append(o)
                    else:
                        first[v] = o
            del first
            cases += [(k, v, offsets_of[v]) for v in sorted(offsets_of, key=_vkey) if len(offsets_of[v]) > 1]
        first_op = self._first_ops(_wanted((k, o, v) for k, v, offsets in cases for o in offsets))
        return [Anomaly(
            name="duplicate",
            description=f"Value {v!r} appears {len(offsets)} times in {k}, at offsets "
                        f"{', '.join(map(str, offsets))}: it was written more than once.",
            witness=self._witness({"key": k, "value": v, "count": len(offsets), "offsets": offsets},
                                  *(first_op[(k, o, v)] for o in offsets)))
            for k, v, offsets in cases]

    def g1a(self) -> list[Anomaly]:
        out = []
        for h in self.done:
            if self.typ[h] != _OK:
                continue
            for k, pairs in self.reads(h).items():
                for o, v in pairs:
                    writer = self._failed_writer(k, o, v)
                    if writer is not None:
                        out.append(Anomaly(
                            name="G1a",
                            description=f"{self._name(h)} polled {v!r} from {k}, but {self._name(writer)} that "
                                        "sent it definitely failed (aborted read).",
                            witness=self._witness({"key": k, "value": v, "writer": self.idx[writer],
                                                   "reader": self.idx[h]}, writer, h)))
        return out

    def precommitted_reads(self) -> list[Anomaly]:
        out = []
        for h in self.done:
            writes, reads = self.src.parse(h)
            for k, pairs in writes.items():
                polled = {v for _, v in reads.get(k, ())}
                own = [v for _, v in pairs if v in polled]
                if own:
                    out.append(Anomaly(
                        name="precommitted-read",
                        description=f"{self._name(h)} polled {own[0]!r} from {k}, its own send, before it "
                                    "committed: Kafka never shows uncommitted records to pollers.",
                        witness=self._witness({"key": k, "value": own[0], "op": self.idx[h]}, h)))
        return out

    def unread_lost_writes(self, reported: set[tuple[Any, Any]]) -> list[Anomaly]:
        """eosim's final read is complete for a partition whose LSO reached its HW (``complete`` on the final
        poll): a committed value it did not see is lost, wherever the version order puts it, and even when it
        cannot place it (an acknowledgement without an offset: librdkafka's implicit ack; or at an offset that
        holds another record: a batch the leader answered as a duplicate of an older one). Values Jepsen's
        ``lost_writes`` already ``reported`` are not reported twice."""
        out = []
        for final in self.done:
            for k in self.src.get(final, "complete", ()):
                for writer in self.done:
                    for o, v in self.writes(writer).get(k, ()):
                        if ((k, v) in reported or v in self.ok_reads.get(k, ())
                                or not self._must_have_committed(writer)):
                            continue
                        if o is None and v in self.order(k).by_value:
                            continue  # the same value, sent again, was placed: lost_writes judges it
                        reported.add((k, v))
                        acked = "without an offset" if o is None else f"at offset {o}"
                        out.append(Anomaly(
                            name="lost-write",
                            description=f"{self._name(writer)} sent {v!r} to {k} and it was acknowledged {acked}; "
                                        f"{self._name(final)} read {k} to its end and never saw it.",
                            witness=self._witness({"key": k, "value": v, "offset": o, "writer": self.idx[writer],
                                                   "final-read": self.idx[final]}, writer, final)))
        return out

    def lost_writes(self) -> list[Anomaly]:
        """Jepsen's lost-write-cases: values whose *last* index is at or below the highest index an
        ok poll surely reached, never polled by an ok op, from writers that must have committed."""
        out = []
        for k in sorted(self.ok_reads, key=_vkey):
            read, order = self.ok_reads[k], self.orders.get(k)
            if order is None:
                continue
            later: dict[Any, int] = {}  # the last index of a value seen again at a later one
            if len(order.by_value) == len(order.log) and all(len(vs) == 1 for vs in order.log.values()):
                first_index = order.by_value  # one value per offset, none twice: the same map, not built again
            else:
                first_index = {}
                for i, vs in enumerate(order.log.values()):
                    for v in vs:
                        if v in first_index:
                            later[v] = i
                        else:
                            first_index[v] = i
            top = max((v for v in read if v in first_index), key=lambda v: (first_index[v], _vkey(v)), default=_NONE)
            if top is _NONE:
                continue
            bound = first_index[top]
            unread = [v for v in first_index if later.get(v, first_index[v]) <= bound and v not in read]
            max_read = None
            for v in sorted(unread, key=lambda v: (later.get(v, first_index[v]), _vkey(v))):
                writer = self.writer_of.get(k, {}).get(v)
                if writer is None or not self._must_have_committed(writer):
                    continue
                if max_read is None:
                    max_read = next(r for r in self.done if self.typ[r] == _OK
                                    and any(v == top for _, v in self.reads(r).get(k, ())))
                out.append(Anomaly(
                    name="lost-write",
                    description=f"{self._name(writer)} sent {v!r} to {k} (index {first_index[v]}), and a poll "
                                f"reached {top!r} at index {bound} beyond it, yet no ok poll ever saw {v!r}.",
                    witness=self._witness({"key": k, "value": v, "index": first_index[v], "max-read-index": bound,
                                           "max-read-value": top, "writer": self.idx[writer],
                                           "max-read": self.idx[max_read]}, writer, max_read)))
        return out

    def unseen(self) -> list[Anomaly]:
        sent: dict[Any, list[Any]] = {}
        for h in self.done:
            if self.typ[h] == _OK:
                for k, pairs in self.writes(h).items():
                    sent.setdefault(k, []).extend(map(_VALUE, pairs))
        out = []
        for k in sorted(sent, key=_vkey):
            missing = sorted({v for v in sent[k] if v not in self.ok_reads.get(k, ())}, key=_vkey)
            if missing:
                out.append(Anomaly(
                    name="unseen",
                    description=f"{len(missing)} acknowledged value(s) sent to {k} were never polled by the end "
                                "of the history (lost, or only not yet read).",
                    witness=({"key": k, "count": len(missing), "values": missing},)))
        return out

    # -- scans across ops of one process ----------------------------------------------------------

    def _by_process(self) -> dict[Any, array]:
        procs: dict[Any, array] = {}
        for h, p in enumerate(self.proc):
            ops = procs.get(p)
            if ops is None:
                ops = procs[p] = array("q")
            ops.append(h)
        return procs

    def _narrow(self, last: dict[Any, int], h: int) -> dict[Any, int]:
        """After an ok/info assign or subscribe only the still-assigned keys keep their history."""
        keep = set(self.src.get(h, "value") or ())
        return {k: o for k, o in last.items() if k in keep or _topic(k) in keep}

    def poll_scans(self) -> list[Anomaly]:
        out = []
        typ, fn = self.typ, self.fn
        for proc_ops in self._by_process().values():
            last: dict[Any, int] = {}
            for h in proc_ops:
                if typ[h] == _INVOKE:
                    continue
                if fn[h] in ("assign", "subscribe"):
                    if typ[h] != _FAIL:
                        last = self._narrow(last, h)
                elif fn[h] in _READ_FS:
                    reads = self.reads(h)
                    for k in sorted(reads, key=_vkey):
                        prev = last.get(k)
                        if prev is None or not reads[k]:
                            continue
                        order = self.order(k)
                        v1, v2 = self.reads(prev)[k][-1][1], reads[k][0][1]
                        delta = order.delta(v1, v2)
                        if delta > 1:
                            skipped = order.between(v1, v2)
                            out.append(Anomaly(
                                name="poll-skip",
                                description=f"Process {self.proc[h]} polled {v1!r} from {k} in op "
                                            f"{self.idx[prev]}, then {v2!r} in op {self.idx[h]}, skipping "
                                            f"{len(skipped)} value(s) in between.",
                                witness=self._witness({"key": k, "values": [v1, v2], "delta": delta,
                                                       "skipped": skipped, "ops": [self.idx[prev], self.idx[h]]},
                                                      prev, h)))
                        elif delta < 1:
                            out.append(Anomaly(
                                name="nonmonotonic-poll",
                                description=f"Process {self.proc[h]} polled {v1!r} from {k} in op "
                                            f"{self.idx[prev]}, then went back to {v2!r} in op {self.idx[h]} "
                                            f"({-delta} index(es) back, or a repeat).",
                                witness=self._witness({"key": k, "values": [v1, v2], "delta": delta,
                                                       "ops": [self.idx[prev], self.idx[h]]}, prev, h)))
                    if typ[h] == _OK:
                        last.update((k, h) for k in reads if reads[k])
                if typ[h] == _INFO or fn[h] == "crash":
                    last = {}
        return out

    def send_scans(self) -> list[Anomaly]:
        out = []
        typ, fn, idx = self.typ, self.fn, self.idx
        for proc_ops in self._by_process().values():
            last: dict[Any, int] = {}
            # A process may have several asynchronous sends in flight: they count in the order they were
            # sent (their invocations), not in the order their acknowledgements came back. Invocations
            # and failures change nothing here: left out before sorting.
            counted: Any = array("q", (h for h in proc_ops if typ[h] != _INVOKE and typ[h] != _FAIL))
            sent = lambda h: self.src.get(h, "invoke_index", idx[h])  # noqa: E731
            if any(sent(a) > sent(b) for a, b in itertools.pairwise(counted)):  # else sorted already
                counted = sorted(counted, key=sent)
            for h in counted:
                if fn[h] in ("assign", "subscribe"):
                    last = self._narrow(last, h)
                elif fn[h] in _WRITE_FS:
                    writes = self.writes(h)
                    for k in sorted(writes, key=_vkey):
                        prev = last.get(k)
                        if prev is not None:
                            v1, v2 = self.writes(prev)[k][-1][1], writes[k][0][1]
                            delta = self.order(k).delta(v1, v2)
                            if delta < 1:
                                out.append(Anomaly(
                                    name="nonmonotonic-send",
                                    description=f"Process {self.proc[h]} sent {v1!r} to {k} in op "
                                                f"{idx[prev]}, then {v2!r} in op {idx[h]}, which landed "
                                                f"{-delta} index(es) earlier (or at the same place).",
                                    witness=self._witness({"key": k, "values": [v1, v2], "delta": delta,
                                                           "ops": [idx[prev], idx[h]]}, prev, h)))
                    last.update((k, h) for k in writes)
                if typ[h] == _INFO or fn[h] == "crash":
                    last = {}
        return out

    # -- scans inside one op --------------------------------------------------------------------------

    def _internal(self, h: int, k: Any, pairs: Any, what: str) -> list[Anomaly]:
        """Consecutive values of one op's (offset, value) ``pairs`` of ``k``, in one pass (a final read
        is a whole log: no list of its values or their indices)."""
        out = []
        order = self.order(k)
        by_value = order.by_value
        verb = "polled {} then {} from" if what == "poll" else "sent {} then {} to"
        v2 = i2 = None
        for n, (_, v) in enumerate(pairs):
            v1, i1, v2, i2 = v2, i2, v, by_value.get(v)
            if not n:
                continue
            delta = 1 if i1 is None or i2 is None else i2 - i1
            if delta == 1:
                continue
            if delta > 1:
                skipped = order.between(v1, v2)
                extra = ("other writers' values landed between its sends (expected: Kafka does not "
                         "isolate transactional writes)" if what == "send" else "skipping part of the log")
                out.append(Anomaly(
                    name=f"int-{what}-skip",
                    description=f"{self._name(h)} {verb.format(repr(v1), repr(v2))} {k}; {len(skipped)} value(s) "
                                f"lie between them in the log: {extra}.",
                    witness=self._witness({"key": k, "values": [v1, v2], "delta": delta, "skipped": skipped,
                                           "op": self.idx[h]}, h)))
            else:
                out.append(Anomaly(
                    name=f"int-nonmonotonic-{what}",
                    description=f"{self._name(h)} {verb.format(repr(v1), repr(v2))} {k}, but {v2!r} is at or "
                                f"before {v1!r} in the log ({delta}).",
                    witness=self._witness({"key": k, "values": [v1, v2], "delta": delta, "op": self.idx[h]}, h)))
        return out

    def internal_polls(self) -> list[Anomaly]:
        out = []
        for h in self.done:
            reads = self.reads(h)
            if not reads:
                continue
            rebalanced = {k for event in self.src.get(h, "rebalance-log") or () for k in event.get("keys", ())}
            for k in sorted(reads, key=_vkey):
                if k not in rebalanced and len(reads[k]) > 1:
                    out += self._internal(h, k, reads[k], "poll")
        return out

    def internal_sends(self) -> list[Anomaly]:
        out = []
        for h in self.done:
            writes = self.writes(h)
            for k in sorted(writes, key=_vkey):
                if len(writes[k]) > 1:
                    out += self._internal(h, k, writes[k], "send")
        return out

    # -- dependency cycles ----------------------------------------------------------------------------

    def graph(self, *, ww_deps: bool) -> _Graph:
        """Dependencies between completed send/poll/txn ops, as raw edges in the order they are drawn
        (one per kind and reason; see :class:`_Graph`)."""
        idx, typ = self.idx, self.typ
        g = _Graph(self.done, len(self.typ))
        add = g.add

        # breaks[k][i]: how many versions of k up to index i may lack their ww edge from the previous one.
        breaks: dict[Any, array] = {}
        if ww_deps:
            for k in sorted(self.writer_of, key=_vkey):
                writers = self.writer_of[k]
                order = self.order(k)
                key = g.key_id(k)
                for v2, op2 in writers.items():
                    i2 = order.index(v2)
                    if not i2:
                        continue
                    op1 = writers.get(order.by_index[i2 - 1])
                    if op1 is not None and op1 != op2:
                        add(op1, op2, WW, key, i2)
                breaks[k] = array("q", itertools.accumulate(
                    0 if v in writers and order.by_value[v] == i else 1 for i, v in enumerate(order.by_index)))

        for h in self.done:
            for k, pairs in self.reads(h).items():
                writers = self.writer_of.get(k)
                if not writers:
                    continue
                # With ww edges, a read below the reader's highest read of k is already implied (ww
                # chain + the top read's wr) when no version in between lacks its ww edge: skip it.
                # Reachability, hence every SCC and cycle type, is unchanged (Jepsen's docstring rule).
                chain, top = breaks.get(k), -1
                if chain is not None:
                    by_value = self.order(k).by_value
                    indices = [by_value.get(v) if v in writers else None for _, v in pairs]
                    top = max((i for i in indices if i is not None), default=-1)
                key = g.key_id(k)
                for n, (_, v) in enumerate(pairs):
                    writer = writers.get(v)
                    if writer is None or writer == h:
                        continue
                    if top > 0:
                        i = indices[n]
                        if i is not None and i < top and chain[i] == chain[top]:
                            continue
                    add(writer, h, WR, key, g.wr_value(v))
        del breaks

        last_ok: dict[Any, int] = {}
        for h in self.done:
            if typ[h] == _OK:
                prev = last_ok.get(self.proc[h])
                if prev is not None:
                    add(prev, h, PROCESS)
                last_ok[self.proc[h]] = h

        # Realtime (elle.core/realtime-graph): link each ok completion to the completions of later
        # invocations, keeping only a frontier so the edges stay a transitive reduction.
        completion = array("q", bytes(8 * len(typ)))  # an invocation's handle -> its completion's + 1
        pending: dict[Any, int] = {}
        for h in self.ops:
            p = self.proc[h]
            if typ[h] == _INVOKE:
                pending[p] = h
            elif p in pending:
                completion[pending.pop(p)] = h + 1
        frontier: dict[int, None] = {}
        linked_at_invoke: dict[int, list[int]] = {}
        for h in self.ops:
            if typ[h] == _INVOKE:
                c = completion[h] - 1
                if c >= 0:
                    linked_at_invoke[c] = list(frontier)
                    for a in frontier:
                        add(a, c, REALTIME)
            elif typ[h] == _OK:
                for a in linked_at_invoke.pop(h, ()):
                    frontier.pop(a, None)
                frontier[h] = None
        return g

    def cycles(self, *, ww_deps: bool) -> list[Anomaly]:
        graph = self.graph(ww_deps=ww_deps)
        alive = graph.trim()
        if not any(alive):  # acyclic: no component to look into
            return []
        edges = graph.edges(alive, self.order, self.idx)
        del graph, alive
        core = set(edges)
        import networkx as nx  # only now: importing it is a tenth of a second of every CLI start

        g = nx.DiGraph()
        g.add_nodes_from(core)
        g.add_edges_from((a, b) for a in core for b in edges[a])
        sccs = sorted((sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1), key=lambda c: c[0])
        op_of = {self.idx[h]: h for h in self.done if self.idx[h] in core}
        out = []
        for scc in sccs:
            members = set(scc)
            succ = {u: [(v, e[0]) for v, e in sorted(edges[u].items()) if v in members] for u in scc}
            skip: set[str] = set()
            for name, usable, required in _CYCLE_SPECS:
                if name in skip:
                    continue
                cycle = _find_cycle(scc, succ, usable, required)
                if cycle is not None:
                    out.append(self._explain(name, cycle, usable, edges, op_of))
                    skip |= _IMPLIES[name]
        return out

    def _explain(self, name: str, cycle: list[int], usable: int, edges: dict[int, dict[int, list]],
                 op_of: dict[int, int]) -> Anomaly:
        steps, texts = [], []
        for a, b in zip(cycle, cycle[1:] + cycle[:1]):
            mask, ww, wr = edges[a][b]
            rels = [(bit, rel) for bit, rel in _REL_NAMES if mask & usable & bit]
            step: dict[str, Any] = {"from": a, "to": b, "rels": [rel for _, rel in rels]}
            for bit, rel in rels:
                if bit == WW:
                    k, v1, v2 = ww
                    step["ww"] = {"key": k, "value": v1, "value'": v2}
                    texts.append(f"op {a} sent {v1!r} to {k} just before op {b} sent {v2!r}")
                elif bit == WR:
                    k, v = wr
                    step["wr"] = {"key": k, "value": v}
                    texts.append(f"op {a} sent {v!r} to {k}, which op {b} polled")
                elif bit == PROCESS:
                    texts.append(f"process {self.proc[op_of[a]]} did op {a} before op {b}")
                else:
                    texts.append(f"op {a} completed before op {b} was invoked")
            steps.append(step)
        meaning = _CYCLE_MEANING[name.split("-")[0]]
        return Anomaly(
            name=name,
            description=f"A cycle of {len(cycle)} ops: {'; '.join(texts)}; and so back to op {cycle[0]}. "
                        f"This is {meaning}.",
            witness=self._witness({"cycle": [*cycle, cycle[0]], "steps": steps}, *(op_of[n] for n in cycle)))


class _Graph:
    """The dependency graph of the completed ops, compact: each edge as drawn (one per kind and reason,
    so a pair of ops may have several) in arrays of node numbers, kinds and label references. Only the
    nodes that can be on a cycle (``trim``) become the ``edges`` map the cycle search reads, with each
    pair's kinds merged and its first ww and wr labels, as they were drawn."""

    def __init__(self, done: array, n: int):
        self.nodes = array("q")  # node -> its op's handle
        self.node_of = array("q", bytes(8 * n))  # handle -> node + 1 (0: not a node)
        for h in done:
            self.nodes.append(h)
            self.node_of[h] = len(self.nodes)
        # 4-byte node numbers and labels (under 2^31 nodes and versions): a long history has several
        # edges per op
        self.src, self.dst, self.kind = array("i"), array("i"), bytearray()
        self.label_key, self.label = array("i"), array("i")  # ww: key, version index; wr: key, wr_values
        self.keys: list[Any] = []
        self._key_ids: dict[Any, int] = {}
        self.wr_values: list[Any] = []

    def key_id(self, key: Any) -> int:
        i = self._key_ids.get(key)
        if i is None:
            i = self._key_ids[key] = len(self.keys)
            self.keys.append(key)
        return i

    def wr_value(self, value: Any) -> int:
        self.wr_values.append(value)
        return len(self.wr_values) - 1

    def add(self, a: int, b: int, kind: int, key: int = -1, label: int = 0) -> None:
        """An edge from op (handle) ``a`` to ``b``."""
        self.src.append(self.node_of[a] - 1)
        self.dst.append(self.node_of[b] - 1)
        self.kind.append(kind)
        self.label_key.append(key)
        self.label.append(label)

    def trim(self) -> bytearray:
        """Which nodes are left after repeatedly dropping those with no in- or no out-edges: they cannot
        be on a cycle, and dropping them here is much cheaper than handing them to networkx."""
        n, src, dst = len(self.nodes), self.src, self.dst
        indeg, outdeg = array("i", bytes(4 * n)), array("i", bytes(4 * n))
        for a in src:
            outdeg[a] += 1
        for b in dst:
            indeg[b] += 1
        # adjacency in compressed rows: the edges out of (into) node a are outs[out_at[a]:out_at[a + 1]]
        out_at, in_at = array("q", bytes(8 * (n + 1))), array("q", bytes(8 * (n + 1)))
        for a in range(n):
            out_at[a + 1] = out_at[a] + outdeg[a]
            in_at[a + 1] = in_at[a] + indeg[a]
        outs, ins = array("i", bytes(4 * len(src))), array("i", bytes(4 * len(src)))
        out_fill, in_fill = array("q", out_at), array("q", in_at)
        for a, b in zip(src, dst):
            outs[out_fill[a]] = b
            out_fill[a] += 1
            ins[in_fill[b]] = a
            in_fill[b] += 1
        del out_fill, in_fill
        alive = bytearray(b"\x01") * n
        doomed = [a for a in range(n) if not indeg[a] or not outdeg[a]]
        while doomed:
            a = doomed.pop()
            if not alive[a]:
                continue
            alive[a] = 0
            for b in outs[out_at[a]:out_at[a + 1]]:
                indeg[b] -= 1
                if not indeg[b] and alive[b]:
                    doomed.append(b)
            for p in ins[in_at[a]:in_at[a + 1]]:
                outdeg[p] -= 1
                if not outdeg[p] and alive[p]:
                    doomed.append(p)
        return alive

    def edges(self, alive: bytearray, order: Callable[[Any], _Order], idx: array) -> dict[int, dict[int, list]]:
        """Between the ``alive`` nodes, by op index (``idx``): ``edges[a][b]`` is ``[mask of kinds, first ww
        (key, v1, v2) or None, first wr (key, v) or None]``."""
        edges: dict[int, dict[int, list]] = {idx[self.nodes[a]]: {} for a in range(len(self.nodes)) if alive[a]}
        for e, (a, b) in enumerate(zip(self.src, self.dst)):
            if not (alive[a] and alive[b]):
                continue
            out = edges[idx[self.nodes[a]]]
            b = idx[self.nodes[b]]
            edge = out.get(b)
            if edge is None:
                edge = out[b] = [0, None, None]
            kind = self.kind[e]
            edge[0] |= kind
            if kind == WW and edge[1] is None:
                k = self.keys[self.label_key[e]]
                i2 = self.label[e]
                by_index = order(k).by_index
                edge[1] = (k, by_index[i2 - 1], by_index[i2])
            elif kind == WR and edge[2] is None:
                edge[2] = (self.keys[self.label_key[e]], self.wr_values[self.label[e]])
        return edges


def _find_cycle(scc: list[int], succ: dict[int, list[tuple[int, int]]], usable: int,
                required: tuple[int, ...]) -> list[int] | None:
    """A short simple cycle inside ``scc`` using only ``usable`` edges and at least one edge of each
    ``required`` kind, or None. Components of the projected graph first, then BFS back from a few
    start edges, keeping the shortest (Elle: SCCs, then BFS)."""
    import networkx as nx

    h = nx.DiGraph()
    h.add_nodes_from(scc)
    h.add_edges_from((u, v) for u in scc for v, m in succ[u] if m & usable)
    need = 0
    for bit in required:
        need |= bit
    first = required[0] if required else usable
    for comp in sorted((sorted(c) for c in nx.strongly_connected_components(h) if len(c) > 1), key=lambda c: c[0]):
        members = set(comp)
        adj = {u: [(v, m & usable) for v, m in succ[u] if m & usable and v in members] for u in comp}
        starts = ((u, v, m) for u in comp for v, m in adj[u] if m & first)
        best: list[int] | None = None
        for _, (u, v, m) in zip(range(_MAX_STARTS), starts):
            path = _bfs(adj, v, m & need, u, need, len(comp) if best is None else len(best) - 1)
            if path is not None and len(set(path)) == len(path):
                best = [u, *path[:-1]]
                if len(best) == 2:
                    break
        if best is not None:
            i = best.index(min(best))  # start at the earliest op, for readers
            return best[i:] + best[:i]
    return None


def _bfs(adj: dict[int, list[tuple[int, int]]], start: int, start_mask: int, goal: int, need: int,
         max_nodes: int) -> list[int] | None:
    """Shortest walk start -> goal of at most ``max_nodes`` nodes collecting every bit of ``need``
    (``start_mask`` already counts)."""
    origin = (start, start_mask)
    prev: dict[tuple[int, int], tuple[int, int] | None] = {origin: None}
    target = (goal, need)
    frontier, nodes = [origin], 1
    while target not in prev:
        if nodes >= max_nodes or not frontier:
            return None
        following = []
        for state in frontier:
            node, mask = state
            for v, m in adj[node]:
                nxt = (v, mask | (m & need))
                if nxt not in prev:
                    prev[nxt] = state
                    following.append(nxt)
        frontier, nodes = following, nodes + 1
    path = []
    state: tuple[int, int] | None = target
    while state is not None:
        path.append(state[0])
        state = prev[state]
    return path[::-1]
