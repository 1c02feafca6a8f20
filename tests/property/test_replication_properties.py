"""Property tests of the replication model: three brokers' ``Partition`` replicas and the controller's
``ReplicationControl``, wired together synchronously (every message delivered at once, metadata published to every
live broker at once), driven by Hypothesis through produce / follower fetch / time / crash / restart.

Invariants (a stateful machine, every step):
* committed data (below a leader's high watermark) is never lost without an unclean election: every later leader
  holds it at the same offsets;
* the leader's HW is at most the log end offset of every member of its ISR;
* with acks=all and min.insync.replicas=2, an acknowledged record survives any single broker failure at a time;
* the producer is idempotent (one producer id, a sequence per batch; a ``retry`` sends its last batch again, as a
  producer does after a timeout or NOT_LEADER_OR_FOLLOWER): no replica's log holds a batch twice, and each
  replica's producer state equals the state rebuilt from its log (follower appends, truncations and restarts keep
  it, as UL.appendAsFollower and PSM.truncateAndReload do), so a new leader deduplicates a retried batch.
Counterexamples Hypothesis must find (``find``):
* acks=1 loses an acknowledged record on leader failover, with no unclean election;
* an unclean leader election loses committed data.
"""

from __future__ import annotations

from attrs import define, field
from hypothesis import HealthCheck, find, settings, target
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from eosim.models.config import BrokerConfig, ReplicationConfig
from eosim.models.effects import Respond
from eosim.models.errors import Errors
from eosim.models.partition import (
    Acks,
    HighWatermarkUpdated,
    LogAppended,
    LogTruncated,
    Partition,
    ProduceRequest,
    ProduceResponse,
    Role,
    SendAlterPartition,
)
from eosim.models.log import PartitionLog
from eosim.models.records import Record, RecordBatch, TopicPartition
from eosim.models.replication_control import (
    NO_LEADER,
    BrokerChange,
    BrokerHeartbeatRequest,
    PartitionChange,
    RegisterBrokerRequest,
    ReplicationControl,
)

TP = TopicPartition("t", 0)
BROKERS = (1, 2, 3)
PRODUCER_ID = 1000


