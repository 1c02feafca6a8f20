"""eosim.models.api
==========

The requests by Kafka API name, the response a broker sends when it answers a request with an error
(each request's ``getErrorResponse``, clients/.../common/requests/*Request.java), and the errors a broker
answers for reasons the models do not simulate: replicas falling out of sync, coordinators moving or
loading. The fault layer (sim/_faults.py) injects those; which of them come *after* the broker did the
work is Kafka's behaviour, so it is stated here, not chosen by a scenario.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs

from eosim.models.errors import Errors
from eosim.models.consumer_group import ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse
from eosim.models.group_coordinator import (
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)
from eosim.models.log import FetchResult
from eosim.models.protocol import (
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)
from eosim.models.txn_coordinator import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    EndTxnRequest,
    EndTxnResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
)

E = Errors

# AbstractRequest.getErrorResponse of each request: every partition it names carries the error.
ERROR_RESPONSES: dict[type, Callable[[Any, Errors], Any]] = {
    ProduceRequest: lambda r, e: ProduceResponse(
        responses=tuple(PartitionProduceResponse(partition=tp, error=e) for tp, _ in r.batches)),
    FetchRequest: lambda r, e: FetchResponse(responses=tuple(
        (tp, FetchResult(error=e, batches=(), high_watermark=-1, last_stable_offset=-1, log_start_offset=-1,
                         aborted_transactions=(), fetch_offset=offset)) for tp, offset in r.partitions)),
    ListOffsetsRequest: lambda r, e: ListOffsetsResponse(responses=tuple((tp, e, -1) for tp, _ in r.partitions)),
    WriteTxnMarkersRequest: lambda r, e: WriteTxnMarkersResponse(results=tuple((tp, e) for tp in r.entry.partitions)),
    InitProducerIdRequest: lambda r, e: InitProducerIdResponse(error=e),
    AddPartitionsToTxnRequest: lambda r, e: AddPartitionsToTxnResponse(results=tuple((tp, e) for tp in r.partitions)),
    AddOffsetsToTxnRequest: lambda r, e: AddOffsetsToTxnResponse(error=e),
    EndTxnRequest: lambda r, e: EndTxnResponse(error=e),
    JoinGroupRequest: lambda r, e: JoinGroupResponse(error=e),
    ConsumerGroupHeartbeatRequest: lambda r, e: ConsumerGroupHeartbeatResponse(error=e, member_id=r.member_id),
    SyncGroupRequest: lambda r, e: SyncGroupResponse(error=e),
    HeartbeatRequest: lambda r, e: HeartbeatResponse(error=e),
    LeaveGroupRequest: lambda r, e: LeaveGroupResponse(error=e),
    OffsetCommitRequest: lambda r, e: OffsetCommitResponse(results=tuple((tp, e) for tp, _ in r.offsets)),
    TxnOffsetCommitRequest: lambda r, e: TxnOffsetCommitResponse(results=tuple((tp, e) for tp, _ in r.offsets)),
    # v2+ carries the error at the top level too (OffsetFetchResponse.java)
    OffsetFetchRequest: lambda r, e: OffsetFetchResponse(error=e, results=tuple((tp, -1, e) for tp in r.partitions)),
}

# Kafka's API names (ApiKeys.java) of the requests above.
API_NAMES: tuple[str, ...] = tuple(sorted(cls.__name__.removesuffix("Request") for cls in ERROR_RESPONSES))


def error_response(request: Any, error: Errors) -> Any:
    """The response a broker sends when it answers ``request`` with ``error``."""
    return ERROR_RESPONSES[type(request)](request, error)


# KIP-588: a request older than the version that knows PRODUCER_FENCED gets INVALID_PRODUCER_EPOCH instead
# (KafkaApis: handleInitProducerIdRequest below v4; handleAddPartitionsToTxnRequest,
# handleAddOffsetsToTxnRequest and handleEndTxnRequest below v2).
FIRST_VERSION_WITH_PRODUCER_FENCED: dict[type, int] = {
    InitProducerIdRequest: 4, AddPartitionsToTxnRequest: 2, AddOffsetsToTxnRequest: 2, EndTxnRequest: 2,
}


def as_sent(request: Any, response: Any) -> Any:
    """``response`` as the broker writes it for the version ``request`` was sent with."""
    first = FIRST_VERSION_WITH_PRODUCER_FENCED.get(type(request))
    if first is None or request.api_version >= first:
        return response

    fenced = E.PRODUCER_FENCED
    if isinstance(response, AddPartitionsToTxnResponse):
        if all(e is not fenced for _, e in response.results):
            return response  # nothing to translate: no copy
        return attrs.evolve(response, results=tuple((tp, E.INVALID_PRODUCER_EPOCH if e is fenced else e)
                                                    for tp, e in response.results))
    if response.error is not fenced:
        return response
    return attrs.evolve(response, error=E.INVALID_PRODUCER_EPOCH)


def api_name(message: Any) -> str:
    """The API a request or response belongs to, by Kafka's name (``"Produce"``, ``"EndTxn"`` ...)."""
    return type(message).__name__.removesuffix("Request").removesuffix("Response")


