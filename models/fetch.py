"""eosim.models.fetch
============

What a consumer hands to the application from one partition's fetch response: the client-side
read_committed filter of Kafka's Java consumer
(clients/src/main/java/org/apache/kafka/clients/consumer/internals/CompletedFetch.java,
``nextFetchedRecord``). The broker bounds the response by the LSO (read_committed) or the HW
(read_uncommitted); the client drops aborted transactional data and all control records.
"""

from __future__ import annotations

import heapq

from eosim.models.log import FetchResult
from eosim.models.records import ControlType, IsolationLevel, Record


_ABORT = ControlType.ABORT  # a module constant: an enum member read through its class is a Python call on 3.11


def visible_records(result: FetchResult, isolation: IsolationLevel) -> list[tuple[int, Record]]:
    """The (offset, record) pairs the application sees, in offset order.

    read_committed: a min-heap of the response's aborted txns by first offset feeds a set of aborted
    pids; before each batch with a pid, every aborted txn starting at or before the batch's last offset
    is popped into the set (consumeAbortedTransactionsUpTo); an ABORT marker removes its pid; a
    transactional data batch of a pid in the set is skipped whole. Non-transactional batches are never
    skipped. Control records are never returned, in either isolation level, and neither are records
    below the fetch offset (the first batch can start before it).
    """
    read_committed = isolation is IsolationLevel.READ_COMMITTED
    aborted = [(t.first_offset, i, t.producer_id) for i, t in enumerate(result.aborted_transactions)]
    heapq.heapify(aborted)
    aborted_pids: set[int] = set()
    fetch_offset = result.fetch_offset
    visible = []
    for batch in result.batches:
        if read_committed and batch.producer_id >= 0:
            while aborted and aborted[0][0] <= batch.last_offset:
                aborted_pids.add(heapq.heappop(aborted)[2])
            if batch.control is _ABORT:
                aborted_pids.discard(batch.producer_id)  # later batches of this pid belong to a new txn
            elif batch.is_transactional and batch.producer_id in aborted_pids:
                continue  # CompletedFetch.isBatchAborted
        if batch.is_control:
            continue
        offset = batch.base_offset
        for record in batch.records:
            if offset >= fetch_offset:
                visible.append((offset, record))
            offset += 1
    return visible


def next_offset(result: FetchResult, fetch_offset: int) -> int:
    """The consumer's position after consuming the whole response: past the last returned batch,
    whether it held data, a control record or an aborted transaction's data."""
    if not result.batches:
        return fetch_offset
    return max(fetch_offset, result.batches[-1].next_offset)
