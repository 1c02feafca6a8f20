"""eosim._explain
=============

``eosim explain``: a run told step by step in plain language, from its trace (docs/cli.md,
"explain"). One line per event a learner needs: what the application called, what each client sent,
what the broker and the transaction coordinator did, each fault, and what the readers got. Protocol
chatter (heartbeats, empty fetches, offsets bookkeeping, successful acks the log lines already tell)
is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from attrs import frozen

from eosim._hints import actor_of
from eosim._trace import ABSENT, TraceEvent, plain

Event = Any  # a TraceEvent of the kind its handler is for


@frozen
class Line:
    t: int
    who: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "who": self.who, "text": self.text}

    def __str__(self) -> str:
        return f"{self.t:>7} ms  {self.who:<12} {self.text}"


def narrate(trace: Iterable[TraceEvent]) -> list[Line]:
    """The run's story, in trace order."""
    story = _Story()
    for event in trace:
        story.tell(event)
    return story.lines


def _who(node: str) -> str:
    """A trace node as a learner names it: ``p1#2/txn`` is ``p1 (2nd)``, ``broker-1/markers`` the broker."""
    if node.startswith("broker"):
        return node.split("/")[0]
    incarnation = node.split("/")[0].partition("#")[2]
    name = actor_of(node)
    return name if incarnation in ("", "1") else f"{name} (#{incarnation})"


def _values(records: Iterable[dict[str, Any]]) -> str:
    return ", ".join(repr(r.get("value")) for r in records)


def _span(first: Any, last: Any) -> str:
    return f"offset {first}" if first == last else f"offsets {first}-{last}"


def _error(fields: dict[str, Any]) -> str | None:
    error = fields.get("error")
    return error if error not in (None, "NONE") else None


class _Story:
    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.dropped_by: dict[tuple[str, int], str] = {}  # (dst, correlation id) -> the fault rule
        self.sent: set[tuple[Any, ...]] = set()  # (node, partition, values, sequence) of each batch sent

    def say(self, event: Event, text: str, who: str | None = None) -> None:
        self.lines.append(Line(event.t, who or _who(event.node), text))

    def tell(self, event: Event) -> None:
        kind = event.kind
        if kind in ("net.request", "net.response"):
            handler = _MESSAGES.get(event.msg)
            if handler is not None:
                handler(self, event, plain(event.fields))
            return
        teller = _KINDS.get(kind)
        if teller is not None:
            teller(self, event)


# --- the application's calls and the clients

def _client_op(story: _Story, e: Event) -> None:
    op, (args, result) = e.op, e.call()
    if op == "delivery":
        if e.error:
            story.say(e, f"gets a delivery report for {args.get('value')!r}: {e.error}")
        return  # a successful delivery repeats the broker's append
    if op in ("consume", "poll"):
        records = [result] if isinstance(result, dict) else (result or [])
        if e.error:
            story.say(e, f"{op}() fails: {e.error}")
        elif records:
            by_tp: dict[str, list[Any]] = {}
            for r in records:
                by_tp.setdefault(f"{r.get('topic')}-{r.get('partition')}", []).append(r)
            story.say(e, "reads " + "; ".join(f"{_values(rs)} from {tp} ({_span(rs[0].get('offset'), rs[-1].get('offset'))})"
                                              for tp, rs in by_tp.items()))
        else:
            story.say(e, f"{op}() returns nothing")
        return
    shown = {k: v for k, v in args.items() if k not in ("timeout", "num_messages")}
    call = f"{op}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"
    if e.error:  # the trace records a call when it returns
        fatal = " (fatal)" if e.fatal else ""
        story.say(e, f"{call} fails: {e.error}{fatal}")
    else:
        story.say(e, f"{call} returns")


def _client_pid(story: _Story, e: Event) -> None:
    story.say(e, f"now holds producer id {e.producer_id}, epoch {e.producer_epoch}"
                 + (f" for transactional.id {e.transactional_id!r}" if e.transactional_id else ""))


# --- requests and responses worth telling -------------------------------------------------------------

