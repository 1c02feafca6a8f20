"""eosim._hints
===========

Hints for a learner who is stuck (docs/cli.md, "Hints"): each one is derived from the run itself
(its trace, history, final state and the actors' configs), names the actors, partitions, offsets
and configs involved, and says what to change. A hint fires only when the run shows its cause.

- ``reset-latest``: a consumer with no committed offset started at the end of the log
  (``auto.offset.reset=latest``, librdkafka's default) and so skipped the records already there.
- ``open-transaction``: read_committed readers stop at the LSO, pinned by a transaction that never
  committed or aborted.
- ``read-uncommitted``: a consumer read records of an aborted transaction (G1a) because it reads
  with ``isolation.level=read_uncommitted``.
- ``fenced``: a producer got ``_FENCED``: who fenced it (another producer's ``init_transactions``
  with the same transactional.id or, at transaction.version 2, its EndTxn's epoch bump; or the
  coordinator's transaction timeout).
- ``duplicate-retry``: a value is in the log twice because a producer without idempotence retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from attrs import frozen

from eosim._trace import TraceEvent, plain

LATEST_TIMESTAMP = -1  # ListOffsets' "latest" (Kafka's ListOffsetsRequest.LATEST_TIMESTAMP)
FENCED = ("_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH")


@frozen
class Hint:
    kind: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "text": self.text}


def hints(outcome: Any) -> list[Hint]:
    """Every hint the run shows, in a fixed order (docstring above)."""
    run = _Run(outcome)
    return [hint for rule in _RULES for hint in rule(run)]


def actor_of(node: str) -> str:
    """The scenario actor behind a trace node: ``p1#2/txn`` is actor ``p1``."""
    return node.split("/")[0].split("#")[0]


class _Run:
    """What the rules read, gathered once."""

    def __init__(self, outcome: Any) -> None:
        self.scenario = outcome.scenario
        self.trace: list[TraceEvent] = list(outcome.trace)
        self.history = outcome.history
        self.observation = outcome.observation
        self.checks = outcome.verdict.checks

    def config(self, actor: str) -> dict[str, Any]:
        """The keys the scenario sets for ``actor``."""
        spec = self.scenario.actors.get(actor)
        return dict(spec.config) if spec is not None else {}

    def effective(self, actor: str) -> Any:
        """``actor``'s whole client config, defaults included (librdkafka's or the Java client's)."""
        from eosim._client.config import validate_config

        spec = self.scenario.actors[actor]
        return validate_config(spec.kind, spec.config)

    def messages(self, msg: str) -> Iterator[tuple[Any, dict[str, Any]]]:
        """The requests or responses ``msg`` that were sent, each with its fields as JSON has them."""
        return ((e, plain(e.fields)) for e in self.trace if e.kind in ("net.request", "net.response") and e.msg == msg)

    def read_by(self, actor: str, tp: str) -> int:
        """How many records ``actor``'s consume/poll calls returned from ``tp``."""
        return sum(1 for e in self.trace if e.kind == "client.op" and actor_of(e.node) == actor
                   and e.op in ("consume", "poll")
                   for r in _records(e.call()[1]) if f"{r.get('topic')}-{r.get('partition')}" == tp)


def _records(result: Any) -> list[dict[str, Any]]:
    if isinstance(result, dict):
        return [result]
    return [r for r in result if isinstance(r, dict)] if isinstance(result, list) else []


def _reset_latest(run: _Run) -> Iterator[Hint]:
    no_offset = {(actor_of(e.dst), tp) for e, fields in run.messages("OffsetFetchResponse")
                 for tp, offset, _err in fields["results"] if offset < 0}
    asked = {(e.node, e.correlation_id): tp for e, fields in run.messages("ListOffsetsRequest")
             for tp, timestamp in fields["partitions"] if timestamp == LATEST_TIMESTAMP}
    seen = set()
    for e, fields in run.messages("ListOffsetsResponse"):
        tp = asked.get((e.dst, e.correlation_id))
        actor = actor_of(e.dst)
        if tp is None or (actor, tp) not in no_offset or (actor, tp) in seen:
            continue
        start = next((offset for t, err, offset in fields["responses"] if t == tp and err == "NONE"), 0)
        if start <= 0:
            continue  # nothing was there to skip
        seen.add((actor, tp))
        config = run.config(actor)
        if actor not in run.scenario.actors or run.effective(actor).auto_offset_reset != "latest":
            continue  # an explicit seek to the end, not the reset policy
        how = ("auto.offset.reset=latest" if "auto.offset.reset" in config
               else "auto.offset.reset unset (its default is latest)")
        read = run.read_by(actor, tp)
        outcome = "read nothing from" if read == 0 else f"read only {read} record(s) from"
        yield Hint("reset-latest",
                   f"{actor} {outcome} {tp}: its group {config.get('group.id')!r} had no committed offset there, and "
                   f"with {how} it started at the end of the log, offset {start}, skipping the {start} "
                   f"offset(s) before it. Set auto.offset.reset=earliest, or commit a starting offset first.")


def _open_transaction(run: _Run) -> Iterator[Hint]:
    pid_owner = {}
    for e in run.trace:
        if e.kind == "client.pid":
            pid_owner[e.producer_id] = (actor_of(e.node), e.transactional_id)
    for part in run.observation.partitions:
        if part.last_stable_offset >= part.high_watermark:
            continue
        tp = f"{part.topic}-{part.partition}"
        lso = part.last_stable_offset
        pid = next((e.producer_id for e in run.trace if e.kind == "log.append"
                    and str(e.tp) == tp and e.base_offset <= lso <= e.last_offset), None)
        actor, tid = pid_owner.get(pid, ("a producer", None))
        owner = f"{actor}'s transaction (transactional.id {tid!r}, producer id {pid})" if tid else \
            f"the transaction of producer id {pid}"
        yield Hint("open-transaction",
                   f"{tp}: read_committed readers stop at offset {lso}, the last stable offset, "
                   f"{part.high_watermark - lso} offset(s) short of the high watermark {part.high_watermark}: "
                   f"{owner}, which wrote offset {lso}, never committed or aborted. It stays open until the "
                   f"producer ends it or the coordinator aborts it after transaction.timeout.ms.")


