"""LeaderEpochFileCache (KIP-101): assignment, end offsets per epoch, truncation (LeaderEpochFileCache.java)."""

from __future__ import annotations

import pytest

from eosim.models.errors import ModelError
from eosim.models.leader_epoch_cache import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, EpochEntry, LeaderEpochFileCache


def cache(*pairs: tuple[int, int]) -> LeaderEpochFileCache:
    c = LeaderEpochFileCache()
    for epoch, offset in pairs:
        c.assign(epoch, offset)
    return c


def entries(c: LeaderEpochFileCache) -> list[tuple[int, int]]:
    return [(e.epoch, e.start_offset) for e in c.entries]


def test_assign_keeps_the_first_offset_of_an_epoch():
    c = cache((0, 0), (0, 5), (1, 7))
    assert entries(c) == [(0, 0), (1, 7)]
    assert c.latest_epoch == 1


def test_assign_drops_entries_that_would_not_be_monotonic():
    # LEFC.maybeTruncateNonMonotonicEntries: a later epoch at an earlier offset replaces what it overlaps
    c = cache((0, 0), (1, 5), (2, 8))
    c.assign(3, 6)
    assert entries(c) == [(0, 0), (1, 5), (3, 6)]
    c.assign(2, 9)  # an older epoch than the latest goes in only after dropping the newer ones
    assert entries(c) == [(0, 0), (1, 5), (2, 9)]


def test_assign_refuses_negative_values():
    with pytest.raises(ModelError):
        LeaderEpochFileCache().assign(-1, 0)
    with pytest.raises(ModelError):
        LeaderEpochFileCache().assign(0, -1)


@pytest.mark.parametrize("requested, expected", [
    (UNDEFINED_EPOCH, (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)),
    (4, (4, 20)),  # the latest epoch ends at the log end offset
    (2, (2, 10)),  # an older epoch ends where the next one starts
    (3, (2, 10)),  # an epoch this log never had: the largest one below it, ending where the next starts
    (1, (1, 5)),   # below every cached epoch: the start of the first one
    (5, (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)),  # above every cached epoch
])
def test_end_offset_for(requested, expected):
    c = cache((2, 5), (4, 10))
    assert c.end_offset_for(requested, 20) == expected


def test_truncate_from_end_drops_epochs_starting_at_or_after_the_offset():
    c = cache((0, 0), (1, 5), (2, 8))
    c.truncate_from_end(8)
    assert entries(c) == [(0, 0), (1, 5)]
    c.truncate_from_end(6)
    assert entries(c) == [(0, 0), (1, 5)]
    c.truncate_from_end(0)
    assert c.entries == () and c.latest_epoch is None


def test_entries_are_values():
    assert cache((3, 4)).entries == (EpochEntry(epoch=3, start_offset=4),)