@define
class Cluster:
    """Three brokers and a controller, synchronously wired (the runtime will put a network in between)."""

    config: ReplicationConfig
    idempotent: bool = False  # the producer's batches carry a producer id and sequences
    now: int = 0
    alive: set[int] = field(factory=set)
    controller: ReplicationControl = field(init=False)
    parts: dict[int, Partition] = field(init=False)
    _next_cid: int = 0
    _produces: dict[int, tuple[str, Acks]] = field(factory=dict)  # correlation id -> (value, acks)
    acked: dict[str, tuple[int, Acks]] = field(factory=dict)  # value -> (offset, acks) answered NONE
    answers: dict[str, ProduceResponse] = field(factory=dict)  # value -> the leader's answer, whatever its error
    committed: dict[int, str] = field(factory=dict)  # offset -> value, below some leader's HW
    unclean: bool = False
    truncated: list[LogTruncated] = field(factory=list)
    _values: int = 0
    _created: bool = False
    _last_batch: tuple[RecordBatch, Acks] | None = None  # what ``retry`` sends again
    duplicates: int = 0  # batches a leader answered as duplicates

    def __attrs_post_init__(self) -> None:
        self.controller = ReplicationControl(self.config)
        self.parts = {b: Partition(TP, b, self.config) for b in BROKERS}
        for b in BROKERS:
            self.alive.add(b)
            assert self.start(b)
        self.publish(self.controller.create_partition(TP, BROKERS))
        self._created = True

    # --- wiring ----------------------------------------------------------------------------------------

    def cid(self) -> int:
        self._next_cid += 1
        return self._next_cid

    def publish(self, effects) -> None:
        """Controller effects: answers were handled by the caller; metadata goes to every live broker."""
        for effect in effects:
            match effect:
                case PartitionChange():
                    self.unclean |= effect.unclean
                    for b in sorted(self.alive):
                        self.broker_effects(b, self.parts[b].apply_registration(effect.registration, self.now))
                case BrokerChange():
                    for b in sorted(self.alive):
                        self.parts[b].update_broker(effect.registration)

    def broker_effects(self, b: int, effects) -> None:
        for effect in effects:
            match effect:
                case SendAlterPartition(request=request):
                    answer, *changes = self.controller.alter_partition(self.cid(), request)
                    self.broker_effects(b, self.parts[b].on_alter_partition_response(request, answer.response,
                                                                                     self.now))
                    self.publish(changes)
                case HighWatermarkUpdated(high_watermark=hw) if self.parts[b].role is Role.LEADER:
                    for offset, value in log_values(self.parts[b].log).items():
                        if offset < hw:
                            self.committed.setdefault(offset, value)
                case HighWatermarkUpdated():
                    pass
                case LogTruncated():
                    self.truncated.append(effect)
                case LogAppended(result=result):
                    self.duplicates += result.duplicate
                case Respond(correlation_id=cid, response=ProduceResponse(error=error, base_offset=offset)):
                    value, acks = self._produces.pop(cid)
                    self.answers[value] = effect.response
                    if error is Errors.NONE:
                        self.acked[value] = (offset, acks)
                case _:
                    raise AssertionError(f"unexpected effect {effect!r}")

    def start(self, b: int) -> bool:
        """A broker process starts: registers (refused while the old session is valid), then heartbeats."""
        first, *changes = self.controller.register_broker(self.cid(), RegisterBrokerRequest(broker_id=b), self.now)
        if first.response.error is not Errors.NONE:
            return False
        epoch = first.response.broker_epoch
        if self.parts[b].role is Role.OFFLINE:
            self.parts[b].restart(epoch)
        else:
            self.parts[b].broker_epoch = epoch
        # the new incarnation replays the metadata log
        for other in BROKERS:
            registration = self.controller.broker(other)
            if registration is not None and other != b:
                self.parts[b].update_broker(registration)
        self.publish(changes)
        if self.parts[b].role is Role.NONE and self._created:
            self.broker_effects(b, self.parts[b].apply_registration(self.controller.partition(TP), self.now))
        _, *changes = self.controller.heartbeat(self.cid(), BrokerHeartbeatRequest(broker_id=b, broker_epoch=epoch),
                                                self.now)
        self.publish(changes)
        return True

    # --- actions ---------------------------------------------------------------------------------------

    def leader(self) -> int | None:
        """Where a client routes a produce: the controller's leader, if that broker is running."""
        leader = self.controller.partition(TP).leader
        return leader if leader != NO_LEADER and leader in self.alive else None

    def produce(self, acks: Acks, timeout_ms: int = 30_000) -> None:
        """A new batch of one record (the idempotent producer's next sequence)."""
        self._values += 1
        records = (Record(None, f"v{self._values}"),)
        batch = (RecordBatch(records=records, producer_id=PRODUCER_ID, producer_epoch=0, base_sequence=self._values - 1)
                 if self.idempotent else RecordBatch(records=records))
        self._last_batch = (batch, acks)
        self.send(batch, acks, timeout_ms)

    def retry(self, _arg: object = None) -> None:
        """The last batch again, same sequence."""
        if self._last_batch is not None:
            self.send(*self._last_batch)

    def send(self, batch: RecordBatch, acks: Acks, timeout_ms: int = 30_000) -> None:
        leader = self.leader()
        if leader is None:
            return
        cid = self.cid()
        self._produces[cid] = (batch.records[0].value, acks)
        effects = self.parts[leader].produce(cid, ProduceRequest(acks=acks, batch=batch, timeout_ms=timeout_ms),
                                             self.now)
        if acks is Acks.ZERO:
            del self._produces[cid]
        self.broker_effects(leader, effects)

    def fetch(self, b: int) -> None:
        """One follower fetch round trip from ``b`` to the leader it knows, if both run."""
        part = self.parts[b]
        if b not in self.alive or part.role is not Role.FOLLOWER:
            return
        request = part.build_fetch_request()
        if request is None or part.leader_id not in self.alive:
            return
        leader = self.parts[part.leader_id]
        *effects, respond = leader.follower_fetch(self.cid(), request, self.now)
        self.broker_effects(part.leader_id, effects)
        self.broker_effects(b, part.on_fetch_response(request, respond.response, self.now))

    def replicate(self, rounds: int) -> None:
        """Every follower fetches ``rounds`` times in broker order (the leader learns a follower's position from
        its next fetch, so two rounds commit what was written before)."""
        for _ in range(rounds):
            for b in BROKERS:
                self.fetch(b)

    def tick(self, ms: int) -> None:
        """Time passes: running brokers heartbeat, the controller fences expired sessions, leaders run their
        ISR-expiration and purgatory timers."""
        self.now += ms
        for b in sorted(self.alive):
            registration = self.controller.broker(b)
            _, *changes = self.controller.heartbeat(
                self.cid(), BrokerHeartbeatRequest(broker_id=b, broker_epoch=registration.broker_epoch), self.now)
            self.publish(changes)
        self.publish(self.controller.on_timer(self.now))
        for b in sorted(self.alive):
            self.broker_effects(b, self.parts[b].maybe_shrink_isr(self.now))
            self.broker_effects(b, self.parts[b].expire_delayed_produces(self.now))

    def crash(self, b: int) -> None:
        """The broker process is killed (its requests in purgatory are never answered)."""
        if b in self.alive:
            self.alive.discard(b)
            self.parts[b].crash()

    def restart(self, b: int) -> None:
        """A killed broker starts again, if the controller lets the new incarnation register."""
        if b not in self.alive:
            self.parts[b].log.recover(now=self.now)  # the log loaded at startup (UL, LogLoader)
            self.alive.add(b)
            if not self.start(b):
                self.alive.discard(b)

    def run(self, action) -> None:
        kind, arg = action
        getattr(self, kind)(arg)

    # --- what the properties look at -------------------------------------------------------------------

    def leader_log_values(self) -> dict[int, str] | None:
        leader = self.leader()
        if leader is None:
            return None
        return log_values(self.parts[leader].log)

    def lost_committed(self) -> list[int]:
        log = self.leader_log_values()
        if log is None:
            return []
        return [o for o, v in sorted(self.committed.items()) if log.get(o) != v]

    def lost_acked(self, acks: Acks) -> list[str]:
        log = self.leader_log_values()
        if log is None:
            return []
        return [v for v, (o, a) in sorted(self.acked.items()) if a is acks and log.get(o) != v]