def _init_pid_request(story: _Story, e: Event, f: dict[str, Any]) -> None:
    tid = f.get("transactional_id")
    story.say(e, "asks the coordinator for a producer id" + (f" for transactional.id {tid!r}" if tid else ""))


def _init_pid_response(story: _Story, e: Event, f: dict[str, Any]) -> None:
    if _error(f):
        story.say(e, f"refuses {_who(e.dst)}'s InitProducerId: {f['error']}")


def _add_partitions_request(story: _Story, e: Event, f: dict[str, Any]) -> None:
    parts = ", ".join(f.get("partitions") or ())
    if f.get("verify_only"):
        story.say(e, f"checks with the coordinator that transaction {f.get('transactional_id')!r} includes "
                     f"{parts} before appending (KIP-890)")
    else:
        story.say(e, f"adds {parts} to its transaction")


def _results_errors(story: _Story, e: Event, f: dict[str, Any], what: str) -> None:
    errors = [f"{tp}: {err}" for tp, err, *_ in f.get("results", ()) if err not in ("NONE", None)]
    if errors or _error(f):
        story.say(e, f"answers {_who(e.dst)}'s {what} with " + ", ".join(errors or [f["error"]]))


def _produce_request(story: _Story, e: Event, f: dict[str, Any]) -> None:
    for tp, batch in f.get("batches", ()):
        ids = ""
        if batch.get("producer_id", -1) >= 0:
            ids = (f" (producer id {batch['producer_id']}, epoch {batch.get('producer_epoch')}, "
                   f"sequence {batch.get('base_sequence')})")
        values = _values(batch.get("records", ()))
        key = (e.node, tp, values, batch.get("base_sequence"))
        again = " again (a retry)" if key in story.sent else ""
        story.sent.add(key)
        story.say(e, f"sends {values} to {tp}{again}{ids}")


def _produce_response(story: _Story, e: Event, f: dict[str, Any]) -> None:
    for r in f.get("responses", ()):
        if r.get("error") not in ("NONE", None):
            story.say(e, f"answers {_who(e.dst)}'s produce to {r.get('partition')} with {r['error']}")


def _end_txn_request(story: _Story, e: Event, f: dict[str, Any]) -> None:
    story.say(e, f"asks the coordinator to {'commit' if f.get('committed') else 'abort'} its transaction")


def _end_txn_response(story: _Story, e: Event, f: dict[str, Any]) -> None:
    if _error(f):
        story.say(e, f"answers {_who(e.dst)}'s EndTxn with {f['error']}")


def _offset_fetch_response(story: _Story, e: Event, f: dict[str, Any]) -> None:
    for tp, offset, err in f.get("results", ()):
        found = f"committed offset {offset}" if offset >= 0 else "no committed offset"
        story.say(e, f"tells {_who(e.dst)} its group has {found} for {tp}"
                     + (f" ({err})" if err not in ("NONE", None) else ""))


def _list_offsets_request(story: _Story, e: Event, f: dict[str, Any]) -> None:
    where = {-2: "the beginning", -1: "the end"}
    for tp, timestamp in f.get("partitions", ()):
        story.say(e, f"looks up where {tp} {'begins' if timestamp == -2 else 'ends'} to start reading at "
                     f"{where.get(timestamp, timestamp)}")


def _list_offsets_response(story: _Story, e: Event, f: dict[str, Any]) -> None:
    for tp, err, offset in f.get("responses", ()):
        if err == "NONE":
            story.say(e, f"{_who(e.dst)} starts reading {tp} at offset {offset}", who=_who(e.node))


def _commit_request(story: _Story, e: Event, f: dict[str, Any]) -> None:
    offsets = ", ".join(f"{tp} at {o}" for tp, o in f.get("offsets", ()))
    txn = " inside its transaction" if e.msg == "TxnOffsetCommitRequest" else ""
    story.say(e, f"commits offsets {offsets} for group {f.get('group_id')!r}{txn}")


def _add_offsets_request(story: _Story, e: Event, f: dict[str, Any]) -> None:
    story.say(e, f"adds group {f.get('group_id')!r}'s offsets to its transaction")


