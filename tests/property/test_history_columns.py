"""The recorder keeps most ops as columns (sim/_history.py) and the Jepsen analysis reads them without
op dicts (``check_recorded`` on an ``Ops`` view); ``check_history`` reads op dicts. On any history the
recorder can build, the two paths must agree: the same verdict, the same anomalies, the same witnesses.
The histories are drawn as random recorder calls, deliveries out of order, duplicated and lost values,
crashes and aborts included, so that anomalies with witnesses show up."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eosim._checkers.jepsen import check_history, check_recorded
from eosim._history import History, Ops
from eosim._observation import PartitionObservation

PROCESSES = ("p0", "p1", "c0")
VALUES = tuple(f"v{i}" for i in range(6))


@st.composite
def recorded(draw):
    clock = iter(range(10**6))
    history = History(clock=lambda: next(clock))
    pending = []  # sends waiting for their delivery report
    offsets = {0: 0, 1: 0}
    log: dict[int, list] = {0: [], 1: []}
    for _ in range(draw(st.integers(0, 40))):
        process = draw(st.sampled_from(PROCESSES))
        kind = draw(st.sampled_from(["send", "send", "deliver", "deliver", "fail", "begin", "end", "poll",
                                     "assign", "seek", "crash", "nemesis"]))
        if kind == "send":
            pending.append(history.send(process, draw(st.sampled_from(VALUES))))
        elif kind in ("deliver", "fail") and pending:
            send = pending.pop(draw(st.integers(0, len(pending) - 1)))
            if kind == "fail":
                send.failed()
                continue
            p = draw(st.integers(0, 1))
            offset = draw(st.sampled_from([offsets[p], offsets[p], max(offsets[p] - 1, 0), -1]))
            offsets[p] += 1
            send.delivered("t", p, offset)
            if offset >= 0:
                log[p].append((offset, None, send._value))
        elif kind == "begin":
            history.begin(process)
        elif kind == "end":
            history.end(process, draw(st.sampled_from(["ok", "fail", "info"])))
        elif kind == "poll":
            history.poll_invoke(process)
            p = draw(st.integers(0, 1))
            rows = draw(st.lists(st.sampled_from(log[p]), max_size=4)) if log[p] else []
            history.poll_ok(process, [("t", p, o, v) for o, _k, v in rows])
        elif kind == "assign":
            history.assigned(process, "assign", draw(st.lists(st.sampled_from(["t-0", "t-1"]), max_size=2)))
        elif kind == "seek":
            history.seek(process, "t-0", 0)
        elif kind == "crash":
            history.crash(process)
        else:
            history.nemesis("partition", {"nodes": ["p0"]})
    history.close_open()
    history.final_read([PartitionObservation(
        topic="t", partition=p, high_watermark=offsets[p], last_stable_offset=draw(st.sampled_from([offsets[p], 0])),
        read_committed=sorted(set(log[p])), read_uncommitted=sorted(set(log[p]))) for p in (0, 1)])
    return history


@st.composite
def transactions(draw):
    """Committed transactions over two partitions, delivered in any order: dependency cycles (G1c and
    its variants), whose witnesses name the graph's edges."""
    clock = iter(range(10**6))
    history = History(clock=lambda: next(clock))
    offsets, log, pending, values = {0: 0, 1: 0}, {0: [], 1: []}, [], iter(range(10**6))
    for _ in range(draw(st.integers(0, 30))):
        process = draw(st.sampled_from(PROCESSES))
        kind = draw(st.sampled_from(["begin", "send", "send", "deliver", "deliver", "end", "poll"]))
        if kind == "begin":
            history.begin(process)
        elif kind == "send":
            pending.append(history.send(process, f"x{next(values)}"))
        elif kind == "deliver" and pending:
            send, p = pending.pop(draw(st.integers(0, len(pending) - 1))), draw(st.integers(0, 1))
            send.delivered("t", p, offsets[p])
            log[p].append((offsets[p], None, send._value))
            offsets[p] += 1
        elif kind == "end":
            history.end(process, draw(st.sampled_from(["ok", "ok", "info", "fail"])))
        elif kind == "poll" and log[0]:
            history.poll_invoke(process)
            history.poll_ok(process, [("t", 0, o, v) for o, _k, v in log[0][-2:]])
    history.close_open()
    history.final_read([PartitionObservation(topic="t", partition=p, high_watermark=offsets[p],
                                             last_stable_offset=offsets[p], read_committed=log[p],
                                             read_uncommitted=log[p]) for p in (0, 1)])
    return history


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(recorded(), transactions()), st.booleans(), st.booleans())
def test_columns_and_op_dicts_agree(history, subscribe_used, ww_deps):
    ops = history.ops
    assert isinstance(ops, Ops)
    dicts = list(ops)
    assert [op["index"] for op in dicts] == list(range(len(dicts)))
    assert json.loads(json.dumps(dicts)) == dicts == ops  # JSON-shaped, and the view equals its dicts
    columnar = check_recorded(ops, subscribe_used=subscribe_used, ww_deps=ww_deps)
    by_dicts = check_history(dicts, subscribe_used=subscribe_used, ww_deps=ww_deps)
    assert columnar == by_dicts
    assert [a.witness for a in columnar.anomalies] == [a.witness for a in by_dicts.anomalies]
