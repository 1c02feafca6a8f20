"""eosim._conformable
==================

Which of the simulator's fault rules the real-Kafka backend reproduces: its Kafka-protocol proxy
(sim/_realkafka/proxy.py) drops the first messages of one API on the client connections. Backend-neutral
and stdlib only, so that the scenario loader refuses a conformance scenario the proxy cannot run without
importing the proxy.
"""

from __future__ import annotations

from typing import Any

# The simulator's APIs (models/api.py API_NAMES) whose traffic the proxy sees exactly as the simulator
# routes it: client <-> broker only. Refused: AddPartitionsToTxn and WriteTxnMarkers, which the simulated
# broker also sends to itself (KIP-890 verification, the coordinator's markers) while Kafka sends them on its
# inter-broker listener, which no proxy sits on; and the group-membership APIs (JoinGroup, SyncGroup,
# ConsumerGroupHeartbeat), not yet checked against Kafka through the proxy.
DROPPABLE_APIS: tuple[str, ...] = ("AddOffsetsToTxn", "EndTxn", "Fetch", "Heartbeat", "InitProducerId", "LeaveGroup",
                                   "ListOffsets", "OffsetCommit", "OffsetFetch", "Produce", "TxnOffsetCommit")


def refusal(fault: Any) -> str | None:
    """Why the proxy cannot reproduce the simulator's fault rule ``fault`` (a eosim._scenario.Fault) exactly, or
    None when it can: a drop of the first ``count`` messages of one API on the client connections, armed from
    the start."""
    if fault.action != "drop":
        return f'action = "{fault.action}": the proxy only drops messages'
    if fault.message is None:
        return "a drop needs message (the proxy drops messages of one API)"
    if fault.message not in DROPPABLE_APIS:
        return (f'message = "{fault.message}": the proxy drops only {", ".join(DROPPABLE_APIS)} (the simulator '
                "sends AddPartitionsToTxn and WriteTxnMarkers broker to broker too; dropping group-membership "
                "requests is not checked against Kafka yet)")
    for name in ("node", "src", "dst", "topic", "partition", "transactional_id", "after_step"):
        if getattr(fault, name) is not None:
            return f"{name}: the proxy selects by message, direction and count only, armed from the start"
    if not isinstance(fault.count, int):
        return f'count = "{fault.count}": the proxy has no heal'
    return None
