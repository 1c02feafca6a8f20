"""eosim.models.replication_control
================================

The KRaft controller's view of brokers and partitions, as a pure state machine: broker registration, heartbeats
and fencing, leader election, ISR changes by AlterPartition, and Eligible Leader Replicas (KIP-966).

Theory of operation
-------------------
Sources, as short names (Kafka 4.1.2): ``RCM`` = metadata/.../controller/ReplicationControlManager.java, ``PCB``
= PartitionChangeBuilder.java, ``CCM`` = ClusterControlManager.java, ``BHM`` = BrokerHeartbeatManager.java,
``PR`` = metadata/.../metadata/PartitionRegistration.java.

* The controller owns one ``PartitionRegistration`` per partition (replicas, ISR, ELR, last known ELR, leader,
  leader epoch, partition epoch, leader recovery state) and one ``BrokerRegistration`` per broker (broker epoch,
  fenced). Every change is an effect the runtime publishes to every broker as the metadata log would
  (``PartitionChangeRecord`` -> ``PartitionChange``, ``RegisterBrokerRecord``/``BrokerRegistrationChangeRecord``
  -> ``BrokerChange``); brokers apply them in order (``eosim.models.partition.Partition``).
* A change is computed in two steps, as Kafka does: ``_build`` (PCB.build) turns a target ISR into a
  ``PartitionChangeRecord`` (or nothing), and ``_merge`` (PR.merge) applies it: a leader change bumps the leader
  epoch, every record bumps the partition epoch.
* Election order (PCB.electAnyLeader): the current leader if still valid; the first replica (in assignment order)
  in the ISR, or in the ELR when the ISR is empty, that is an acceptable leader (registered, not fenced); the last
  known leader when ISR and ELR are empty (KIP-966 balanced recovery, itself counted as unclean); with
  ``unclean.leader.election.enable`` any acceptable replica. An unclean leader gets ISR = [leader] and leader
  recovery state RECOVERING.
* ELR (PCB.maybePopulateTargetElr): when the target ISR is below min.insync.replicas, the replicas leaving the ISR
  join the ELR (less any unclean-shutdown replica); at or above it, ELR and last known ELR are cleared. With ELR on,
  the ISR may become empty.
* Broker lifecycle (state table ``BROKER_TRANSITIONS``): ``register_broker`` starts a new incarnation at a new broker
  epoch, fenced; it is refused with DUPLICATE_BROKER_REGISTRATION while the previous incarnation's session is still
  valid (CCM.registerBroker). The previous incarnation is removed from ISRs (and, after an unclean shutdown with ELR
  on, from ELRs: RCM.handleBrokerShutdown). ``heartbeat`` unfences a fenced broker (the model's broker is always
  caught up with the metadata) and elects it where a partition has no leader (RCM.handleBrokerUnfenced);
  ``on_timer`` fences a broker whose session expired (BHM, RCM.handleBrokerFenced).
* AlterPartition (RCM.alterPartition / validateAlterPartitionData): the leader proposes a new ISR with each
  member's broker epoch; stale epochs, a non-leader, a bad ISR and (KIP-903) a replica that is fenced or whose
  broker epoch is not the registered one are refused.
"""

from __future__ import annotations

import enum

from attrs import define, evolve, field

from eosim.models.config import ReplicationConfig
from eosim.models.effects import Respond
from eosim.models.errors import Errors, IllegalTransition, ModelError
from eosim.models.records import TopicPartition
from eosim.models.values import frozen

__all__ = [
    "BROKER_TRANSITIONS",
    "NO_LEADER",
    "AlterPartitionRequest",
    "AlterPartitionResponse",
    "BrokerChange",
    "BrokerEvent",
    "BrokerHeartbeatRequest",
    "BrokerHeartbeatResponse",
    "BrokerRegistration",
    "BrokerState",
    "Effect",
    "LeaderRecoveryState",
    "PartitionChange",
    "PartitionRegistration",
    "RegisterBrokerRequest",
    "RegisterBrokerResponse",
    "ReplicationControl",
]

NO_LEADER = -1  # LeaderConstants.NO_LEADER


class LeaderRecoveryState(enum.Enum):
    """LeaderRecoveryState.java: RECOVERING after an unclean election until the leader reports RECOVERED."""

    RECOVERED = 0
    RECOVERING = 1