def _join_response(story: _Story, e: Event, f: dict[str, Any]) -> None:
    if f["error"] == "MEMBER_ID_REQUIRED":
        story.say(e, f"gives {_who(e.dst)} its member id {f.get('member_id')} (MEMBER_ID_REQUIRED)")
    elif _error(f):
        story.say(e, f"refuses {_who(e.dst)}'s JoinGroup: {f['error']}")
    else:
        leader = " as the leader" if f.get("leader") == f.get("member_id") else ""
        story.say(e, f"{_who(e.dst)} joins the group{leader} (generation {f.get('generation_id')})")


def _sync_response(story: _Story, e: Event, f: dict[str, Any]) -> None:
    if _error(f):
        story.say(e, f"refuses {_who(e.dst)}'s SyncGroup: {f['error']}")
    else:
        story.say(e, f"{_who(e.dst)} is assigned {', '.join(f.get('assignment') or ()) or 'nothing'}")


def _heartbeat_response(story: _Story, e: Event, f: dict[str, Any]) -> None:
    if _error(f):
        story.say(e, f"answers {_who(e.dst)}'s heartbeat with {f['error']}")


def _consumer_heartbeat_response(story: _Story, e: Event, f: dict[str, Any]) -> None:
    if _error(f):
        story.say(e, f"answers {_who(e.dst)}'s ConsumerGroupHeartbeat with {f['error']}")
    elif f.get("assignment") is not None:
        story.say(e, f"{_who(e.dst)} is at member epoch {f.get('member_epoch')}, assigned "
                     f"{', '.join(f['assignment']) or 'nothing'}")


_MESSAGES: dict[str, Callable[[_Story, Event, dict[str, Any]], None]] = {
    "InitProducerIdRequest": _init_pid_request,
    "InitProducerIdResponse": _init_pid_response,
    "AddPartitionsToTxnRequest": _add_partitions_request,
    "AddPartitionsToTxnResponse": lambda s, e, f: _results_errors(s, e, f, "AddPartitionsToTxn"),
    "AddOffsetsToTxnRequest": _add_offsets_request,
    "AddOffsetsToTxnResponse": _end_txn_response,
    "ProduceRequest": _produce_request,
    "ProduceResponse": _produce_response,
    "EndTxnRequest": _end_txn_request,
    "EndTxnResponse": _end_txn_response,
    "OffsetFetchResponse": _offset_fetch_response,
    "ListOffsetsRequest": _list_offsets_request,
    "ListOffsetsResponse": _list_offsets_response,
    "OffsetCommitRequest": _commit_request,
    "OffsetCommitResponse": lambda s, e, f: _results_errors(s, e, f, "OffsetCommit"),
    "TxnOffsetCommitRequest": _commit_request,
    "TxnOffsetCommitResponse": lambda s, e, f: _results_errors(s, e, f, "TxnOffsetCommit"),
    "JoinGroupResponse": _join_response,
    "SyncGroupResponse": _sync_response,
    "ConsumerGroupHeartbeatResponse": _consumer_heartbeat_response,
    "HeartbeatResponse": _heartbeat_response,
    "WriteTxnMarkersResponse": lambda s, e, f: _results_errors(s, e, f, "WriteTxnMarkers"),
}


# --- the broker, the coordinator, the network and the faults -----------------------------------------

def _append(story: _Story, e: Event) -> None:
    records = plain(e.records)
    txn = "transactional " if e.transactional else ""
    span = _span(e.base_offset, e.last_offset)
    story.say(e, f"appends {txn}{', '.join(repr(r[2]) for r in records)} to {e.tp} at {span}"
                 + (f" (producer id {e.producer_id})" if e.producer_id >= 0 else ""))


def _duplicate(story: _Story, e: Event) -> None:
    story.say(e, f"recognises producer id {e.producer_id}'s batch at sequence {e.base_sequence} on {e.tp} as "
                 f"a retry of {_span(e.base_offset, e.last_offset)}: acks it without appending again")


def _reject(story: _Story, e: Event) -> None:
    story.say(e, f"rejects producer id {e.producer_id}'s batch at sequence {e.base_sequence} "
                 f"on {e.tp}: {e.error}")


