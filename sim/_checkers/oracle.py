"""eosim._checkers.oracle
===================

Invariants only a simulator can check, because they need the brokers' and clients' inner events
(docs/design.md, "Trace event kinds"), not just what clients observed. Each anomaly's witness is the
few trace events involved, in ``seq`` order.

=========================  ==================================================================
anomaly                    invariant
=========================  ==================================================================
epoch-regression           per transactional.id and pid the coordinator's epoch never goes back;
                           neither does the epoch one client instance adopts
coordinator-epoch-regression
                           every election of a transaction coordinator is at a coordinator epoch above
                           the last one (it is __transaction_state's leader epoch)
leader-epoch-regression    every new leader epoch of a partition is above its last one
epoch-skip                 per transactional.id and pid, every record the coordinator appends to
                           __transaction_state has an epoch at most one above the last durable one
                           (txn.state or txn.load): the in-memory epoch runs ahead of the log by
                           one fence at most, however often the fence's write fails (KAFKA-9666)
shared-producer-epoch      two live client instances never hold the same (pid, epoch)
sequence-gap               a (pid, epoch)'s batches on a partition have contiguous sequences
spurious-out-of-order      an idempotent producer's batch that continues its sequence on a partition (the
                           last sequence + 1 at the same epoch, wrapping from Int.MAX_VALUE to 0) is not
                           refused as out of order (KAFKA-7692)
missed-duplicate           a retry of a batch the log holds is acked as a duplicate, never refused
                           as out of order (the dedup window, KAFKA-5494)
sequence-reuse             a producer id and epoch never send other records at the sequence of a batch
                           the log holds (librdkafka after an abort purged a sent batch): the leader
                           answers them as its duplicate, so they are lost, or refuses them as out of order
misreported-fencing        a write older than the producer epoch its partition holds is refused
                           with INVALID_PRODUCER_EPOCH, not as a transaction-state or sequence
                           error (KAFKA-19690)
spurious-fencing           a transactional producer using the (pid, epoch) the coordinator handed it is
                           not fenced (PRODUCER_FENCED, INVALID_PRODUCER_ID_MAPPING) until something
                           fenced it: another instance of its transactional.id, the coordinator's
                           timeout abort, a newer epoch of its pid in __transaction_state, a new
                           pid an InitProducerId wrote for the id (even one whose answer never
                           arrived), or the id's expiry (KAFKA-18464, KAFKA-18660)
stale-marker               a marker carries the producer epoch of the Prepare* it completes and
                           a coordinator epoch no older than that partition last saw for the pid
torn-transaction           every marker of a transaction matches its PrepareCommit/PrepareAbort,
                           and a pid's offsets become visible only if it decided to commit
lso-above-hw               LSO <= HW <= LEO
unresolved-transaction     a transaction that went Ongoing completes by the time Kafka's own timers
                           guarantee (see "Liveness" below)
unresolved-at-end          (unknown, not invalid) the trace ended before that time: the message
                           names the timer that leaves it undecided
hanging-transaction        no partition keeps an open transaction that its coordinator has closed
offsets-output-mismatch    a transaction's consumed offsets are committed iff its outputs are
=========================  ==================================================================

Liveness. Once the faults are over (the last ``fault.*`` event, delayed message or pause; the last
coordinator election and load; a crashed broker's restart: the *quiet* time Q), Kafka resolves every
transaction on its own, whatever its producer does:

- an Ongoing transaction opened at t0 is aborted by the coordinator's sweep once transaction.timeout.ms
  has passed (TransactionStateManager.timedOutTransactions: ``txnStartTimestamp + txnTimeoutMs < now``,
  run every transaction.abort.timed.out.transaction.cleanup.interval.ms): it completes by
  max(t0 + transaction.timeout.ms, Q) + interval;
- a PrepareCommit/PrepareAbort transaction gets its markers; a WriteTxnMarkers request or answer that
  was lost is sent again once the inter-broker request.timeout.ms has passed (TransactionMarkerChannel-
  Manager's NetworkClient; TransactionMarkerRequestCompletionHandler re-enqueues a disconnected request):
  it completes by max(t_prepare, Q) + request.timeout.ms.

Each bound adds ``PROCESSING_SLACK_MS`` for the coordinator's own appends, loads and messages. The
timers come from the trace (``broker.start``, each transaction's ``txn_timeout_ms``), Kafka's and
librdkafka's defaults otherwise. A transaction still open past its bound is INVALID; one open when the
trace ends before its bound is unknown, and the anomaly says which timer leaves it undecided.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from attrs import define, field

from eosim.models.records import increment_sequence
from eosim._checkers.anomaly import Anomaly, CheckResult
from eosim._trace import (ClientOp, ClientPid, GroupOffsets, GroupPending, LogAged, LogAppend, LogDuplicate,
                          LogMarker, LogOffsets, LogProducerExpired, LogReject, PartitionLeader, TraceEvent, TxnElect, TxnLoad,
                          Trace, TxnLog, TxnState, TxnTimeout, plain, typed)

Event = TraceEvent

_PREPARE = {"PrepareCommit": "COMMIT", "PrepareAbort": "ABORT"}
_COMPLETE = frozenset({"CompleteCommit", "CompleteAbort"})
# A fencing error from the coordinator, as each client names it (librdkafka's _FENCED, the Java client's).
_FENCING_ERRORS = frozenset({"PRODUCER_FENCED", "_FENCED", "INVALID_PRODUCER_ID_MAPPING"})
# Coordinator states in which markers for the pid are still to come.
_RESOLVING = frozenset({"Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence"})
# The timers of a trace without broker.start: Kafka's defaults.
DEFAULT_TIMERS = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": 10_000, "request.timeout.ms": 30_000}
# The coordinator's own work once a timer fired: txn-log appends, a load, marker round trips (a few ms each).
PROCESSING_SLACK_MS = 1_000
# Events after which the coordinator may still be catching up (faults, leadership moves); see "Liveness".
_QUIET_KINDS = frozenset({"fault.drop", "fault.hold", "fault.delay", "fault.disconnect", "fault.error", "fault.partition",
                          "fault.clog", "fault.pause", "fault.resume", "fault.heal", "broker.restart", "txn.resign",
                          "txn.elect", "txn.load"})
# the field of a quiet kind's event that says how much longer it lasts (a delay, a pause, an election, a load)
_QUIET_EXTRA = {"fault.delay": "ms", "fault.pause": "ms", "txn.resign": "down_ms", "txn.elect": "load_ms"}


def _run(events: Iterable[Event | dict[str, Any]]) -> tuple[_Oracle, int]:
    oracle = _Oracle()
    # A run's trace (a TraceView) comes in seq order, event by event: not held all at once. JSON rows (a
    # trace.jsonl read back, eosim.Simulation.trace) become typed events first.
    ordered = (events if getattr(events, "seq_ordered", False)
               else sorted(typed(events), key=lambda e: e.seq))
    return oracle, _feed(oracle, ordered, 0)


def _feed(oracle: _Oracle, events: Iterable[Event], end: int) -> int:
    """Hand ``events`` (in seq order) to the oracle; returns the time the trace has reached."""
    handlers = oracle.handlers
    for event in events:
        kind = event.kind
        if kind in _QUIET_KINDS:
            oracle.on_quiet_kind(event)
        handler = handlers.get(kind)
        if handler is not None:
            handler(event)
        end = event.t
    return end


def check_trace(events: Iterable[Event | dict[str, Any]]) -> CheckResult:
    oracle, end = _run(events)
    return _result(oracle, end)


def _result(oracle: _Oracle, end: int) -> CheckResult:
    oracle.finish(end)
    return CheckResult.classify(oracle.found, unknown_types={"unresolved-at-end"})


def settle_deadline(events: Iterable[Event]) -> int | None:
    """The time by which Kafka's timers resolve every transaction still open in ``events`` (a run's trace so far),
    so a run can settle until its liveness is decided; None when none is open or none can be bounded (a broker
    is down)."""
    oracle, _end = _run(events)
    return _deadline(oracle)


def _deadline(oracle: _Oracle) -> int | None:
    deadlines = [oracle.deadline(tid)[0] for tid in oracle.open_since]
    if not deadlines or math.inf in deadlines:
        return None
    return int(max(deadlines))


# The events the oracle reads again after it has been handed them, by seq (``_Oracle.recall``): a trace that
# keeps only these (``Trace.keep_only``) still gives the same verdict.
RECALLED_KINDS = frozenset({"log.append"})


@define(eq=False)
class TraceOracle:
    """The oracle of a run, reading its trace as it is emitted (``Trace.follow``): it is handed each
    event before the event is spilled, so a long run's trace is never read back, and it keeps seq numbers
    where it needs an event again only to report it (the log's batches, read back then). ``check()``
    equals ``check_trace`` over the whole trace."""

    trace: Trace
    _oracle: _Oracle = field(init=False)
    _end: int = field(default=0, init=False)
    _verdict: CheckResult | None = field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self._oracle = _Oracle(recall=self.trace.event_at)
        self.trace.follow(self._read)

    def _read(self, events: list[Event]) -> None:
        self._end = _feed(self._oracle, events, self._end)

    def settle_deadline(self) -> int | None:
        """``settle_deadline`` of the trace so far."""
        self.trace.catch_up()
        return _deadline(self._oracle)

    def check(self) -> CheckResult:
        """The verdict on the whole trace. Judging closes the oracle, so a second call returns the first verdict."""
        if self._verdict is None:
            self.trace.catch_up()
            self._verdict = _result(self._oracle, self._end)
        return self._verdict


def _seq_sorted(*events: Event | None) -> tuple[Event, ...]:
    return tuple(sorted((e for e in events if e is not None), key=lambda e: e.seq))


@define
class _Txn:
    """One transaction of a transactional.id, from its entry into Ongoing."""

    opened: Event
    outputs: dict[str, Event] = field(factory=dict)  # tp -> first data batch
    pending: list[Event] = field(factory=list)  # group.pending
    prepare: Event | None = None
    markers: list[Event] = field(factory=list)  # markers on output partitions
    visible: list[Event] = field(factory=list)  # group.offsets
    completed: bool = False


@define
class _Oracle:
    # The seq number -> event of a trace that can read its events back (TraceOracle): the log's batches are
    # then kept as seq numbers, as a long run's trace is not held in memory. None: they are kept as events.
    recall: Callable[[int], Event] | None = None
    found: list[Anomaly] = field(factory=list)
    handlers: dict = field(init=False)
    incarnation: dict[str, int] = field(factory=dict)
    tc_epoch: dict[tuple, Event] = field(factory=dict)  # (tid, pid) -> highest-epoch txn.state
    durable: dict[tuple, Event] = field(factory=dict)  # (tid, pid) -> latest txn.state or txn.load
    skipped: dict[tuple, int] = field(factory=dict)  # (tid, pid) -> seq of the durable event last reported against
    client_epoch: dict[tuple, Event] = field(factory=dict)  # (actor, incarnation, tid, pid) -> client.pid
    holder: dict[tuple[int, int], tuple[tuple[str, int], Event]] = field(factory=dict)
    holding: dict[tuple[str, int], tuple[int, int]] = field(factory=dict)
    last_batch: dict[tuple, tuple[int, Event]] = field(factory=dict)  # (node, tp, pid, epoch) -> (last seq, ev)
    # (node, tp, pid, epoch) -> base seq -> its log.append (or its seq, with recall): one per batch in the log
    appended: dict[tuple, dict[int, Event | int]] = field(factory=dict)
    held_epoch: dict[tuple, Event] = field(factory=dict)  # (node, tp, pid) -> the append/marker of its newest epoch
    prepare: dict[int, Event] = field(factory=dict)  # pid -> latest transition into Prepare*
    marker_epoch: dict[tuple[str, int], Event] = field(factory=dict)  # (tp, pid) -> newest-coordinator marker
    state: dict[int, Event] = field(factory=dict)  # pid -> latest txn.state
    tid_of: dict[int, str] = field(factory=dict)
    open_since: dict[str, Event] = field(factory=dict)  # tid -> entry into Ongoing, until Complete*
    open_batch: dict[tuple[str, int], Event] = field(factory=dict)  # (tp, pid) -> first batch after a marker
    elected: dict[str, Event] = field(factory=dict)  # broker -> its latest txn.elect
    leader: dict[tuple[str, str], Event] = field(factory=dict)  # (broker, tp) -> its latest partition.leader
    timers: dict[str, int] = field(factory=lambda: dict(DEFAULT_TIMERS))
    quiet: int = 0  # Q: when the last fault or leadership move is over
    down: dict[str, Event] = field(factory=dict)  # crashed broker -> its broker.crash
    txn_timeout: dict[str, int] = field(factory=dict)  # tid -> transaction.timeout.ms the coordinator holds
    prepared: dict[str, Event] = field(factory=dict)  # tid -> its open transaction's first Prepare*
    current: dict[str, _Txn] = field(factory=dict)  # tid -> transaction collecting outputs
    deciding: dict[str, _Txn] = field(factory=dict)  # tid -> transaction past Prepare*
    handed: dict[tuple[str, int], Event] = field(factory=dict)  # transactional instance -> its latest client.pid
    fenced_by: dict[tuple[str, int], Event] = field(factory=dict)  # instance -> what fenced it since (spurious-fencing)

    def __attrs_post_init__(self) -> None:
        self.handlers = {
            "client.op": self.on_client_op,
            "client.pid": self.on_client_pid,
            "txn.log": self.on_txn_log,
            "txn.state": self.on_txn_state,
            "txn.load": self.on_txn_load,
            "txn.timeout": self.on_txn_timeout,
            "txn.elect": self.on_txn_elect,
            "broker.start": self.on_broker_start,
            "broker.crash": self.on_broker_crash,
            "broker.restart": self.on_broker_restart,
            "partition.leader": self.on_partition_leader,
            "log.append": self.on_append,
            "log.reject": self.on_reject,
            "log.aged": self.on_aged,
            "log.duplicate": self.on_duplicate,
            "log.producer_expired": self.on_producer_expired,
            "log.marker": self.on_marker,
            "log.offsets": self.on_offsets,
            "group.pending": self.on_pending,
            "group.offsets": self.on_visible_offsets,
        }

    def report(self, name: str, description: str, *events: Event | None) -> None:
        witness = tuple(e.to_dict() for e in _seq_sorted(*events))
        self.found.append(Anomaly(name=name, description=description, witness=witness))

    # -- clients ----------------------------------------------------------------------------------------

    def on_client_op(self, ev: ClientOp) -> None:
        if ev.op in ("crash", "restart"):
            actor = ev.node
            self._release((actor, self.incarnation.get(actor, 0)))
            self.incarnation[actor] = self.incarnation.get(actor, 0) + 1
        elif ev.error in _FENCING_ERRORS:
            instance = (ev.node, self.incarnation.get(ev.node, 0))
            handed = self.handed.get(instance)
            if handed is not None and instance not in self.fenced_by:
                self.fenced_by[instance] = ev  # reported once
                self.report("spurious-fencing",
                            f"Client {ev.node} got {ev.error} on {ev.op} while it used producer id "
                            f"{handed.producer_id} epoch {handed.producer_epoch}, the ones the coordinator handed "
                            f"it, and nothing had fenced it: no other instance of {handed.transactional_id!r}, no "
                            "timeout abort, no newer epoch or InitProducerId's new pid in __transaction_state "
                            "(KAFKA-18464, KAFKA-18660).",
                            handed, ev)

    def _fence_holders(self, tid: str, ev: Event, *, pid: int | None = None, above: int | None = None,
                       besides: tuple[str, int] | None = None, other_than: int | None = None) -> None:
        """Instances holding ``tid`` (with ``pid`` below epoch ``above``, or with a pid other than
        ``other_than``, if given) are fenced by ``ev``."""
        for instance, handed in self.handed.items():
            if (handed.transactional_id == tid and instance != besides and instance not in self.fenced_by
                    and (pid is None or (handed.producer_id == pid and handed.producer_epoch < above))
                    and (other_than is None or handed.producer_id != other_than)):
                self.fenced_by[instance] = ev

    def _release(self, instance: tuple[str, int]) -> None:
        held = self.holding.pop(instance, None)
        if held is not None and self.holder.get(held, (None,))[0] == instance:
            del self.holder[held]

    def on_client_pid(self, ev: ClientPid) -> None:
        pid, epoch, tid = ev.producer_id, ev.producer_epoch, ev.transactional_id
        if pid < 0:
            return
        instance = (ev.node, self.incarnation.get(ev.node, 0))
        key = (*instance, tid, pid)
        prev = self.client_epoch.get(key)
        if prev is not None and epoch < prev.producer_epoch:
            self.report("epoch-regression",
                        f"Client {ev.node} went back from epoch {prev.producer_epoch} to {epoch} "
                        f"for producer id {pid} within one instance.", prev, ev)
        else:
            self.client_epoch[key] = ev
        self._release(instance)
        other = self.holder.get((pid, epoch))
        if other is not None and other[0] != instance:
            self.report("shared-producer-epoch",
                        f"Client instances {other[0][0]}#{other[0][1]} and {instance[0]}#{instance[1]} both hold "
                        f"producer id {pid} epoch {epoch} at once, so neither can fence the other.", other[1], ev)
        self.holder[(pid, epoch)] = (instance, ev)
        self.holding[instance] = (pid, epoch)
        if tid is not None:  # the coordinator handed it out (InitProducerId, or a TV2 EndTxn)
            self._fence_holders(tid, ev, besides=instance)  # a new instance fences the others
            self.handed[instance] = ev
            self.fenced_by.pop(instance, None)

    # -- transaction coordinator --------------------------------------------------------------------

    def on_txn_log(self, ev: TxnLog) -> None:
        # The appended record carries the coordinator's in-memory epoch. Every durable transition moves the
        # epoch by one at most (an InitProducerId bump, a fence, a TV2 Prepare*), and the one in-memory change
        # before a write is the TV1 fence's bump (TransactionCoordinator.endTransactionWithTV1), which a failed
        # write must not repeat (hasFailedEpochFence). A failed after-append write is no durable baseline: the
        # coordinator resets its pending state and writes the same epoch again.
        self._fence_holders(ev.transactional_id, ev, pid=ev.producer_id, above=ev.producer_epoch)
        if ev.state == "Empty":
            # Only an InitProducerId writes Empty: a new pid there (an exhausted epoch rotated) fences every
            # holder of another pid, though the instance that asked may never hear back. A TV2 end's rotation
            # writes Complete*, and the pid it hands out to the producer that ended is no fence.
            self._fence_holders(ev.transactional_id, ev, other_than=ev.producer_id)
        key = (ev.transactional_id, ev.producer_id)
        durable = self.durable.get(key)
        if durable is None or self.skipped.get(key) == durable.seq:
            return
        base = durable.producer_epoch
        if ev.producer_epoch > base + 1:
            self.skipped[key] = durable.seq
            self.report("epoch-skip",
                        f"The coordinator appended {ev.state} for {key[0]!r} (producer id {key[1]}) at epoch "
                        f"{ev.producer_epoch}, {ev.producer_epoch - base} above its durable epoch {base}: the "
                        "in-memory epoch ran ahead of __transaction_state by more than one bump (a fence whose "
                        "write failed must not be bumped again, KAFKA-9666; a TV2 abort started by a fence must "
                        "not bump past the fence's epoch, KAFKA-19367).", durable, ev)

    def on_txn_state(self, ev: TxnState) -> None:
        if ev.new == "Dead":  # transactional.id.expiration.ms: the id is gone
            self._fence_holders(ev.transactional_id, ev)
        self._transition(ev, ev.old)

    def on_txn_timeout(self, ev: TxnTimeout) -> None:
        self._fence_holders(ev.transactional_id, ev)

    def _transition(self, ev: TxnState | TxnLoad, old: str) -> None:
        tid, pid, epoch, new = ev.transactional_id, ev.producer_id, ev.producer_epoch, ev.new
        self.durable[(tid, pid)] = ev
        prev = self.tc_epoch.get((tid, pid))
        if prev is not None and epoch < prev.producer_epoch:
            self.report("epoch-regression",
                        f"The coordinator moved {tid!r} (producer id {pid}) from epoch "
                        f"{prev.producer_epoch} back to {epoch}.", prev, ev)
        else:
            self.tc_epoch[(tid, pid)] = ev
        self.state[pid] = ev
        self.tid_of[pid] = tid
        self.txn_timeout[tid] = ev.txn_timeout_ms

        if new == "Ongoing" and old != "Ongoing":
            self.open_since.setdefault(tid, ev)
            self._judge(tid)
            self.current[tid] = _Txn(opened=ev)
        elif new in _PREPARE:
            self.prepare[pid] = ev
            if tid in self.open_since and tid not in self.prepared:
                due, why = self.deadline(tid)
                if ev.t > due:
                    self.report("unresolved-transaction",
                                f"{tid!r} went Ongoing at t={self.open_since[tid].t} but was decided only at "
                                f"t={ev.t} ({ev.new}), after t={due}, by which Kafka decides it: {why}.",
                                self.open_since[tid], ev)
                self.prepared[tid] = ev
            txn = self.current.pop(tid, None)
            if txn is not None:
                self._judge(tid)
                txn.prepare = ev
                self.deciding[tid] = txn
        elif new in _COMPLETE:
            if tid in self.open_since:
                due, why = self.deadline(tid)
                opened = self.open_since.pop(tid)
                self.prepared.pop(tid, None)
                if ev.t > due:
                    self.report("unresolved-transaction",
                                f"{tid!r} went Ongoing at t={opened.t} but completed only at t={ev.t}, after "
                                f"t={due}, by which Kafka resolves it: {why}.", opened, ev)
            if tid in self.deciding:
                self.deciding[tid].completed = True

    # -- liveness -------------------------------------------------------------------------------------------

    def on_broker_start(self, ev: Event) -> None:
        self.timers.update(ev.timers)

    def on_broker_crash(self, ev: Event) -> None:
        self.down[ev.node] = ev

    def on_broker_restart(self, ev: Event) -> None:
        self.down.pop(ev.node, None)

    def on_quiet_kind(self, ev: Event) -> None:
        # a delayed message arrives, a paused actor wakes, an elected coordinator serves, `ms` later
        extra = _QUIET_EXTRA.get(ev.kind)
        self.quiet = max(self.quiet, ev.t + (0 if extra is None else getattr(ev, extra)))

    def deadline(self, tid: str) -> tuple[float, str]:
        """When Kafka's own timers have resolved ``tid``'s open transaction, as the trace stands, and why."""
        if self.down:
            broker, crash = min(self.down.items())
            return math.inf, f"{broker} has been down since t={crash.t}"
        after = f" (after the faults, over at t={self.quiet})"
        prepared = self.prepared.get(tid)
        if prepared is not None:
            timeout = self.timers["request.timeout.ms"]
            start = max(prepared.t, self.quiet)
            return start + timeout + PROCESSING_SLACK_MS, (
                f"its {prepared.new} at t={prepared.t} gets its markers, a lost WriteTxnMarkers "
                f"request or answer being sent again after the coordinator's inter-broker request.timeout.ms "
                f"({timeout} ms){after if self.quiet > prepared.t else ''}")
        opened = self.open_since[tid]
        timeout = self.txn_timeout[tid]
        interval = self.timers["transaction.abort.timed.out.transaction.cleanup.interval.ms"]
        start = max(opened.t + timeout, self.quiet)
        return start + interval + PROCESSING_SLACK_MS, (
            f"the coordinator aborts it once transaction.timeout.ms ({timeout} ms) has passed, in its sweep every "
            f"{interval} ms (transaction.abort.timed.out.transaction.cleanup.interval.ms)"
            f"{after if self.quiet > opened.t + timeout else ''}")

    def on_txn_elect(self, ev: TxnElect) -> None:
        # The coordinator epoch is the leader epoch of the coordinator's __transaction_state partition
        # (BrokerMetadataPublisher: txnCoordinator.onElection(partition, leaderEpoch)); partitions refuse markers
        # of a coordinator epoch older than one they saw (ProducerStateManager), so going back hangs transactions.
        prev = self.elected.get(ev.node)
        if prev is not None and ev.coordinator_epoch <= prev.coordinator_epoch:
            self.report("coordinator-epoch-regression",
                        f"{ev.node} became transaction coordinator at coordinator epoch "
                        f"{ev.coordinator_epoch}, not above the {prev.coordinator_epoch} it was "
                        "elected at before: markers of the newer epoch are refused and transactions hang.", prev, ev)
        self.elected[ev.node] = ev

    def on_partition_leader(self, ev: PartitionLeader) -> None:
        key = (ev.node, str(ev.tp))
        prev = self.leader.get(key)
        if prev is not None and ev.leader_epoch <= prev.leader_epoch:
            self.report("leader-epoch-regression",
                        f"{ev.tp} got leader epoch {ev.leader_epoch} on {ev.node}, not above "
                        f"its previous {prev.leader_epoch}: leader epochs only grow (the controller "
                        "bumps them on every leader change).", prev, ev)
        self.leader[key] = ev

    def on_txn_load(self, ev: TxnLoad) -> None:
        # A coordinator that loads its log (after a failover or a restart) is in the state the log holds,
        # which can be one the trace never showed: a transition whose write landed while the coordinator
        # moved is answered NOT_COORDINATOR and never traced as txn.state.
        seen = self.state.get(ev.producer_id)
        old = ev.state if seen is None else seen.new
        if old != ev.state or seen is None:
            self._transition(ev, old)
        self.durable[(ev.transactional_id, ev.producer_id)] = ev  # also a record that failed after its append

    # -- partition logs ---------------------------------------------------------------------------------

    def on_append(self, ev: LogAppend) -> None:
        pid, epoch, tp, base_seq = ev.producer_id, ev.producer_epoch, ev.tp, ev.base_sequence
        if pid < 0:
            return
        self._hold_epoch(ev)
        if base_seq >= 0:
            key = (ev.node, tp, pid, epoch)
            prev = self.last_batch.get(key)
            if prev is not None and base_seq != increment_sequence(prev[0], 1):
                self.report("sequence-gap",
                            f"On {tp}, producer id {pid} epoch {epoch} appended a batch at sequence {base_seq} "
                            f"right after one ending at sequence {prev[0]}.", prev[1], ev)
            self.last_batch[key] = (increment_sequence(base_seq, ev.last_offset - ev.base_offset), ev)
            batches = self.appended.get(key)
            if batches is None:
                batches = self.appended[key] = {}
            batches[base_seq] = ev if self.recall is None else ev.seq
        if ev.transactional:
            self.open_batch.setdefault((tp, pid), ev)
            txn = self.current.get(self.tid_of.get(pid, ""))
            if txn is not None:
                txn.outputs.setdefault(tp, ev)

    def _hold_epoch(self, ev: Event) -> None:
        key = (ev.node, ev.tp, ev.producer_id)
        held = self.held_epoch.get(key)
        if held is None or ev.producer_epoch > held.producer_epoch:
            self.held_epoch[key] = ev

    def on_aged(self, ev: LogAged) -> None:
        # an aged producer's state: its earlier batches are gone from the log, their last sequence is held
        self._hold_epoch(ev)
        self.last_batch[(ev.node, ev.tp, ev.producer_id, ev.producer_epoch)] = (ev.last_sequence, ev)

    def on_reject(self, ev: LogReject) -> None:
        held = self.held_epoch.get((ev.node, ev.tp, ev.producer_id))
        if (ev.error in ("INVALID_TXN_STATE", "OUT_OF_ORDER_SEQUENCE_NUMBER") and held is not None
                and ev.producer_epoch < held.producer_epoch):
            self.report("misreported-fencing",
                        f"On {ev.tp}, a write of producer id {ev.producer_id} at epoch {ev.producer_epoch}, "
                        f"older than the epoch {held.producer_epoch} the partition holds for it, got "
                        f"{ev.error} instead of INVALID_PRODUCER_EPOCH: the producer is not told it was fenced.",
                        held, ev)
        if ev.error != "OUT_OF_ORDER_SEQUENCE_NUMBER":
            return
        last = self.last_batch.get((ev.node, ev.tp, ev.producer_id, ev.producer_epoch))
        # PAI.checkSequence: the next batch of an idempotent producer's run is in sequence, also across the wrap
        # (transactional batches have verification's own refusals, KAFKA-14920 and KAFKA-18202, and a leader
        # elected since may have truncated its log: not judged here)
        led = self.leader.get((ev.node, str(ev.tp)))
        if (last is not None and not getattr(last[1], "transactional", False)
                and (led is None or led.seq < last[1].seq)
                and ev.base_sequence == increment_sequence(last[0], 1)):
            self.report("spurious-out-of-order",
                        f"On {ev.tp}, producer id {ev.producer_id} epoch {ev.producer_epoch} sent the batch at "
                        f"sequence {ev.base_sequence}, right after the one ending at {last[0]}, and got "
                        "OUT_OF_ORDER_SEQUENCE_NUMBER: the leader lost the sequence (it must wrap from "
                        "Int.MAX_VALUE to 0).", last[1], ev)
            return
        original = self._logged_at_sequence(ev)
        if original is None:
            return
        if self._other_records(original, ev):
            self.report("sequence-reuse",
                        f"On {ev.tp}, producer id {ev.producer_id} epoch {ev.producer_epoch} sent new records "
                        f"at sequence {ev.base_sequence}, which the log holds at offset "
                        f"{original.base_offset} for other records, and got OUT_OF_ORDER_SEQUENCE_NUMBER: "
                        "the producer reused a sequence number.", original, ev)
        else:
            self.report("missed-duplicate",
                        f"On {ev.tp}, producer id {ev.producer_id} epoch {ev.producer_epoch} retried the batch "
                        f"at sequence {ev.base_sequence}, which the log holds at offset "
                        f"{original.base_offset}, and got OUT_OF_ORDER_SEQUENCE_NUMBER instead of a "
                        "duplicate ack: the leader's dedup window had lost it.", original, ev)

    def on_duplicate(self, ev: LogDuplicate) -> None:
        original = self._logged_at_sequence(ev)
        if original is not None and self._other_records(original, ev):
            self.report("sequence-reuse",
                        f"On {ev.tp}, producer id {ev.producer_id} epoch {ev.producer_epoch} sent new records "
                        f"at sequence {ev.base_sequence}, and the leader answered them as a duplicate of the batch "
                        f"it holds at offset {original.base_offset}: the producer reused a sequence "
                        "number, and the new records were never written.", original, ev)

    def _logged_at_sequence(self, ev: Event) -> Event | None:
        found = self.appended.get((ev.node, ev.tp, ev.producer_id, ev.producer_epoch), {}).get(ev.base_sequence)
        return found if self.recall is None or found is None else self.recall(found)

    @staticmethod
    def _other_records(original: Event, ev: Event) -> bool:
        # A retry is rebuilt from the same messages (rd_kafka_toppar_retry_msgq keeps their msgids); a trace
        # without the records of the refused batch cannot tell, and counts it as a retry.
        # (as JSON has them: one of the two may have been read back from a spilled trace)
        return plain(ev.records) != [[k, v] for _, k, v in plain(original.records)]

    def on_producer_expired(self, ev: LogProducerExpired) -> None:
        # The broker forgot the pid on that partition: its next batch starts a fresh sequence run, and
        # nothing before can be recognised as a duplicate any more.
        tp, pid = ev.tp, ev.producer_id
        self.held_epoch.pop((ev.node, tp, pid), None)
        for table in (self.last_batch, self.appended):
            for key in [k for k in table if k[:3] == (ev.node, tp, pid)]:
                del table[key]

    def on_marker(self, ev: LogMarker) -> None:
        tp, pid, epoch, control = ev.tp, ev.producer_id, ev.producer_epoch, ev.control
        self._hold_epoch(ev)
        self.open_batch.pop((tp, pid), None)
        newest = self.marker_epoch.get((tp, pid))
        if newest is not None and ev.coordinator_epoch < newest.coordinator_epoch:
            self.report("stale-marker",
                        f"A {control} marker for producer id {pid} on {tp} has coordinator epoch "
                        f"{ev.coordinator_epoch}, older than the {newest.coordinator_epoch} this "
                        "partition already saw: a deposed coordinator wrote it.", newest, ev)
        else:
            self.marker_epoch[(tp, pid)] = ev
        prep = self.prepare.get(pid)
        if prep is None:
            self.report("stale-marker",
                        f"A {control} marker for producer id {pid} landed on {tp} though the coordinator never "
                        "decided to commit or abort for that pid.", ev)
        elif prep.producer_epoch != epoch:
            self.report("stale-marker",
                        f"A {control} marker on {tp} carries producer epoch {epoch}, but the transaction being "
                        f"completed ({prep.new}) has epoch {prep.producer_epoch}.", prep, ev)
        elif control != _PREPARE[prep.new]:
            self.report("torn-transaction",
                        f"The coordinator decided {prep.new} for producer id {pid}, but {tp} got a "
                        f"{control} marker.", prep, ev)
        txn = self.deciding.get(self.tid_of.get(pid, ""))
        if txn is not None and tp in txn.outputs:
            txn.markers.append(ev)

    def on_offsets(self, ev: LogOffsets) -> None:
        if not ev.last_stable_offset <= ev.high_watermark <= ev.log_end_offset:
            self.report("lso-above-hw",
                        f"On {ev.tp}: LSO {ev.last_stable_offset}, HW {ev.high_watermark}, "
                        f"LEO {ev.log_end_offset} break LSO <= HW <= LEO.", ev)

    # -- group coordinator ------------------------------------------------------------------------------

    def on_pending(self, ev: GroupPending) -> None:
        txn = self.current.get(self.tid_of.get(ev.producer_id, ""))
        if txn is not None:
            txn.pending.append(ev)

    def on_visible_offsets(self, ev: GroupOffsets) -> None:
        pid = ev.producer_id
        if pid < 0:
            return
        prep = self.prepare.get(pid)
        if prep is None or prep.new != "PrepareCommit":
            self.report("torn-transaction",
                        f"Offsets of producer id {pid} for {ev.tp} became visible in group "
                        f"{ev.group_id!r} though its transaction did not decide to commit.", prep, ev)
        txn = self.deciding.get(self.tid_of.get(pid, ""))
        if txn is not None:
            txn.visible.append(ev)

    # -- cross-event checks ----------------------------------------------------------------------------

    def _judge(self, tid: str) -> None:
        txn = self.deciding.pop(tid, None)
        if txn is None or not txn.completed or not txn.outputs or not txn.pending:
            return
        wanted = {(p.group_id, p.tp) for p in txn.pending}
        offsets_in = [v for v in txn.visible if (v.group_id, v.tp) in wanted]
        outputs_in = [m for m in txn.markers if m.control == "COMMIT"]
        if bool(offsets_in) == bool(outputs_in):
            return
        first_output = txn.outputs[min(txn.outputs)]
        if outputs_in:
            what = (f"its output on {outputs_in[0].tp} was committed but its consumed offsets never "
                    "became visible")
            evidence = outputs_in[0]
        else:
            what = (f"its consumed offsets became visible but its output on {first_output.tp} was not "
                    "committed")
            evidence = offsets_in[0]
        self.report("offsets-output-mismatch", f"Transaction of {tid!r}: {what}.",
                    txn.prepare, first_output, txn.pending[0], evidence)

    def finish(self, end: int) -> None:
        for tid in sorted(self.deciding):
            self._judge(tid)
        for tid, opened in sorted(self.open_since.items(), key=lambda kv: kv[1].seq):
            due, why = self.deadline(tid)
            if end > due:
                self.report("unresolved-transaction",
                            f"{tid!r} went Ongoing at t={opened.t} and was still unresolved when the trace "
                            f"ended at t={end}, though Kafka resolves it by t={due}: {why}.", opened)
            else:
                until = "" if due == math.inf else f" until t={due}"
                self.report("unresolved-at-end",
                            f"{tid!r} went Ongoing at t={opened.t} and the trace ended at t={end}, undecided: "
                            f"{why}{until}.", opened)
        for (tp, pid), ev in sorted(self.open_batch.items(), key=lambda kv: kv[1].seq):
            st = self.state.get(pid)
            if st is None or st.new not in _RESOLVING:
                where = "has no transaction for it" if st is None else f"is in {st.new}"
                self.report("hanging-transaction",
                            f"{tp} holds an open transaction of producer id {pid} from offset "
                            f"{ev.base_offset}, with no marker to come: its coordinator {where}.",
                            ev, st)


def trace_kinds() -> frozenset[str]:
    """The event kinds the oracle reads: a caller may hand it only those, plus the trace's last event
    (where the trace ends)."""
    return frozenset(_Oracle().handlers) | _QUIET_KINDS
