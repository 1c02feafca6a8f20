"""Jepsen's Kafka anomalies: each fires on a hand-built broken history and stays quiet on a correct one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from eosim._checkers import check_history
from eosim._checkers.anomaly import CheckResult

K, K2 = "t-0", "t-1"


def send(key, offset, value):
    return ["send", key, [offset, value]]


def poll(reads):
    return ["poll", {k: [list(p) for p in pairs] for k, pairs in reads.items()}]


def _invoked(mops):
    return [["send", m[1], m[2][1]] if m[0] == "send" else ["poll"] for m in mops]


class History:
    """Builds a Jepsen-shaped history; ``index`` and ``time`` follow the order of calls."""

    def __init__(self):
        self.ops = []
        self._pending = {}

    def _add(self, process, type_, f, value):
        op = {"index": len(self.ops), "time": 10 * len(self.ops), "process": process, "type": type_, "f": f,
              "value": value}
        self.ops.append(op)
        return op

    def begin(self, process, f, mops):
        self._pending[process] = f
        return self._add(process, "invoke", f, _invoked(mops))

    def end(self, process, mops, type_="ok"):
        return self._add(process, type_, self._pending.pop(process), mops)

    def run(self, process, f, mops, type_="ok"):
        self.begin(process, f, mops)
        return self.end(process, mops, type_)

    def other(self, process, f, value, type_="ok"):
        self._add(process, "invoke", f, value)
        return self._add(process, type_, f, value)


def found(result: CheckResult, name: str):
    return [a for a in result.anomalies + result.allowed if a.name == name]


def names(result: CheckResult) -> set[str]:
    return {a.name for a in result.anomalies + result.allowed}


def three_sends(h: History):
    """a, b, c at offsets 0, 1, 2 of K, each by its own process."""
    return [h.run(f"w{i}", "send", [send(K, i, v)]) for i, v in enumerate("abc")]


def test_clean_history_is_valid_and_empty():
    h = History()
    three_sends(h)
    h.run("r", "poll", [poll({K: [(0, "a"), (1, "b")]})])
    h.run("r", "poll", [poll({K: [(2, "c")]})])
    result = check_history(h.ops)
    assert result.valid is True
    assert result.anomalies == () and result.allowed == ()


# -- version orders ----------------------------------------------------------------------------------


def test_inconsistent_offsets_fires():
    h = History()
    a = h.run("p1", "send", [send(K, 0, "a")])
    b = h.run("p2", "send", [send(K, 0, "b")])
    result = check_history(h.ops)
    [anomaly] = found(result, "inconsistent-offsets")
    assert anomaly.witness == ({"key": K, "offset": 0, "index": 0, "values": ["a", "b"]}, a, b)
    assert result.valid is False


def test_inconsistent_offsets_quiet():
    h = History()
    h.run("p1", "send", [send(K, 0, "a")])
    h.run("p2", "send", [send(K, 1, "b")])
    assert "inconsistent-offsets" not in names(check_history(h.ops))


def test_duplicate_fires():
    h = History()
    s = h.run("p1", "send", [send(K, 0, "a")])
    r = h.run("r", "poll", [poll({K: [(0, "a"), (2, "a")]})])
    result = check_history(h.ops)
    [anomaly] = found(result, "duplicate")
    assert anomaly.witness == ({"key": K, "value": "a", "count": 2, "offsets": [0, 2]}, s, r)
    assert result.valid is False


def test_duplicate_quiet():
    h = History()
    h.run("p1", "send", [send(K, 0, "a")])
    h.run("r", "poll", [poll({K: [(0, "a")]})])
    assert "duplicate" not in names(check_history(h.ops))


def test_g1a_fires_when_a_failed_txn_value_is_polled():
    h = History()
    w = h.run("p1", "txn", [["send", K, [None, "x"]]], "fail")
    r = h.run("p2", "poll", [poll({K: [(0, "x")]})])
    result = check_history(h.ops)
    [anomaly] = found(result, "G1a")
    assert anomaly.witness == ({"key": K, "value": "x", "writer": w["index"], "reader": r["index"]}, w, r)
    assert result.valid is False


def test_g1a_quiet_for_committed_and_unknown_writers():
    h = History()
    h.run("p1", "txn", [send(K, 0, "x")])
    h.run("p2", "txn", [["send", K, [None, "y"]]], "info")
    h.run("p3", "poll", [poll({K: [(0, "x"), (1, "y")]})])
    assert "G1a" not in names(check_history(h.ops))


def test_precommitted_read_fires():
    h = History()
    t = h.run("p1", "txn", [send(K, 0, "a"), poll({K: [(0, "a")]})])
    result = check_history(h.ops)
    [anomaly] = found(result, "precommitted-read")
    assert anomaly.witness == ({"key": K, "value": "a", "op": t["index"]}, t)
    assert result.valid is False


def test_precommitted_read_quiet():
    h = History()
    h.run("p1", "txn", [send(K, 1, "b"), poll({K: [(0, "a")]})])
    h.run("p2", "send", [send(K, 0, "a")])
    assert "precommitted-read" not in names(check_history(h.ops))


def test_lost_write_fires_below_the_highest_read():
    h = History()
    _, b, _ = three_sends(h)
    h.run("r1", "poll", [poll({K: [(0, "a")]})])
    r2 = h.run("r2", "poll", [poll({K: [(2, "c")]})])
    result = check_history(h.ops)
    [anomaly] = found(result, "lost-write")
    assert anomaly.witness == ({"key": K, "value": "b", "index": 1, "max-read-index": 2, "max-read-value": "c",
                                "writer": b["index"], "max-read": r2["index"]}, b, r2)
    assert result.valid is False


def test_lost_write_quiet_when_everything_below_was_read_or_write_was_indefinite():
    h = History()
    h.run("w0", "send", [send(K, 0, "a")])
    h.run("w1", "send", [["send", K, [None, "b"]]], "info")  # indefinite, never seen: not provably lost
    h.run("w2", "send", [send(K, 2, "c")])
    h.run("r", "poll", [poll({K: [(0, "a"), (2, "c")]})])
    assert "lost-write" not in names(check_history(h.ops))


def test_unseen_is_reported_but_allowed():
    h = History()
    h.run("w", "send", [send(K, 0, "a")])
    h.run("w", "send", [send(K, 1, "b")])
    h.run("r", "poll", [poll({K: [(0, "a")]})])
    result = check_history(h.ops)
    assert result.valid is True
    [anomaly] = result.allowed
    assert anomaly.name == "unseen"
    assert anomaly.witness == ({"key": K, "count": 1, "values": ["b"]},)


def test_unseen_quiet_when_all_polled():
    h = History()
    h.run("w", "send", [send(K, 0, "a")])
    h.run("r", "poll", [poll({K: [(0, "a")]})])
    assert "unseen" not in names(check_history(h.ops))


# -- across ops of one process -------------------------------------------------------------------------


def _skipping_consumer(h: History):
    three_sends(h)
    first = h.run("r", "poll", [poll({K: [(0, "a")]})])
    second = h.run("r", "poll", [poll({K: [(2, "c")]})])
    h.run("r2", "poll", [poll({K: [(0, "a"), (1, "b"), (2, "c")]})])  # b is not lost
    return first, second


def test_poll_skip_fires_with_assign():
    h = History()
    first, second = _skipping_consumer(h)
    result = check_history(h.ops)
    [anomaly] = found(result, "poll-skip")
    assert anomaly.witness == ({"key": K, "values": ["a", "c"], "delta": 2, "skipped": ["b"],
                                "ops": [first["index"], second["index"]]}, first, second)
    assert result.valid is False and [a.name for a in result.anomalies] == ["poll-skip"]


def test_poll_skip_allowed_with_subscribe():
    h = History()
    _skipping_consumer(h)
    result = check_history(h.ops, subscribe_used=True)
    assert result.valid is True and [a.name for a in result.allowed] == ["poll-skip"]


def test_poll_skip_quiet_after_reassign_and_after_an_info_op():
    h = History()
    three_sends(h)
    h.run("r", "poll", [poll({K: [(0, "a")]})])
    h.other("r", "assign", [K2])
    h.run("r", "poll", [poll({K: [(2, "c")]})])
    h.run("q", "poll", [poll({K: [(0, "a")]})])
    h.run("q", "poll", [poll({K: [(1, "b")]})], "info")
    h.run("q", "poll", [poll({K: [(2, "c")]})])
    assert not {"poll-skip", "nonmonotonic-poll"} & names(check_history(h.ops))


def test_nonmonotonic_poll_fires():
    h = History()
    three_sends(h)
    first = h.run("r", "poll", [poll({K: [(0, "a"), (1, "b")]})])
    second = h.run("r", "poll", [poll({K: [(1, "b"), (2, "c")]})])
    result = check_history(h.ops)
    [anomaly] = found(result, "nonmonotonic-poll")
    assert anomaly.witness == ({"key": K, "values": ["b", "b"], "delta": 0,
                                "ops": [first["index"], second["index"]]}, first, second)
    assert result.valid is False


def test_nonmonotonic_poll_quiet():
    h = History()
    three_sends(h)
    h.run("r", "poll", [poll({K: [(0, "a"), (1, "b")]})])
    h.run("r", "poll", [poll({K: [(2, "c")]})])
    assert "nonmonotonic-poll" not in names(check_history(h.ops))


def test_nonmonotonic_send_fires():
    h = History()
    first = h.run("p", "send", [send(K, 1, "a")])
    second = h.run("p", "send", [send(K, 0, "b")])
    result = check_history(h.ops)
    [anomaly] = found(result, "nonmonotonic-send")
    assert anomaly.witness == ({"key": K, "values": ["a", "b"], "delta": -1,
                                "ops": [first["index"], second["index"]]}, first, second)
    assert result.valid is False


def test_nonmonotonic_send_quiet():
    h = History()
    h.run("p", "send", [send(K, 0, "a")])
    h.run("q", "send", [send(K, 1, "x")])
    h.run("p", "send", [send(K, 2, "b")])
    assert "nonmonotonic-send" not in names(check_history(h.ops))


# -- inside one op -------------------------------------------------------------------------------------


def test_int_poll_skip_fires():
    h = History()
    three_sends(h)
    r = h.run("r", "poll", [poll({K: [(0, "a"), (2, "c")]})])
    h.run("r2", "poll", [poll({K: [(1, "b")]})])
    result = check_history(h.ops)
    [anomaly] = found(result, "int-poll-skip")
    assert anomaly.witness == ({"key": K, "values": ["a", "c"], "delta": 2, "skipped": ["b"], "op": r["index"]}, r)
    assert result.valid is False


def test_int_poll_skip_quiet_for_contiguous_reads_and_rebalanced_keys():
    h = History()
    three_sends(h)
    h.run("r", "poll", [poll({K: [(0, "a"), (1, "b"), (2, "c")]})])
    h.run("q", "poll", [poll({K: [(0, "a"), (2, "c")]})])["rebalance-log"] = [{"keys": [K]}]
    assert "int-poll-skip" not in names(check_history(h.ops))


def test_int_nonmonotonic_poll_fires():
    h = History()
    three_sends(h)
    r = h.run("r", "poll", [poll({K: [(1, "b"), (0, "a")]})])
    result = check_history(h.ops)
    [anomaly] = found(result, "int-nonmonotonic-poll")
    assert anomaly.witness == ({"key": K, "values": ["b", "a"], "delta": -1, "op": r["index"]}, r)


def test_int_nonmonotonic_poll_quiet():
    h = History()
    three_sends(h)
    h.run("r", "poll", [poll({K: [(0, "a"), (1, "b")]})])
    assert "int-nonmonotonic-poll" not in names(check_history(h.ops))


def test_int_send_skip_is_allowed_and_keeps_the_run_valid():
    h = History()
    t = h.run("p", "txn", [send(K, 0, "a"), send(K, 2, "c")])
    h.run("q", "send", [send(K, 1, "b")])
    h.run("r", "poll", [poll({K: [(0, "a"), (1, "b"), (2, "c")]})])
    result = check_history(h.ops)
    assert result.valid is True and result.anomalies == ()
    # b between a and c is also a ww cycle t -> b -> t: G0, allowed too.
    assert [a.name for a in result.allowed] == ["G0", "int-send-skip"]
    [anomaly] = found(result, "int-send-skip")
    assert anomaly.witness == ({"key": K, "values": ["a", "c"], "delta": 2, "skipped": ["b"], "op": t["index"]}, t)


def test_int_send_skip_quiet():
    h = History()
    h.run("p", "txn", [send(K, 0, "a"), send(K, 1, "c")])
    assert "int-send-skip" not in names(check_history(h.ops))


def test_int_nonmonotonic_send_fires():
    h = History()
    t = h.run("p", "txn", [send(K, 1, "a"), send(K, 0, "b")])
    result = check_history(h.ops)
    [anomaly] = found(result, "int-nonmonotonic-send")
    assert anomaly.witness == ({"key": K, "values": ["a", "b"], "delta": -1, "op": t["index"]}, t)
    assert result.valid is False


def test_int_nonmonotonic_send_quiet():
    h = History()
    h.run("p", "txn", [send(K, 0, "a"), send(K, 1, "b")])
    assert "int-nonmonotonic-send" not in names(check_history(h.ops))


# -- dependency cycles ---------------------------------------------------------------------------------


def _concurrent(h: History, a_mops, b_mops):
    h.begin("p1", "txn", a_mops)
    h.begin("p2", "txn", b_mops)
    return h.end("p1", a_mops), h.end("p2", b_mops)


def test_g0_is_allowed_and_keeps_the_run_valid():
    h = History()
    t1, t2 = _concurrent(h, [send(K, 0, "x1"), send(K2, 1, "y2")], [send(K, 1, "x2"), send(K2, 0, "y1")])
    result = check_history(h.ops)
    assert result.valid is True and result.anomalies == ()
    [g0] = found(result, "G0")
    facts, *ops = g0.witness
    assert ops == [t1, t2]
    assert facts["cycle"] == [t1["index"], t2["index"], t1["index"]]
    assert facts["steps"] == [
        {"from": t1["index"], "to": t2["index"], "rels": ["ww"], "ww": {"key": K, "value": "x1", "value'": "x2"}},
        {"from": t2["index"], "to": t1["index"], "rels": ["ww"], "ww": {"key": K2, "value": "y1", "value'": "y2"}},
    ]


def test_no_cycles_in_a_serial_history():
    h = History()
    h.run("p1", "txn", [send(K, 0, "x1"), send(K2, 0, "y1")])
    h.run("p2", "txn", [poll({K: [(0, "x1")]}), send(K, 1, "x2"), send(K2, 1, "y2")])
    h.run("p1", "txn", [poll({K2: [(0, "y1"), (1, "y2")]})])
    assert not {n for n in names(check_history(h.ops)) if n.startswith("G")}


def _mutual_reads(h: History):
    return _concurrent(h, [send(K, 0, "a"), poll({K2: [(0, "b")]})], [send(K2, 0, "b"), poll({K: [(0, "a")]})])


def test_g1c_fires_without_ww_deps():
    h = History()
    t1, t2 = _mutual_reads(h)
    result = check_history(h.ops, ww_deps=False)
    [g1c] = found(result, "G1c")
    assert g1c in result.anomalies and result.valid is False
    assert g1c.witness == ({"cycle": [t1["index"], t2["index"], t1["index"]], "steps": [
        {"from": t1["index"], "to": t2["index"], "rels": ["wr"], "wr": {"key": K, "value": "a"}},
        {"from": t2["index"], "to": t1["index"], "rels": ["wr"], "wr": {"key": K2, "value": "b"}},
    ]}, t1, t2)


def test_g1c_allowed_with_ww_deps():
    h = History()
    _mutual_reads(h)
    result = check_history(h.ops)
    assert result.valid is True and [a.name for a in result.allowed] == ["G1c"]


def test_wr_edges_implied_by_the_ww_chain_still_close_the_cycle():
    h = History()
    h.begin("p1", "txn", [send(K, 0, "a"), poll({K2: [(0, "y")]})])
    h.begin("p2", "txn", [send(K2, 0, "y"), poll({K: [(0, "a"), (1, "b")]})])
    t3 = h.run("p3", "send", [send(K, 1, "b")])
    t1 = h.end("p1", [send(K, 0, "a"), poll({K2: [(0, "y")]})])
    t2 = h.end("p2", [send(K2, 0, "y"), poll({K: [(0, "a"), (1, "b")]})])
    [direct] = found(check_history(h.ops, ww_deps=False), "G1c")
    assert direct.witness[0]["cycle"] == [t1["index"], t2["index"], t1["index"]]
    # With ww edges, t1 -wr-> t2 (via "a") is implied by t1 -ww-> t3 -wr-> t2 and is not drawn.
    [via_chain] = found(check_history(h.ops), "G1c")
    assert via_chain.witness[0]["cycle"] == [t3["index"], t2["index"], t1["index"], t3["index"]]


def test_g1c_process_fires_when_an_op_reads_its_process_successor():
    h = History()
    first = h.run("p", "poll", [poll({K: [(0, "later")]})])
    second = h.run("p", "send", [send(K, 0, "later")])
    result = check_history(h.ops, ww_deps=False)
    assert [a.name for a in result.anomalies] == ["G1c-process"]  # it implies, and hides, G1c-realtime
    facts = result.anomalies[0].witness[0]
    assert facts["steps"] == [
        {"from": first["index"], "to": second["index"], "rels": ["process"]},
        {"from": second["index"], "to": first["index"], "rels": ["wr"], "wr": {"key": K, "value": "later"}},
    ]


def test_g1c_realtime_fires_across_processes():
    h = History()
    first = h.run("p", "poll", [poll({K: [(0, "later")]})])
    second = h.run("q", "send", [send(K, 0, "later")])
    result = check_history(h.ops, ww_deps=False)
    [anomaly] = result.anomalies
    assert anomaly.name == "G1c-realtime"
    assert [s["rels"] for s in anomaly.witness[0]["steps"]] == [["realtime"], ["wr"]]
    assert anomaly.witness[1:] == (first, second)


def test_g0_process_and_realtime_are_allowed():
    h = History()
    x = h.run("p", "send", [send(K, 1, "x")])
    y = h.run("p", "send", [send(K, 0, "y")])  # lands before the process's earlier send
    u = h.run("q", "send", [send(K2, 1, "u")])
    v = h.run("s", "send", [send(K2, 0, "v")])  # invoked after u completed, ordered before it
    result = check_history(h.ops)
    [g0p] = found(result, "G0-process")
    assert g0p in result.allowed
    assert g0p.witness == ({"cycle": [x["index"], y["index"], x["index"]], "steps": [
        {"from": x["index"], "to": y["index"], "rels": ["process"]},
        {"from": y["index"], "to": x["index"], "rels": ["ww"], "ww": {"key": K, "value": "y", "value'": "x"}},
    ]}, x, y)
    [g0r] = found(result, "G0-realtime")
    assert g0r in result.allowed
    assert g0r.witness == ({"cycle": [u["index"], v["index"], u["index"]], "steps": [
        {"from": u["index"], "to": v["index"], "rels": ["realtime"]},
        {"from": v["index"], "to": u["index"], "rels": ["ww"], "ww": {"key": K2, "value": "v", "value'": "u"}},
    ]}, u, v)


def test_concurrent_ops_give_no_realtime_cycle():
    h = History()
    h.begin("p", "poll", [poll({})])
    h.begin("q", "send", [send(K, 0, "v")])
    h.end("q", [send(K, 0, "v")])
    h.end("p", [poll({K: [(0, "v")]})])
    assert not {n for n in names(check_history(h.ops, ww_deps=False)) if n.startswith("G")}


# -- output -------------------------------------------------------------------------------------------


def _messy_history():
    h = History()
    three_sends(h)
    h.run("r", "poll", [poll({K: [(0, "a"), (2, "c")]})])
    h.run("p1", "txn", [["send", K2, [None, "x"]]], "fail")
    h.run("r", "poll", [poll({K2: [(0, "x")], K: [(2, "c"), (3, "c")]})])
    _concurrent(h, [send(K, 4, "d"), poll({K2: [(1, "e")]})], [send(K2, 1, "e"), poll({K: [(4, "d")]})])
    return h.ops


def test_to_json_shape():
    out = check_history(_messy_history()).to_json()
    assert out["valid"] is False
    assert out["anomaly-types"] == sorted(out["anomalies"])
    assert {"G1a", "duplicate", "int-poll-skip"} <= set(out["anomaly-types"])
    assert "G1c" in out["allowed-types"] and "G1c" in out["allowed"]
    entry = out["anomalies"]["G1a"][0]
    assert set(entry) == {"description", "witness"} and "failed" in entry["description"]


def test_output_is_byte_identical_across_runs_and_hash_seeds():
    history = _messy_history()
    local = json.dumps(check_history(history).to_json(), sort_keys=True)
    assert local == json.dumps(check_history(history).to_json(), sort_keys=True)
    code = ("import json, sys; from eosim._checkers import check_history; "
            "print(json.dumps(check_history(json.load(sys.stdin)).to_json(), sort_keys=True))")
    for seed in ("1", "2"):
        run = subprocess.run([sys.executable, "-c", code], input=json.dumps(history), capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        assert run.stdout.strip() == local


def test_g1a_is_judged_by_offset_when_an_aborted_value_is_written_again():
    """An application that redoes aborted work writes the same value again: only a read of the
    aborted offset is an aborted read (Jepsen assumes unique values; eosim's histories have offsets)."""
    h = History()
    h.run("p", "txn", [send(K, 0, "a")], type_="fail")
    h.run("p", "txn", [send(K, 2, "a")])
    h.run("c", "poll", [poll({K: [(2, "a")]})])
    assert found(check_history(h.ops), "G1a") == []
    h.run("d", "poll", [poll({K: [(0, "a")]})])
    [anomaly] = found(check_history(h.ops), "G1a")
    assert anomaly.witness[0]["reader"] == h.ops[-1]["index"]


def test_an_info_txn_counts_as_committed_only_if_its_own_offset_was_read():
    """A fenced transaction (outcome unknown) whose value was later committed elsewhere by its
    successor must not enter the version order at its aborted offset (no false duplicate)."""
    h = History()
    h.run("zombie", "txn", [send(K, 0, "a")], type_="info")
    h.run("p", "txn", [send(K, 2, "a")])
    h.run("c", "poll", [poll({K: [(2, "a")]})])
    assert found(check_history(h.ops), "duplicate") == []
    h.run("d", "poll", [poll({K: [(0, "a"), (2, "a")]})])
    assert [a.witness[0]["offsets"] for a in found(check_history(h.ops), "duplicate")] == [[0, 2]]


def test_overlapping_sends_of_one_process_count_in_invocation_order():
    """Asynchronous sends overlap in one process; acks may come back out of order (the first response was
    lost and retried). Landing in invocation order is monotonic: no nonmonotonic-send."""
    h = History()
    first = h._add("p", "invoke", "send", [["send", K, "a"]])
    second = h._add("p", "invoke", "send", [["send", K, "b"]])
    h._add("p", "ok", "send", [send(K, 1, "b")])["invoke_index"] = second["index"]
    h._add("p", "ok", "send", [send(K, 0, "a")])["invoke_index"] = first["index"]
    assert found(check_history(h.ops), "nonmonotonic-send") == []
    # Sent a then b, but b landed first: a real reordering.
    h2 = History()
    first = h2._add("p", "invoke", "send", [["send", K, "a"]])
    second = h2._add("p", "invoke", "send", [["send", K, "b"]])
    h2._add("p", "ok", "send", [send(K, 0, "b")])["invoke_index"] = second["index"]
    h2._add("p", "ok", "send", [send(K, 1, "a")])["invoke_index"] = first["index"]
    assert [a.witness[0]["values"] for a in found(check_history(h2.ops), "nonmonotonic-send")] == [["a", "b"]]


def _final_read(h, reads, complete):
    h._add("final-reader", "invoke", "poll", [["poll"]])
    h._add("final-reader", "ok", "poll", [poll(reads)])["complete"] = complete


def test_an_offsetless_ack_missing_from_a_complete_final_read_is_a_lost_write():
    h = History()
    h.run("p", "txn", [["send", K, [None, "a"]], send(K, 1, "b")])
    _final_read(h, {K: [(1, "b")]}, [K])
    [anomaly] = found(check_history(h.ops), "lost-write")
    assert anomaly.witness[0] == {"key": K, "value": "a", "offset": None, "writer": 1, "final-read": 3}


def test_a_value_acked_at_an_offset_another_record_holds_is_lost_when_a_complete_read_misses_it():
    """Issue 13: librdkafka reused an aborted batch's sequence and the leader answered the new record as a
    duplicate, with the aborted record's offset (experiments/scenarios/txn-abort-sequence-reuse.toml). No ok
    poll read anything of the key, so Jepsen's lost-write cannot bound it; the complete final read can."""
    h = History()
    h.run("p", "txn", [send(K, 0, "b")])
    _final_read(h, {K: []}, [K])
    [anomaly] = found(check_history(h.ops), "lost-write")
    assert anomaly.witness[0] == {"key": K, "value": "b", "offset": 0, "writer": 1, "final-read": 3}
    assert "acknowledged at offset 0" in anomaly.description
    incomplete = History()
    incomplete.run("p", "txn", [send(K, 0, "b")])
    _final_read(incomplete, {K: []}, [])
    assert found(check_history(incomplete.ops), "lost-write") == []


def test_a_value_jepsen_already_reports_lost_is_not_reported_twice():
    h = History()
    h.run("p", "txn", [send(K, 0, "a"), send(K, 1, "b")])
    _final_read(h, {K: [(1, "b")]}, [K])
    [anomaly] = found(check_history(h.ops), "lost-write")
    assert anomaly.witness[0]["max-read-value"] == "b"  # Jepsen's own lost-write-cases


def test_an_offsetless_ack_is_not_lost_when_read_or_when_the_final_read_was_incomplete():
    seen = History()
    seen.run("p", "txn", [["send", K, [None, "a"]]])
    _final_read(seen, {K: [(0, "a")]}, [K])
    assert found(check_history(seen.ops), "lost-write") == []
    open_txn = History()
    open_txn.run("p", "txn", [["send", K, [None, "a"]]])
    _final_read(open_txn, {K: []}, [])  # LSO < HW: the reader stopped at an open transaction
    assert found(check_history(open_txn.ops), "lost-write") == []


def test_recorded_histories_have_the_shape_check_history_requires():
    # The runners judge with check_recorded, which trusts the recorder's shape: every library scenario's history
    # (sends, polls, transactions, failures, offsets, subscriptions) passes the shape check it skips.
    from pathlib import Path

    from eosim._checkers.jepsen import _check_shape
    from eosim._runner import run_file

    library = Path(__file__).resolve().parents[2] / "experiments" / "scenarios"
    paths = sorted(library.glob("*.toml"))
    assert len(paths) > 50
    for path in paths:
        _check_shape(run_file(path).history)