def _read_uncommitted(run: _Run) -> Iterator[Hint]:
    ops = {op["index"]: op for op in run.history}
    readers: dict[str, dict[str, list[str]]] = {}  # actor -> partition -> values
    for anomaly in run.checks.anomalies:
        if anomaly.name != "G1a" or not anomaly.witness:
            continue
        facts = anomaly.witness[0]
        reader = ops.get(facts.get("reader"), {}).get("process")
        if reader is not None:
            readers.setdefault(reader, {}).setdefault(str(facts.get("key")), []).append(repr(facts.get("value")))
    for actor, reads in readers.items():
        if actor not in run.scenario.actors or run.effective(actor).isolation_level.name != "READ_UNCOMMITTED":
            continue
        why = ("isolation.level=read_uncommitted" if "isolation.level" in run.config(actor) else
               "isolation.level unset, and this client's default is read_uncommitted")
        what = "; ".join(", ".join(values) + f" from {tp}" for tp, values in reads.items())
        yield Hint("read-uncommitted",
                   f"{actor} read {what}, written by a transaction that was aborted: it reads with "
                   f"{why}. A read_committed consumer sees only committed transactions.")


def _fenced(run: _Run) -> Iterator[Hint]:
    # A shared epoch is fencing that failed: "working as designed" would then be wrong.
    shared = any(a.name == "shared-producer-epoch" for a in run.checks.anomalies)
    seen = set()
    for e in run.trace:
        if e.kind != "client.op" or e.error not in FENCED:
            continue
        actor = actor_of(e.node)
        tid = run.config(actor).get("transactional.id")
        if tid is None or actor in seen:
            continue
        seen.add(actor)
        why = None
        answered: dict[str, str] = {}  # client instance -> the last answer the broker sent it
        for other in run.trace:
            if other.seq > e.seq:
                break
            if other.kind == "net.response":
                answered[other.dst.split("/")[0]] = other.msg
            elif other.kind == "client.pid" and other.transactional_id == tid and other.node != e.node:
                # Its epoch comes from InitProducerId, or (transaction.version 2) from the EndTxn answer that
                # bumps it at every transaction's end (KIP-890); an aged producer's from neither.
                cause = answered.get(other.node)
                if cause == "InitProducerIdResponse":
                    why = (f"{actor_of(other.node)} called init_transactions with the same transactional.id at "
                           f"t={other.t} ms and got epoch {other.producer_epoch}")
                elif cause == "EndTxnResponse":
                    why = (f"{actor_of(other.node)}, with the same transactional.id, ended a transaction and its "
                           f"EndTxn was answered with epoch {other.producer_epoch} at t={other.t} ms "
                           f"(transaction.version 2 bumps the epoch at every end)")
            elif other.kind == "txn.timeout" and other.transactional_id == tid:
                why = (f"the coordinator aborted its transaction at t={other.t} ms after transaction.timeout.ms "
                       f"and bumped the epoch to {other.producer_epoch}")
        if why is None:
            continue
        zombie = (f"Kafka treats {actor} (transactional.id {tid!r}) as a zombie, though two instances shared an "
                  f"epoch (shared-producer-epoch)" if shared else f"{actor} (transactional.id {tid!r}) is a zombie")
        yield Hint("fenced",
                   f"{actor} got {e.error} on {e.op}: {why}, so {zombie}. A fenced producer cannot go on: close it."
                   + ("" if shared else " This is fencing working as designed."))


def _duplicate_retry(run: _Run) -> Iterator[Hint]:
    writers: dict[Any, str] = {}  # value -> the process that sent it (the history's invocations)
    for op in run.history:
        if op["type"] == "invoke":
            for mop in op.get("value") or ():
                if isinstance(mop, list) and len(mop) > 2 and mop[0] == "send":
                    writers.setdefault(mop[2], op.get("process"))
    seen = set()
    for anomaly in run.checks.anomalies:
        if anomaly.name != "duplicate" or not anomaly.witness:
            continue
        facts = anomaly.witness[0]
        actor = writers.get(facts.get("value"))
        if actor is None or actor in seen:
            continue
        if actor not in run.scenario.actors or run.effective(actor).enable_idempotence:
            continue  # idempotent: the duplicate has another cause (the anomaly's description says which)
        seen.add(actor)
        lost = sorted({ev.msg for ev in run.trace if ev.kind == "net.drop" and actor_of(ev.dst) == actor})
        cause = f" after its {', '.join(lost)} was lost" if lost else ""
        yield Hint("duplicate-retry",
                   f"{facts.get('value')!r} is in {facts.get('key')} {facts.get('count')} times (offsets "
                   f"{facts.get('offsets')}): {actor} retried{cause} with enable.idempotence off, so the broker "
                   f"could not tell the retry from a new record. With enable.idempotence=true the broker "
                   f"recognises the retry by its producer id and sequence and acks it without appending.")


_RULES: tuple[Callable[[_Run], Iterator[Hint]], ...] = (
    _reset_latest, _open_transaction, _read_uncommitted, _fenced, _duplicate_retry)