@frozen(kw_only=True)
class PartitionRegistration:
    """PR: the controller's record of one partition, as every broker sees it in the metadata image."""

    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    elr: tuple[int, ...] = ()
    last_known_elr: tuple[int, ...] = ()
    leader: int
    leader_recovery_state: LeaderRecoveryState = LeaderRecoveryState.RECOVERED
    leader_epoch: int = 0
    partition_epoch: int = 0


class BrokerState(enum.Enum):
    """A broker as the controller sees it: never registered, fenced, or unfenced (active)."""

    UNREGISTERED = enum.auto()
    FENCED = enum.auto()
    UNFENCED = enum.auto()


class BrokerEvent(enum.Enum):
    REGISTER = enum.auto()  # CCM.registerBroker (a new incarnation)
    UNFENCE = enum.auto()  # BHM: a heartbeat from a fenced, caught-up broker
    FENCE = enum.auto()  # BHM: session expired


# CCM / BHM: (state, event) -> state. Anything else is a model misuse and raises IllegalTransition.
BROKER_TRANSITIONS: dict[tuple[BrokerState, BrokerEvent], BrokerState] = {
    (BrokerState.UNREGISTERED, BrokerEvent.REGISTER): BrokerState.FENCED,
    (BrokerState.FENCED, BrokerEvent.REGISTER): BrokerState.FENCED,
    (BrokerState.UNFENCED, BrokerEvent.REGISTER): BrokerState.FENCED,  # once the old session expired
    (BrokerState.FENCED, BrokerEvent.UNFENCE): BrokerState.UNFENCED,
    (BrokerState.UNFENCED, BrokerEvent.FENCE): BrokerState.FENCED,
}


@frozen(kw_only=True)
class BrokerRegistration:
    """BrokerRegistration.java, the fields replication reads: the incarnation's broker epoch and whether it is
    fenced."""

    broker_id: int
    broker_epoch: int
    fenced: bool


# --- requests, responses, effects -------------------------------------------------------------------------


@frozen(kw_only=True)
class RegisterBrokerRequest:
    """BrokerRegistrationRequest of a new incarnation. ``clean_shutdown``: the previous incarnation shut down
    cleanly (CCM compares previousBrokerEpoch with the stored epoch; a killed process never has)."""

    broker_id: int
    clean_shutdown: bool = False


@frozen(kw_only=True)
class RegisterBrokerResponse:
    error: Errors
    broker_epoch: int = -1


@frozen(kw_only=True)
class BrokerHeartbeatRequest:
    broker_id: int
    broker_epoch: int


@frozen(kw_only=True)
class BrokerHeartbeatResponse:
    error: Errors
    is_fenced: bool = True


@frozen(kw_only=True)
class AlterPartitionRequest:
    """AlterPartitionRequest (v3+, KIP-903) for one partition: the leader's proposal, ISR members with the broker
    epoch the leader saw in their fetches (-1: unknown, not checked)."""

    broker_id: int
    tp: TopicPartition
    leader_epoch: int
    partition_epoch: int
    new_isr_with_epochs: tuple[tuple[int, int], ...]
    leader_recovery_state: LeaderRecoveryState = LeaderRecoveryState.RECOVERED


@frozen(kw_only=True)
class AlterPartitionResponse:
    """Per-partition AlterPartitionResponse: on NONE the partition as it now is."""

    error: Errors
    tp: TopicPartition
    leader: int = NO_LEADER
    isr: tuple[int, ...] = ()
    leader_epoch: int = -1
    partition_epoch: int = -1
    leader_recovery_state: LeaderRecoveryState = LeaderRecoveryState.RECOVERED


@frozen(kw_only=True)
class PartitionChange:
    """A PartitionRecord / PartitionChangeRecord was committed: every broker applies ``registration``."""

    tp: TopicPartition
    registration: PartitionRegistration
    unclean: bool = False  # the change elected a leader uncleanly (outside ISR and ELR): data can be lost


@frozen(kw_only=True)
class BrokerChange:
    """A RegisterBrokerRecord / BrokerRegistrationChangeRecord was committed: every broker's metadata cache
    updates ``registration``."""

    registration: BrokerRegistration


Effect = Respond | PartitionChange | BrokerChange


# --- PartitionChangeBuilder -------------------------------------------------------------------------------


class _Election(enum.Enum):
    """PCB.Election (PREFERRED is not modelled: no preferred-leader elections are requested)."""

    ONLINE = enum.auto()
    UNCLEAN = enum.auto()


