"""eosim._diagram
===========

A Mermaid ``sequenceDiagram`` of a run, drawn from its trace in the spirit of the classic
producer → broker → consumer exactly-once picture: client calls and their outcomes, the requests they
cause with the offsets, sequence numbers and epochs they carry, coordinator state changes,
transaction markers and offset commits. A message a fault lost is a crossed arrow (``-x`` request,
``--x`` response), and the lines that witness an anomaly sit in a red band and end with its name.

The reading of a trace is shared with the HTML timeline (:mod:`eosim._timeline`): what a message
says (:func:`message_label`), what became of it (:func:`message_fates`) and which events witness an
anomaly (:func:`witness_marks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

from eosim._trace import ABSENT, ClientOp, TraceEvent, plain

# Chatty protocol rounds that would drown the picture: consumers show what they read in their
# client ops, and heartbeats only say "still here".
QUIET_MESSAGES = frozenset({"FetchRequest", "FetchResponse", "HeartbeatRequest", "HeartbeatResponse",
                            "ListOffsetsRequest", "ListOffsetsResponse"})
# Client ops that say nothing a learner needs: a poll that serves callbacks, the producer adopting
# the pid the InitProducerId arrow already shows.
QUIET_OPS = frozenset({"poll", "close"})

Anomalies = Mapping[str, list[dict[str, Any]]]  # results.json's "anomalies": name -> [{description, witness}]


def actor(node: str) -> str:
    """Client nodes are named ``actor#incarnation[/connection]``: one lane per actor."""
    return node.split("/", 1)[0].split("#", 1)[0]


def is_broker(node: str) -> bool:
    return node.startswith("broker-")


def _pid(fields: Mapping[str, Any]) -> str:
    if fields.get("producer_id", -1) < 0:
        return ""
    return f" pid {fields['producer_id']} epoch {fields['producer_epoch']}"


def _error(error: str) -> str:
    return "ok" if error == "NONE" else error


def _errors(results: Iterable[Any]) -> str:
    """``[[tp, error], ...]``: "ok" when all succeeded, else the failures by partition."""
    bad = [f"{r[0]} {r[-1]}" for r in results if r[-1] != "NONE"]
    return ", ".join(bad) or "ok"


def _values(records: Iterable[Mapping[str, Any]]) -> str:
    values = [str(r["value"]) for r in records]
    return "[" + ", ".join(values if len(values) <= 4 else values[:3] + [f"… {len(values)} records"]) + "]"


def message_label(msg: str, fields: Mapping[str, Any]) -> str:
    """What a request or response carries, in a few words: partitions, offsets, producer id, epoch
    and sequence numbers, the error."""
    api = msg.removesuffix("Request").removesuffix("Response")
    f = fields
    if msg == "ProduceRequest":
        parts = []
        for tp, batch in f["batches"]:
            seq = f" seq {batch['base_sequence']}" if batch["base_sequence"] >= 0 else ""
            txn = " txn" if batch["is_transactional"] else ""
            parts.append(f"{tp} {_values(batch['records'])}{_pid(batch)}{seq}{txn}")
        return f"{api} " + "; ".join(parts)
    if msg == "ProduceResponse":
        return f"{api} " + "; ".join(f"{r['partition']} @{r['base_offset']}" if r["error"] == "NONE"
                                     else f"{r['partition']} {r['error']}" for r in f["responses"])
    if msg == "InitProducerIdRequest":
        bump = f" (bump{_pid(f)})" if f["producer_id"] >= 0 else ""
        return f"{api} {f['transactional_id'] or '(idempotent)'}{bump}"
    if msg in ("InitProducerIdResponse", "EndTxnResponse"):
        return f"{api} {_error(f['error'])}{_pid(f)}"
    if msg == "AddPartitionsToTxnRequest":
        verify = " verify-only" if f["verify_only"] else ""
        return f"{api} {', '.join(f['partitions'])}{_pid(f)}{verify}"
    if msg == "AddOffsetsToTxnRequest":
        return f"{api} group {f['group_id']}{_pid(f)}"
    if msg == "EndTxnRequest":
        return f"{api} {'COMMIT' if f['committed'] else 'ABORT'}{_pid(f)}"
    if msg == "WriteTxnMarkersRequest":
        e = f["entry"]
        return f"{api} {e['result']} {', '.join(e['partitions'])}{_pid(e)}"
    if msg in ("TxnOffsetCommitRequest", "OffsetCommitRequest"):
        offsets = ", ".join(f"{tp}→{o}" for tp, o in f["offsets"])
        return f"{api} {f['group_id']} {offsets}{_pid(f)}"
    if msg == "OffsetFetchRequest":
        return f"{api} {f['group_id']} {', '.join(f['partitions'])}"
    if msg == "OffsetFetchResponse":
        got = ", ".join(f"{tp}→{o}" if e == "NONE" else f"{tp} {e}" for tp, o, e in f["results"])
        return f"{api} {got}" if f["error"] == "NONE" else f"{api} {f['error']}"
    if msg == "JoinGroupRequest":
        return f"{api} {f['group_id']}"
    if msg == "JoinGroupResponse":
        if f["error"] != "NONE":
            return f"{api} {f['error']}"
        return f"{api} generation {f['generation_id']}" + (" leader" if f["leader"] == f["member_id"] else "")
    if msg == "SyncGroupResponse":
        if f["error"] != "NONE":
            return f"{api} {f['error']}"
        return f"{api} {', '.join(f['assignment'])}"
    if msg == "FetchRequest":
        return f"{api} " + ", ".join(f"{tp}@{o}" for tp, o in f["partitions"])
    if "results" in f:
        return f"{api} {_errors(f['results'])}"
    if "error" in f:
        return f"{api} {_error(f['error'])}"
    return api