# The coordinators' "not here / not ready" errors (KafkaApis: the coordinator of the key's partition is
# another broker, unavailable, or still loading its log after a failover); the request is refused.
_COORDINATOR = {E.NOT_COORDINATOR: False, E.COORDINATOR_NOT_AVAILABLE: False, E.COORDINATOR_LOAD_IN_PROGRESS: False}
_LEADER = {E.NOT_LEADER_OR_FOLLOWER: False, E.KAFKA_STORAGE_ERROR: False}

# API name -> {error: answered after the broker did the work}. Produce: Partition.appendRecordsToLeader
# refuses with NOT_ENOUGH_REPLICAS when the ISR is below min.insync.replicas, before appending; the
# DelayedProduce answers NOT_ENOUGH_REPLICAS_AFTER_APPEND (the ISR shrank) or REQUEST_TIMED_OUT (the
# followers did not catch up in time) after the leader appended (DelayedProduce.scala).
INFRASTRUCTURE_ERRORS: dict[str, dict[Errors, bool]] = {
    "Produce": {E.NOT_ENOUGH_REPLICAS: False, E.NOT_ENOUGH_REPLICAS_AFTER_APPEND: True, E.REQUEST_TIMED_OUT: True,
                **_LEADER},
    "Fetch": _LEADER,
    "ListOffsets": _LEADER,
    "WriteTxnMarkers": {E.NOT_ENOUGH_REPLICAS: False, E.NOT_LEADER_OR_FOLLOWER: False},
    **{name: _COORDINATOR for name in ("InitProducerId", "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn",
                                       "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup", "ConsumerGroupHeartbeat",
                                       "OffsetCommit", "OffsetFetch", "TxnOffsetCommit")},
}

# The transaction coordinator's own appends to __transaction_state are no request, so a fault rule names them
# by this pseudo-API. TSM.appendTransactionToLog appends through ReplicaManager.appendRecords with acks=all, the
# path of Produce: with the ISR below min.insync.replicas the leader refuses with NOT_ENOUGH_REPLICAS before it
# appends, or answers NOT_ENOUGH_REPLICAS_AFTER_APPEND once the ISR shrank after it appended; the coordinator maps
# both to COORDINATOR_NOT_AVAILABLE and stays the coordinator. Left out: REQUEST_TIMED_OUT (Kafka gives it only
# after request.timeout.ms of waiting for the followers, a wait the simulated append does not have), and the
# leader errors, which come with a leadership move (the coordinator_failover op).
TXN_LOG_APPEND = "TxnLogAppend"
TXN_LOG_APPEND_ERRORS: dict[Errors, bool] = {E.NOT_ENOUGH_REPLICAS: False, E.NOT_ENOUGH_REPLICAS_AFTER_APPEND: True}


def injectable_errors(message: str) -> dict[Errors, bool]:
    """The errors a fault rule can inject into ``message`` (an API name, or ``TXN_LOG_APPEND``), each mapped to
    whether it comes after the work."""
    return TXN_LOG_APPEND_ERRORS if message == TXN_LOG_APPEND else INFRASTRUCTURE_ERRORS[message]
