"""The trace: rendered when read, and a long run's trace spilled to a temporary file reads back exactly
as the events held in memory (the same JSON lines, events, kinds and verdict)."""

from __future__ import annotations

import pytest

from eosim import _trace
from eosim._cli import scenario_dir
from eosim._runner import _ORACLE_KINDS, run_scenario
from eosim._scenario import load_scenario
from eosim._trace import Trace, dumps_lines


def _run(name: str, seed: int = 1):
    return run_scenario(load_scenario(scenario_dir() / f"{name}.toml"), seed)


@pytest.mark.parametrize("name", ["fault-random-nemesis", "zombie-fencing"])
def test_a_spilled_trace_reads_back_as_the_one_in_memory(name, monkeypatch):
    held = _run(name)
    monkeypatch.setattr(_trace, "SPILL_EVENTS", 37)
    spilled = _run(name)
    assert dumps_lines(spilled.trace) == dumps_lines(held.trace)
    assert len(spilled.trace) == len(held.trace)
    assert [spilled.trace[i] for i in (0, 36, 37, 60, -1)] == [held.trace[i] for i in (0, 36, 37, 60, -1)]
    assert spilled.trace[3:40] == held.trace[3:40]
    assert list(spilled.trace.of_kinds(_ORACLE_KINDS)) == list(held.trace.of_kinds(_ORACLE_KINDS))
    assert spilled.results_json() == held.results_json()


def test_events_render_the_values_they_were_emitted_with():
    trace = Trace(clock=lambda: 5)
    event = trace.emit("b0", "log.offsets", tp=("out", 0), failed=[1, 2])
    assert event.fields == {"tp": ("out", 0), "failed": [1, 2]}
    assert trace.dicts()[0] == {"seq": 0, "t": 5, "node": "b0", "kind": "log.offsets",
                                "data": {"tp": ["out", 0], "failed": [1, 2]}}
    with pytest.raises(IndexError):
        trace.dicts()[1]