def _key(node: str, dst: str, correlation_id: int, msg: str) -> tuple[str, str, int, str]:
    return node, dst, correlation_id, msg


def message_fates(events: list[TraceEvent]) -> dict[int, str]:
    """``seq`` of each message a fault touched -> what happened to it ("dropped by rule X",
    "delayed 200 ms by ...", "lost: broker down", ...). A message is lost when its ``fate`` starts
    with ``lost``."""
    last: dict[tuple[str, str, int, str], int] = {}
    fates: dict[int, str] = {}
    for ev in events:
        kind = ev.kind
        if kind in ("net.request", "net.response"):
            last[_key(ev.node, ev.dst, ev.correlation_id, ev.msg)] = ev.seq
            continue
        if kind == "net.drop":
            seq = last.get(_key(ev.node, ev.dst, ev.correlation_id, ev.msg))
            why = "broker down" if ev.down else "connection closed" if ev.closed else "dropped"
            if seq is not None and seq not in fates:
                fates[seq] = f"lost: {why}"
            continue
        # a fault on one message (fault.arm and the faults on nodes name none)
        if kind not in _MESSAGE_FAULTS or ev.correlation_id is ABSENT:
            continue
        seq = last.get(_key(ev.src, ev.dst, ev.correlation_id, ev.msg))
        if seq is None:
            continue
        what = kind.removeprefix("fault.")
        rule = ev.rule
        if what == "drop":
            fates[seq] = f"lost: dropped by {rule}"
        elif what == "disconnect":
            fates[seq] = f"lost: {rule} closes the connection"
        elif what == "hold":
            fates[seq] = f"held by {rule} until the heal"
        elif what == "error":
            done = "applied, then " if ev.after_apply else ""
            fates[seq] = f"{rule}: {done}answered {ev.error}"
        elif what == "delay" and rule not in ("clog", "pause"):  # clogs and pauses show as their windows
            fates[seq] = f"delayed {ev.ms} ms by {rule}"
    return fates


_MESSAGE_FAULTS = frozenset({"fault.drop", "fault.hold", "fault.delay", "fault.disconnect", "fault.error"})


# -- anomalies and their witnesses ------------------------------------------------------------------

# A history op of function f shows in the trace as these client ops at its invoke or completion time.
_OPS_OF = {"send": ("produce", "delivery"), "poll": ("consume",),
           "txn": ("begin_transaction", "produce", "commit_transaction", "abort_transaction"),
           "assign": ("assign",), "subscribe": ("subscribe",), "crash": ("crash",)}


def _records(facts: Mapping[str, Any]) -> tuple[set[tuple[str, int]], set[tuple[str, str]]]:
    """The (partition, offset) and (partition, value) pairs a witness' facts name."""
    offsets: set[tuple[str, int]] = set()
    values: set[tuple[str, str]] = set()
    if "key" in facts:
        tp = facts["key"]
        offsets |= {(tp, o) for o in facts.get("offsets", ())}
        values |= {(tp, str(v)) for v in ([facts["value"]] if "value" in facts else facts.get("skipped", ()))}
    if "input" in facts:  # the pipeline checker: the input record and its outputs
        tp, offset, _value = facts["input"]
        offsets.add((tp, offset))
        offsets |= {(tp, o) for tp, o in facts["outputs"]}
    return offsets, values