def _marker(story: _Story, e: Event) -> None:
    article = "an" if e.control[:1] in "AEIOU" else "a"
    story.say(e, f"writes {article} {e.control} marker for producer id {e.producer_id} into {e.tp} at offset "
                 f"{e.offset}")


def _txn_state(story: _Story, e: Event) -> None:
    if e.old != e.new:
        story.say(e, f"coordinator: transaction {e.transactional_id!r} (epoch {e.producer_epoch}) goes "
                     f"{e.old} -> {e.new}")


def _fault(what: Callable[[Event], str]) -> Callable[[_Story, Event], None]:
    def tell(story: _Story, e: Event) -> None:
        story.say(e, f"FAULT {e.rule!r}: {what(e)}", who="nemesis")
    return tell


def _disconnect(e: Event) -> str:
    if e.correlation_id is ABSENT:
        return f"closes every connection of {', '.join(e.nodes)}"
    return f"cuts the connection of {_who(e.dst)} at the {e.msg}"


def _fault_drop(story: _Story, e: Event) -> None:
    story.dropped_by[(e.dst, e.correlation_id)] = e.rule


def _net_drop(story: _Story, e: Event) -> None:
    rule = story.dropped_by.pop((e.dst, e.correlation_id), None)
    why = f"FAULT {rule!r}" if rule else "the network"
    story.say(e, f"{why}: the {e.msg} to {_who(e.dst)} is lost", who="nemesis" if rule else "network")


_KINDS: dict[str, Callable[[_Story, Event], None]] = {
    "client.op": _client_op,
    "client.pid": _client_pid,
    "log.append": _append,
    "log.duplicate": _duplicate,
    "log.reject": _reject,
    "log.marker": _marker,
    "log.producer_expired": lambda s, e: s.say(e, f"forgets producer id {e.producer_id} on {e.tp} "
                                                     f"(producer state expired)"),
    "txn.state": _txn_state,
    "txn.timeout": lambda s, e: s.say(e, f"coordinator: transaction {e.transactional_id!r} timed out "
                                            f"(transaction.timeout.ms); it aborts it and bumps the epoch"),
    "txn.elect": lambda s, e: s.say(e, f"becomes transaction coordinator (coordinator epoch "
                                          f"{e.coordinator_epoch})"),
    "txn.resign": lambda s, e: s.say(e, f"resigns as transaction coordinator (coordinator epoch "
                                           f"{e.coordinator_epoch})"),
    "txn.load": lambda s, e: s.say(e, f"coordinator loads transaction {e.transactional_id!r} in state "
                                         f"{e.state}"),
    "broker.crash": lambda s, e: s.say(e, "CRASHES"),
    "broker.restart": lambda s, e: s.say(e, "restarts"),
    "net.close": lambda s, e: s.say(e, f"loses its connection to {_who(e.dst)}"),
    "net.drop": _net_drop,
    "fault.drop": _fault_drop,
    "fault.delay": _fault(lambda e: f"delays the {e.msg} from {_who(e.src)} to {_who(e.dst)} by {e.ms} ms"),
    "fault.hold": _fault(lambda e: f"holds the {e.msg} from {_who(e.src)} to {_who(e.dst)} on a cut link until "
                                   "the heal"),
    # a txn-log append has no sender
    "fault.error": _fault(lambda e: f"answers the {e.msg} from {_who(e.src or '')} with {e.error}"),
    "fault.disconnect": _fault(_disconnect),
    "fault.clog": _fault(lambda e: f"clogs {', '.join(e.nodes)} for {e.ms} ms"),
    "fault.partition": _fault(lambda e: f"cuts {', '.join(e.nodes)} off the network"),
    "fault.pause": _fault(lambda e: f"pauses {', '.join(e.nodes)} for {e.ms} ms"),
    "fault.resume": _fault(lambda e: f"resumes {', '.join(e.nodes)}"),
    "fault.heal": _fault(lambda e: "heals the network"),
    "fault.arm": _fault(lambda e: "is armed"),
}