_NO_CHANGE = object()  # PartitionChangeRecord.NO_LEADER_CHANGE / a null field


@frozen(kw_only=True)
class _ChangeRecord:
    """PartitionChangeRecord: a field left at ``_NO_CHANGE`` keeps the partition's value."""

    leader: object = _NO_CHANGE
    isr: object = _NO_CHANGE
    elr: object = _NO_CHANGE
    last_known_elr: object = _NO_CHANGE
    leader_recovery_state: object = _NO_CHANGE
    unclean: bool = False

    def is_no_op(self) -> bool:  # PCB.changeRecordIsNoOp
        return all(v is _NO_CHANGE for v in (self.leader, self.isr, self.elr, self.last_known_elr,
                                             self.leader_recovery_state))


def _merge(part: PartitionRegistration, record: _ChangeRecord) -> PartitionRegistration:
    """PR.merge: a leader change (also to NO_LEADER) bumps the leader epoch; every change bumps the partition
    epoch."""
    changes: dict[str, object] = {"partition_epoch": part.partition_epoch + 1}
    if record.leader is not _NO_CHANGE:
        changes["leader"] = record.leader
        changes["leader_epoch"] = part.leader_epoch + 1
    for name in ("isr", "elr", "last_known_elr", "leader_recovery_state"):
        value = getattr(record, name)
        if value is not _NO_CHANGE:
            changes[name] = value
    return evolve(part, **changes)


def _build(
    part: PartitionRegistration,
    *,
    target_isr: tuple[int, ...],
    is_acceptable_leader,
    min_isr: int,
    elr_enabled: bool,
    election: _Election,
    unclean_shutdown_replicas: tuple[int, ...] = (),
    target_leader_recovery_state: LeaderRecoveryState | None = None,
) -> _ChangeRecord | None:
    """PCB.build (no reassignment, ``useLastKnownLeaderInBalancedRecovery`` true as in Kafka): the change record
    that moves ``part`` to ``target_isr``, electing a leader as needed; None if nothing changes."""
    # PCB.maybePopulateTargetElr. (Its last-known-ELR list is not used: with useLastKnownLeaderInBalancedRecovery
    # the field holds only the last known leader, set by maybeUpdateLastKnownLeader below.)
    target_elr = part.elr
    if elr_enabled:
        if len(target_isr) >= min_isr:
            target_elr = ()
        else:
            target_elr = tuple(sorted(r for r in set(target_elr) | set(part.isr)
                                      if r not in target_isr and r not in unclean_shutdown_replicas))

    def is_valid_new_leader(replica: int) -> bool:  # PCB.isValidNewLeader
        in_isr_or_elr = replica in target_isr or (not target_isr and replica in target_elr)
        return in_isr_or_elr and is_acceptable_leader(replica)

    def can_elect_last_known_leader() -> bool:  # PCB.canElectLastKnownLeader
        return (elr_enabled and not target_elr and not target_isr and len(part.last_known_elr) == 1
                and is_acceptable_leader(part.last_known_elr[0]))

    # PCB.electAnyLeader
    if part.leader != NO_LEADER and is_valid_new_leader(part.leader):
        leader, unclean = part.leader, False
    else:
        clean = [r for r in part.replicas if is_valid_new_leader(r)]
        if clean:
            leader, unclean = clean[0], False
        elif can_elect_last_known_leader():
            leader, unclean = part.last_known_elr[0], True
        else:
            anyone = [r for r in part.replicas if is_acceptable_leader(r)] if election is _Election.UNCLEAN else []
            leader, unclean = (anyone[0], True) if anyone else (NO_LEADER, False)

    # PCB.tryElection
    record: dict[str, object] = {}
    if leader != part.leader:
        if leader in target_elr:
            target_isr = (leader,)
            target_elr = tuple(r for r in target_elr if r != leader)
        record["leader"] = leader
        if unclean:
            record["isr"] = (leader,)  # unclean: the ISR is forced to the new leader (data can be lost)
            if part.leader_recovery_state is not LeaderRecoveryState.RECOVERING:
                record["leader_recovery_state"] = LeaderRecoveryState.RECOVERING
            record["unclean"] = True

    # PCB.maybeUpdateRecordElr
    clean_election = "isr" not in record
    if not clean_election or not elr_enabled:
        target_elr = ()
    if target_elr != part.elr:
        record["elr"] = target_elr

    # If ELR is enabled, the ISR may become empty (PCB.build).
    if "isr" not in record and (target_isr or elr_enabled) and target_isr != part.isr:
        record["isr"] = target_isr
    # PCB.maybeUpdateLastKnownLeader
    new_leader = record.get("leader", _NO_CHANGE)
    if elr_enabled:
        if new_leader == NO_LEADER and not part.last_known_elr:
            record["last_known_elr"] = (part.leader,)  # first time leaderless: remember who led
        elif new_leader is not _NO_CHANGE and new_leader >= 0 and part.last_known_elr:
            record["last_known_elr"] = ()
    if target_leader_recovery_state is not None and target_leader_recovery_state is not part.leader_recovery_state:
        record["leader_recovery_state"] = target_leader_recovery_state
    change = _ChangeRecord(**record)
    return None if change.is_no_op() else change