def witness_marks(events: list[TraceEvent], anomalies: Anomalies) -> dict[int, list[str]]:
    """``seq`` -> the names of the anomalies whose witness the event is part of: trace events a
    witness names (the oracle's), the client ops of the history ops it names (by process and
    time), and the appends, produce responses, markers and reads of the records its facts name."""
    marks: dict[int, list[str]] = {}

    def mark(seq: int, name: str) -> None:
        if name not in marks.setdefault(seq, []):
            marks[seq].append(name)

    for name in sorted(anomalies):
        seqs: set[int] = set()
        ops: set[tuple[str, int, str]] = set()
        offsets: set[tuple[str, int]] = set()
        values: set[tuple[str, str]] = set()
        for instance in anomalies[name]:
            for w in instance.get("witness", ()):
                if "seq" in w and "kind" in w:
                    seqs.add(w["seq"])
                elif "process" in w and "f" in w:
                    if w["process"] == "final-reader":  # the checker's own read of the final state
                        continue
                    ops |= {(actor(w["process"]), w["time"], op) for op in _OPS_OF.get(w["f"], ())}
                else:
                    o, v = _records(w)
                    offsets |= o
                    values |= v
        for ev in events:
            kind = ev.kind
            hit = ev.seq in seqs
            if kind == "client.op":
                hit = hit or (actor(ev.node), ev.t, ev.op) in ops
                args, result = ev.call()
                for rec in result or () if ev.op == "consume" else ():
                    tp = f"{rec['topic']}-{rec['partition']}"
                    hit = hit or (tp, rec["offset"]) in offsets or (tp, str(rec["value"])) in values
                if ev.op in ("produce", "delivery"):  # the witness' record, sent and reported
                    partition = args.get("partition", (result or {}).get("partition"))
                    hit = hit or (f"{args['topic']}-{partition}", str(args["value"])) in values
            elif kind == "log.append":
                tp = str(ev.tp)
                hit = hit or any((tp, o) in offsets or (tp, str(v)) in values for o, _k, v in plain(ev.records))
            elif kind == "log.marker":
                hit = hit or (str(ev.tp), ev.offset) in offsets
            elif kind == "net.response" and ev.msg == "ProduceResponse":
                hit = hit or any((r["partition"], r["base_offset"]) in offsets for r in plain(ev.fields)["responses"])
            elif kind == "net.request" and ev.msg == "ProduceRequest":
                hit = hit or any((tp, str(r["value"])) in values
                                 for tp, batch in plain(ev.fields)["batches"] for r in batch["records"])
            if hit:
                mark(ev.seq, name)
    return marks


# -- the Mermaid text ------------------------------------------------------------------------------


_ESCAPES = str.maketrans({"#": "#35;", ";": "#59;"})


def _text(value: Any) -> str:
    """Mermaid message text: ``;`` and ``#`` are syntax, and older Mermaids read a bare ``end`` as the
    end of a block (its entity code shows the same word)."""
    # bytes that are not UTF-8 (lone surrogates, eosim._history) shown as \xff escapes: printable text
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").translate(_ESCAPES)
    return " ".join("#101;nd" if word == "end" else word for word in text.split(" "))


def _id(lane: str) -> str:
    """A participant id Mermaid cannot misread as an arrow (``broker-1-->>p1``); the lane's name is
    its alias."""
    return "".join(c if c.isalnum() else "_" for c in lane)


def _span(a: str, b: str) -> str:
    return a if a == b else f"{a},{b}"


def _op(ev: ClientOp) -> str | None:
    """A client op as a learner reads it, or None for an op that says nothing."""
    op, (args, result) = ev.op, ev.call()
    if ev.error is not ABSENT:
        return f"{op} → {ev.error}"
    if op in QUIET_OPS:
        return None
    if op == "produce":
        where = f"-{args['partition']}" if "partition" in args else ""
        return f"produce {args['value']} to {args['topic']}{where}"
    if op == "delivery":
        if result["offset"] < 0:
            return f"delivery {args['value']}: {result['status']}, no offset"
        return f"delivery {args['value']} @{args['topic']}-{result['partition']}:{result['offset']}"
    if op == "consume":
        got = [f"{r['value']}@{r['offset']}" for r in result or ()]
        return f"consume → [{', '.join(got)}]" if got else "consume → nothing"
    if op in ("commit", "send_offsets_to_transaction"):
        offsets = ", ".join(f"{tp}→{o}" for tp, o in args.get("offsets") or ())
        return f"{op} {offsets}".rstrip()
    if op == "committed":
        return "committed → " + ", ".join(f"{r['tp']}→{r['offset']}" for r in result or ())
    if op == "position":
        return "position → " + ", ".join(f"{tp}→{o}" for tp, o in result or ())
    return op