def log_values(log: PartitionLog) -> dict[int, str]:
    return {b.base_offset + i: r.value for b in log.batches for i, r in enumerate(b.records)}


def rebuilt(log: PartitionLog) -> PartitionLog:
    """A fresh replica that copied ``log`` batch by batch (its producer state from the log alone)."""
    copy = PartitionLog(log.tp, log.config)
    copy.append_as_follower(tuple(log.batches))
    return copy


acks_all = st.just(Acks.ALL)
broker = st.sampled_from(BROKERS)
tick_ms = st.sampled_from([100, 5_000, 10_000, 31_000])


def actions(acks: st.SearchStrategy[Acks]) -> st.SearchStrategy[tuple[str, object]]:
    return st.one_of(
        st.tuples(st.just("produce"), acks),
        st.tuples(st.just("fetch"), broker),
        st.tuples(st.just("replicate"), st.integers(1, 2)),
        st.tuples(st.just("tick"), tick_ms),
        st.tuples(st.just("crash"), broker),
        st.tuples(st.just("restart"), broker),
    )


class ReplicationMachine(RuleBasedStateMachine):
    """RF 3, min.insync.replicas 2, unclean election off, ELR on; any number of failures."""

    config = ReplicationConfig(min_insync_replicas=2)
    max_down = 3

    def __init__(self) -> None:
        super().__init__()
        self.cluster = Cluster(self.config, idempotent=True)

    @rule(acks=st.sampled_from(Acks))
    def produce(self, acks):
        self.cluster.produce(acks)

    @rule()
    def retry(self):
        self.cluster.retry()

    @rule(b=broker)
    def fetch(self, b):
        self.cluster.fetch(b)

    @rule(rounds=st.integers(1, 2))
    def replicate(self, rounds):
        self.cluster.replicate(rounds)

    @rule(ms=tick_ms)
    def tick(self, ms):
        self.cluster.tick(ms)

    @rule(b=broker)
    def crash(self, b):
        if len(BROKERS) - len(self.cluster.alive) < self.max_down:
            self.cluster.crash(b)

    @rule(b=broker)
    def restart(self, b):
        self.cluster.restart(b)

    @invariant()
    def committed_data_is_never_lost_without_an_unclean_election(self):
        # unclean.leader.election.enable is off. The controller may still elect the last known leader once every
        # replica crashed (KIP-966 balanced recovery, which Kafka counts as unclean): a killed process keeps its
        # log, so that leader has everything committed.
        assert self.cluster.lost_committed() == []

    def teardown(self):
        # Hypothesis' targeted search: runs that acknowledge acks=all records and truncate logs test more
        target(float(sum(a is Acks.ALL for _, a in self.cluster.acked.values())), label="acked acks=all")
        target(float(len(self.cluster.truncated)), label="truncations")
        target(float(self.cluster.duplicates), label="duplicates")

    @invariant()
    def hw_is_at_most_every_isr_members_log_end(self):
        for part in self.cluster.parts.values():
            if part.role is Role.LEADER:
                for member in part.isr:
                    assert part.high_watermark <= self.cluster.parts[member].log_end_offset, (part.isr, member)

    @invariant()
    def acks_all_acknowledged_records_survive(self):
        assert self.cluster.lost_acked(Acks.ALL) == []

    @invariant()
    def no_log_holds_a_batch_twice(self):
        for part in self.cluster.parts.values():
            values = list(log_values(part.log).values())
            assert len(values) == len(set(values)), (part.broker_id, values)

    @invariant()
    def producer_state_is_the_state_rebuilt_from_the_log(self):
        for part in self.cluster.parts.values():
            assert part.log.snapshot() == rebuilt(part.log).snapshot(), part.broker_id