# --- the controller ---------------------------------------------------------------------------------------


@define(eq=False)
class ReplicationControl:
    """The controller's replication state (RCM + CCM + BHM) for a set of partitions sharing one
    ``ReplicationConfig``.

    Every method returns the effects to apply, in order: the responses, then the metadata records to publish.
    """

    config: ReplicationConfig
    _brokers: dict[int, BrokerRegistration] = field(factory=dict, init=False)
    _last_contact: dict[int, int] = field(factory=dict, init=False)  # BrokerHeartbeatTracker.contactTimes
    _partitions: dict[TopicPartition, PartitionRegistration] = field(factory=dict, init=False)
    # The broker epoch is the offset of the RegisterBrokerRecord in the metadata log: it only grows.
    _next_broker_epoch: int = field(default=1, init=False)

    # --- read-only views -------------------------------------------------------------------------------

    def partition(self, tp: TopicPartition) -> PartitionRegistration:
        return self._partitions[tp]

    def broker(self, broker_id: int) -> BrokerRegistration | None:
        return self._brokers.get(broker_id)

    def broker_state(self, broker_id: int) -> BrokerState:
        registration = self._brokers.get(broker_id)
        if registration is None:
            return BrokerState.UNREGISTERED
        return BrokerState.FENCED if registration.fenced else BrokerState.UNFENCED

    def is_active(self, broker_id: int) -> bool:
        """CCM.isActive: registered and not fenced (no controlled shutdown in the model)."""
        return self.broker_state(broker_id) is BrokerState.UNFENCED

    # --- brokers ---------------------------------------------------------------------------------------

    def register_broker(self, correlation_id: int, request: RegisterBrokerRequest, now: int) -> list[Effect]:
        """CCM.registerBroker for a new incarnation (a broker process that (re)started)."""
        broker_id = request.broker_id
        existing = self._brokers.get(broker_id)
        if existing is not None and self._has_valid_session(broker_id, now):
            # CCM: the old incarnation's session is still valid; the broker retries until it expires.
            return [Respond(correlation_id=correlation_id,
                            response=RegisterBrokerResponse(error=Errors.DUPLICATE_BROKER_REGISTRATION))]
        self._transition(broker_id, BrokerEvent.REGISTER)
        effects: list[Effect] = []
        if existing is not None:
            # CCM -> RCM.handleBrokerShutdown for the previous incarnation: with ELR on and an unclean shutdown it
            # leaves ISRs and ELRs and may not lead; otherwise it is handled as fenced.
            if self.config.eligible_leader_replicas_enabled and not request.clean_shutdown:
                effects += self._leader_and_isr_updates(unclean_shutdown=broker_id, in_isr_or_elr=broker_id)
            else:
                effects += self._leader_and_isr_updates(remove=broker_id, in_isr_of=broker_id)
        epoch = self._next_broker_epoch
        self._next_broker_epoch += 1
        registration = BrokerRegistration(broker_id=broker_id, broker_epoch=epoch, fenced=True)
        self._brokers[broker_id] = registration
        self._last_contact[broker_id] = now  # BHM.register starts the session
        response = Respond(correlation_id=correlation_id,
                           response=RegisterBrokerResponse(error=Errors.NONE, broker_epoch=epoch))
        return [response, *effects, BrokerChange(registration=registration)]

    def heartbeat(self, correlation_id: int, request: BrokerHeartbeatRequest, now: int) -> list[Effect]:
        """BrokerHeartbeat (QuorumController.processBrokerHeartbeat): renews the session; a fenced broker is
        unfenced (it has caught up with the metadata log: always, in the model) and leads leaderless partitions it
        may lead (RCM.handleBrokerUnfenced)."""
        registration = self._brokers.get(request.broker_id)
        if registration is None or registration.broker_epoch != request.broker_epoch:
            return [Respond(correlation_id=correlation_id,
                            response=BrokerHeartbeatResponse(error=Errors.STALE_BROKER_EPOCH))]
        self._last_contact[request.broker_id] = now
        effects: list[Effect] = []
        if registration.fenced:
            self._transition(request.broker_id, BrokerEvent.UNFENCE)
            registration = evolve(registration, fenced=False)
            self._brokers[request.broker_id] = registration
            effects.append(BrokerChange(registration=registration))
            effects += self._leader_and_isr_updates(add=request.broker_id, leaderless=True)
        response = BrokerHeartbeatResponse(error=Errors.NONE, is_fenced=registration.fenced)
        return [Respond(correlation_id=correlation_id, response=response), *effects]

    def on_timer(self, now: int) -> list[Effect]:
        """BHM.findOneStaleBroker / RCM.handleBrokerFenced: fence every unfenced broker whose session expired (by
        broker id), moving it out of ISRs and leadership."""
        effects: list[Effect] = []
        for broker_id in sorted(self._brokers):
            if self.is_active(broker_id) and not self._has_valid_session(broker_id, now):
                effects += self._leader_and_isr_updates(remove=broker_id, in_isr_of=broker_id)
                self._transition(broker_id, BrokerEvent.FENCE)
                registration = evolve(self._brokers[broker_id], fenced=True)
                self._brokers[broker_id] = registration
                effects.append(BrokerChange(registration=registration))
        return effects

    def next_deadline(self) -> int | None:
        """When ``on_timer`` next has something to fence."""
        deadlines = [self._last_contact[b] + self.config.broker_session_timeout_ms + 1
                     for b in sorted(self._brokers) if self.is_active(b)]
        return min(deadlines, default=None)

    # --- partitions ------------------------------------------------------------------------------------

    def create_partition(self, tp: TopicPartition, replicas: tuple[int, ...]) -> list[Effect]:
        """RCM.createPartitions with a manual assignment: ISR = the active replicas, leader = the first of them,
        epochs 0 (RCM.buildPartitionRegistration).

        Raises:
            ModelError: the partition exists, or no replica is active (Kafka refuses the CreateTopics request).
        """
        if tp in self._partitions:
            raise ModelError(f"{tp} already exists")
        isr = tuple(r for r in replicas if self.is_active(r))
        if not isr:
            raise ModelError(f"{tp}: all replicas {replicas} are fenced")
        part = PartitionRegistration(replicas=tuple(replicas), isr=isr, leader=isr[0])
        self._partitions[tp] = part
        return [PartitionChange(tp=tp, registration=part)]

    def alter_partition(self, correlation_id: int, request: AlterPartitionRequest) -> list[Effect]:
        """RCM.alterPartition for one partition."""
        part = self._partitions.get(request.tp)
        error = self._validate_alter_partition(request, part)
        if error is not Errors.NONE:
            return [Respond(correlation_id=correlation_id,
                            response=AlterPartitionResponse(error=error, tp=request.tp))]
        effects: list[Effect] = []
        record = _build(
            part,
            target_isr=tuple(b for b, _ in request.new_isr_with_epochs),
            is_acceptable_leader=self.is_active,
            min_isr=self._effective_min_isr(part),
            elr_enabled=self.config.eligible_leader_replicas_enabled,
            election=self._election(),
            target_leader_recovery_state=request.leader_recovery_state,
        )
        if record is not None:
            part = _merge(part, record)
            self._partitions[request.tp] = part
            effects.append(PartitionChange(tp=request.tp, registration=part, unclean=record.unclean))
        response = AlterPartitionResponse(
            error=Errors.NONE, tp=request.tp, leader=part.leader, isr=part.isr, leader_epoch=part.leader_epoch,
            partition_epoch=part.partition_epoch, leader_recovery_state=part.leader_recovery_state,
        )
        return [Respond(correlation_id=correlation_id, response=response), *effects]

    # --- helpers ---------------------------------------------------------------------------------------

    def _validate_alter_partition(self, request: AlterPartitionRequest, part: PartitionRegistration | None) -> Errors:
        """RCM.validateAlterPartitionData, in Kafka's order."""
        if part is None:
            return Errors.UNKNOWN_TOPIC_OR_PARTITION
        if request.leader_epoch > part.leader_epoch or request.partition_epoch > part.partition_epoch:
            return Errors.NOT_CONTROLLER
        if request.leader_epoch < part.leader_epoch:
            return Errors.FENCED_LEADER_EPOCH
        if request.broker_id != part.leader:
            return Errors.INVALID_REQUEST
        if request.partition_epoch < part.partition_epoch:
            return Errors.INVALID_UPDATE_VERSION
        new_isr = [b for b, _ in request.new_isr_with_epochs]
        # Replicas.validateIsr: members are replicas, no duplicates; the leader must stay in.
        if len(set(new_isr)) != len(new_isr) or not set(new_isr) <= set(part.replicas) or part.leader not in new_isr:
            return Errors.INVALID_REQUEST
        if request.leader_recovery_state is LeaderRecoveryState.RECOVERING and len(new_isr) > 1:
            return Errors.INVALID_REQUEST
        if (part.leader_recovery_state is LeaderRecoveryState.RECOVERED
                and request.leader_recovery_state is LeaderRecoveryState.RECOVERING):
            return Errors.INVALID_REQUEST
        # RCM.ineligibleReplicasForIsr (KIP-903): unregistered, fenced, or a broker epoch that is not the
        # registered one (-1 skips the check).
        for broker_id, broker_epoch in request.new_isr_with_epochs:
            registration = self._brokers.get(broker_id)
            if (registration is None or registration.fenced
                    or (broker_epoch != -1 and broker_epoch != registration.broker_epoch)):
                return Errors.INELIGIBLE_REPLICA
        return Errors.NONE

    def _leader_and_isr_updates(
        self,
        *,
        remove: int = NO_LEADER,
        add: int = NO_LEADER,
        unclean_shutdown: int = NO_LEADER,
        in_isr_of: int | None = None,
        in_isr_or_elr: int | None = None,
        leaderless: bool = False,
    ) -> list[Effect]:
        """RCM.generateLeaderAndIsrUpdates over the partitions chosen (BrokersToIsrs / BrokersToElrs), in
        TopicPartition order: ``remove`` / ``unclean_shutdown`` leave the ISR and may not lead; ``add`` may lead
        although the controller still shows it fenced."""

        def is_acceptable_leader(r: int) -> bool:
            return r not in (remove, unclean_shutdown) and (r == add or self.is_active(r))

        effects: list[Effect] = []
        for tp in sorted(self._partitions):
            part = self._partitions[tp]
            chosen = (
                (in_isr_of is not None and in_isr_of in part.isr)
                or (in_isr_or_elr is not None and (in_isr_or_elr in part.isr or in_isr_or_elr in part.elr))
                or (leaderless and part.leader == NO_LEADER)
            )
            if not chosen:
                continue
            record = _build(
                part,
                target_isr=tuple(r for r in part.isr if r not in (remove, unclean_shutdown)),
                is_acceptable_leader=is_acceptable_leader,
                min_isr=self._effective_min_isr(part),
                elr_enabled=self.config.eligible_leader_replicas_enabled,
                election=self._election(),
                unclean_shutdown_replicas=() if unclean_shutdown == NO_LEADER else (unclean_shutdown,),
            )
            if record is not None:
                part = _merge(part, record)
                self._partitions[tp] = part
                effects.append(PartitionChange(tp=tp, registration=part, unclean=record.unclean))
        return effects

    def _effective_min_isr(self, part: PartitionRegistration) -> int:
        """RCM.getTopicEffectiveMinIsr: min.insync.replicas capped at the replication factor."""
        return min(self.config.min_insync_replicas, len(part.replicas))

    def _election(self) -> _Election:
        """RCM: every ISR change of a topic with unclean.leader.election.enable may elect uncleanly."""
        return _Election.UNCLEAN if self.config.unclean_leader_election_enable else _Election.ONLINE

    def _has_valid_session(self, broker_id: int, now: int) -> bool:
        """BrokerHeartbeatTracker.hasValidSession: contact within broker.session.timeout.ms."""
        return now - self._last_contact[broker_id] <= self.config.broker_session_timeout_ms

    def _transition(self, broker_id: int, event: BrokerEvent) -> None:
        state = self.broker_state(broker_id)
        if (state, event) not in BROKER_TRANSITIONS:
            raise IllegalTransition("ReplicationControl", state, event)