def _fault_note(what: str, ev: Any, note) -> Line | None:
    """Fault events that are not about one message: ⚡ on the lanes they strike, or the nemesis'."""
    rule = ev.rule
    on_a_message = what in ("drop", "hold", "delay") or (what in ("disconnect", "error") and ev.correlation_id is not ABSENT)
    if what == "arm" or on_a_message:
        return None  # on the message's arrow; arming a rule changes nothing yet
    if what == "error":  # the transaction coordinator's own append to __transaction_state
        done = " after appending it" if ev.after_apply else ""
        return note(f"⚡ {rule}: {ev.transactional_id}'s {ev.msg} failed {ev.error}{done}", ev.broker)
    if what in ("pause", "resume"):
        sign = f"‖ paused {ev.ms} ms" if what == "pause" else "▶ wakes"
        return note(f"{sign} ({rule})", ev.nodes[0], ev.nodes[-1], timed=True)
    # partition, clog, disconnect (of nodes), heal
    parts = [what if rule == what else f"{what} ({rule})", "" if what == "heal" else ", ".join(ev.nodes),
             f"{ev.ms} ms" if what == "clog" else None]
    return note(f"⚡ {' '.join(str(p) for p in parts if p)}", timed=True)


# How much a line matters: the diagram draws only LEARN lines; the timeline shows DETAIL lines too
# and hides CHATTY ones until asked.
LEARN, DETAIL, CHATTY = 0, 1, 2


@frozen
class Line:
    """One trace event as a picture shows it. A message goes from ``nodes[0]`` to ``nodes[1]``; a
    note sits over the lanes of its ``nodes``."""

    seq: int
    t: int
    nodes: tuple[str, ...]
    text: str
    message: str | None = None  # "request" or "response"
    lost: bool = False
    timed: bool = False  # the diagram prints the note's time (client calls, faults, crashes)
    level: int = LEARN


def describe(ev: Any, fates: Mapping[int, str]) -> Line | None:
    """The picture's line for a trace event (None: no picture shows it)."""
    kind, node, t = ev.kind, ev.node, ev.t

    def note(text: str, *nodes: str, timed: bool = False, level: int = LEARN) -> Line:
        return Line(ev.seq, t, nodes or (node,), text, timed=timed, level=level)

    if kind == "client.op":
        text = _op(ev)
        return note(ev.op, timed=True, level=CHATTY) if text is None else note(text, timed=True)
    if kind in ("net.request", "net.response"):
        fate = fates.get(ev.seq)
        lost = fate is not None and fate.startswith("lost")
        text = message_label(ev.msg, plain(ev.fields)) + (f" ✗ {fate}" if lost else f" ⚡ {fate}" if fate else "")
        return Line(ev.seq, t, (node, ev.dst), text, message=kind.removeprefix("net."), lost=lost,
                    level=CHATTY if ev.msg in QUIET_MESSAGES else LEARN)
    if kind.startswith("fault."):
        return _fault_note(kind.removeprefix("fault."), ev, note)
    if kind == "net.close":
        return note(f"connection closed, {len(ev.failed)} request(s) fail", node, ev.dst)
    if kind == "txn.state":
        return note(f"{ev.transactional_id}: {ev.old} → {ev.new} (pid {ev.producer_id}, epoch {ev.producer_epoch})")
    if kind == "txn.timeout":
        return note(f"{ev.transactional_id} timed out: the coordinator "
                    f"fences (epoch {ev.producer_epoch}) and aborts it")
    if kind == "log.marker":
        return note(f"{ev.control} marker @ {ev.tp}:{ev.offset} (pid {ev.producer_id}, epoch {ev.producer_epoch})")
    if kind == "log.append":
        first, last = ev.base_offset, ev.last_offset
        where = f"@{first}" if first == last else f"@{first}..{last}"
        seq = f" seq {ev.base_sequence}" if ev.base_sequence >= 0 else ""
        pid = f" pid {ev.producer_id} epoch {ev.producer_epoch}" if ev.producer_id >= 0 else ""
        values = _values({"value": v} for _o, _k, v in plain(ev.records))
        return note(f"append {ev.tp} {where} {values}{pid}{seq}", level=DETAIL)
    if kind == "log.offsets":
        return note(f"{ev.tp} HW {ev.high_watermark} LSO {ev.last_stable_offset}", level=CHATTY)
    if kind == "log.duplicate":
        return note(f"{ev.tp} seq {ev.base_sequence} is a retry: already at @{ev.base_offset}, not written again")
    if kind == "log.reject":
        return note(f"{ev.tp} refuses seq {ev.base_sequence} "
                    f"(pid {ev.producer_id}, epoch {ev.producer_epoch}): {ev.error}")
    if kind == "log.producer_expired":
        return note(f"{ev.tp} forgets producer {ev.producer_id} (expired)")
    if kind == "group.offsets":
        return note(f"offsets {ev.group_id} {ev.tp} → {ev.offset}")
    if kind == "group.pending":
        return note(f"pending offsets {ev.group_id} {ev.tp} → {ev.offset}", level=DETAIL)
    if kind == "group.generation":
        return note(f"{ev.group_id} generation {ev.generation_id}: {', '.join(ev.members)}", level=DETAIL)
    if kind == "client.pid":
        return note(f"uses pid {ev.producer_id} epoch {ev.producer_epoch}", level=DETAIL)
    if kind in ("broker.crash", "broker.restart"):
        return note("✖ crashed" if kind == "broker.crash" else "restarted", timed=True)
    if kind in ("txn.resign", "txn.elect"):
        what = "gives up" if kind == "txn.resign" else "elected at"
        return note(f"txn coordinator {what} epoch {ev.coordinator_epoch}", timed=True)
    if kind == "txn.load":
        return note(f"loaded {ev.transactional_id}: {ev.state} (coordinator epoch {ev.coordinator_epoch})")
    if kind == "txn.log":
        return note(f"__transaction_state ← {ev.transactional_id} {ev.state}", level=CHATTY)
    return None