class SingleFailureMachine(ReplicationMachine):
    """acks=all, min.insync.replicas 2, at most one broker down at a time: no acknowledged record is lost, and the
    partition always has a leader once the controller has fenced the dead broker."""

    max_down = 1

    @invariant()
    def a_single_failure_leaves_a_leader(self):
        cluster = self.cluster
        registration = cluster.controller.partition(TP)
        if all(cluster.controller.is_active(b) for b in cluster.alive) and len(cluster.alive) == len(BROKERS):
            assert registration.leader in cluster.alive, registration


ReplicationMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
SingleFailureMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestReplication = ReplicationMachine.TestCase
TestSingleFailure = SingleFailureMachine.TestCase


def run(config: ReplicationConfig, sequence) -> Cluster:
    cluster = Cluster(config)
    for action in sequence:
        cluster.run(action)
    return cluster


FIND = settings(max_examples=5_000, database=None, suppress_health_check=list(HealthCheck), deadline=None)


def test_hypothesis_finds_acks_1_losing_an_acknowledged_record_on_failover():
    config = ReplicationConfig(min_insync_replicas=1)

    def lost(sequence) -> bool:
        cluster = run(config, sequence)
        return not cluster.unclean and bool(cluster.lost_acked(Acks.ONE))

    witness = find(st.lists(actions(st.just(Acks.ONE)), max_size=12), lost, settings=FIND)
    cluster = run(config, witness)
    # the minimal witness: an acks=1 write the followers never fetched, then the leader dies and is fenced
    assert [kind for kind, _ in witness] == ["produce", "crash", "tick"], witness
    assert not cluster.unclean and cluster.lost_acked(Acks.ONE) == ["v1"]


def test_hypothesis_finds_an_unclean_election_losing_committed_data():
    config = ReplicationConfig(min_insync_replicas=1, unclean_leader_election_enable=True)

    def lost(sequence) -> bool:
        return bool(run(config, sequence).lost_committed())

    witness = find(st.lists(actions(acks_all), max_size=16), lost, settings=FIND)
    cluster = run(config, witness)
    assert cluster.unclean and cluster.lost_committed(), witness
