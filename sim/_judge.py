"""eosim._judge
============

Judging a run, on either backend (the simulator's runner, sim/_runner.py, and the real-Kafka driver,
sim/_realkafka/driver.py): the settle period after the last step, the observation of the final state,
and the verdict of the checkers against the scenario's own claims. Backend-neutral: no SimPy.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Callable, Sequence

from eosim import _scenario as sc
from eosim._checkers import Anomaly, CheckResult, combine
from eosim._checkers.jepsen import check_recorded
from eosim._checkers.oracle import TraceOracle, check_trace, trace_kinds
from eosim._checkers.pipeline import check_pipeline
from eosim._interpret import Interpreter
from eosim._observation import GroupObservation, Observation, PartitionObservation, check_expectations
from eosim._trace import TraceEvent, TraceView
from eosim._verdict import Verdict

SETTLE_MS = 1_000  # after the last step: markers and commits in flight land before the observation


def observation_of(scenario: sc.Scenario, interpreter: Interpreter, partitions: list[PartitionObservation],
                   committed: Callable[[str], list[tuple[str, int, int]]]) -> Observation:
    """The observation of a run on any backend: its steps, the partitions' final state, and the
    committed offsets (``committed(group)``) of every group a consumer actor belongs to."""
    groups = sorted({str(a.config["group.id"]) for a in scenario.actors.values() if "group.id" in a.config})
    return Observation(
        scenario=scenario.name,
        steps=interpreter.steps,  # the interpreter's columns, read as StepObservations
        partitions=partitions,
        groups=[GroupObservation(group=g, committed=committed(g)) for g in groups])


ORACLE_KINDS = trace_kinds()
_OP = attrgetter("op")


def judge(scenario: sc.Scenario, interpreter: Interpreter, observation: Observation,
          trace: Sequence[TraceEvent], completed: bool) -> CheckResult:
    """The checkers and the scenario's unmet claims as one result (see :func:`verdict_of`)."""
    return verdict_of(scenario, interpreter, observation, trace, completed).combined()


def verdict_of(scenario: sc.Scenario, interpreter: Interpreter, observation: Observation,
               trace: Sequence[TraceEvent] | TraceOracle, completed: bool, max_events: int = sc.MAX_EVENTS) -> Verdict:
    """Close the history with the final read of the observation, then run every checker, and hold
    the result against the scenario's own claims (its expectations and the anomalies it declares).
    ``trace``: the run's trace, or the oracle that has been reading it as the run went (``TraceOracle``)."""
    interpreter.recorder.final_read(observation.partitions)
    history = interpreter.history
    subscribe_used = "subscribe" in map(_OP, scenario.steps)
    if isinstance(trace, TraceOracle):
        trace_result = trace.check()
    else:
        if isinstance(trace, TraceView):  # a spilled trace reads back only the events the oracle reads
            trace = trace.of_kinds(ORACLE_KINDS)
        trace_result = check_trace(trace)
    result = combine(check_recorded(history, subscribe_used=subscribe_used), trace_result)
    if scenario.scenario.pipeline is not None:
        result = combine(result, check_pipeline(_committed(observation, scenario.scenario.pipeline.input),
                                                _committed(observation, scenario.scenario.pipeline.output)))
    if not completed:  # Jepsen's "unknown": a run that did not finish cannot vouch for anything
        stuck = Anomaly(name="incomplete", witness=(),
                        description=f"the run had not finished and settled within the limits of {sc.MAX_SIM_MS} ms "
                                    f"of simulated time and {max_events} events")
        result = combine(result, CheckResult(valid="unknown", anomalies=(stuck,), allowed=()))
    return Verdict(result, scenario.scenario.expect_anomalies, tuple(check_expectations(scenario, observation)))


def _committed(observation: Observation, topic: str) -> list[tuple[str, int, Any]]:
    return [(f"{p.topic}-{p.partition}", offset, value)
            for p in observation.partitions if p.topic == topic for offset, _key, value in p.read_committed]