def lane_of(node: str) -> str:
    """The lane a node draws in: one per client actor, one per broker (its own connections too)."""
    return node.split("/", 1)[0] if is_broker(node) else actor(node)


def mermaid(events: Iterable[TraceEvent], anomalies: Anomalies | None = None) -> str:
    """The run as a Mermaid sequenceDiagram. ``anomalies`` (results.json's ``anomalies``) puts the
    lines of each witness in a red band and lists the anomalies at the end."""
    events = list(events)  # read twice more: a TraceView reads spilled events back on each pass
    anomalies = anomalies or {}
    lanes: list[str] = []

    def lane(node: str) -> str:
        name = lane_of(node)
        if name not in lanes:
            lanes.append(name)
        return name

    fates = message_fates(events)
    marks = witness_marks(events, anomalies)
    body: list[str] = []
    in_band = False
    for ev in events:
        line = describe(ev, fates)
        if line is None or line.level != LEARN:
            continue
        if line.message:
            src, dst = lane(line.nodes[0]), lane(line.nodes[1])
            if src == dst:  # the broker's own connections (markers, verification)
                continue
            arrow = ("-" if line.message == "request" else "--") + ("x" if line.lost else ">>")
            head = f"{_id(src)}{arrow}{_id(dst)}"
        else:
            head = f"Note over {_span(_id(lane(line.nodes[0])), _id(lane(line.nodes[-1])))}"
        names = marks.get(ev.seq)
        if names and not in_band:
            body.append("    rect rgb(255, 205, 210)")
        elif not names and in_band:
            body.append("    end")
        in_band = bool(names)
        text = (f"t={line.t} " if line.timed else "") + line.text + (f" ⚠ {', '.join(names)}" if names else "")
        body.append(f"{'        ' if in_band else '    '}{head}: {_text(text)}")
    if in_band:
        body.append("    end")
    if anomalies and lanes:
        body.append("    rect rgb(255, 205, 210)")
        for name in sorted(anomalies):
            for instance in anomalies[name]:
                body.append(f"        Note over {_span(_id(lanes[0]), _id(lanes[-1]))}: ⚠ {_text(name)}: "
                            f"{_text(instance['description'])}")
        body.append("    end")
    header = ["sequenceDiagram"] + [f"    participant {_id(name)}" + (f" as {name}" if _id(name) != name else "")
                                    for name in lanes]
    return "\n".join(header + body) + "\n"
