"""Checkers over a run's outputs: Jepsen's Kafka checker over the client history
(:mod:`sim.checkers.jepsen`) and simulator-only invariants over the trace
(:mod:`sim.checkers.oracle`). Both return a :class:`CheckResult`; :func:`combine` merges them and
:func:`exit_code` maps the verdict to Jepsen's exit codes (0 valid, 1 invalid, 2 unknown)."""

from sim.checkers.anomaly import Anomaly, CheckResult
from sim.checkers.combine import combine, exit_code
from sim.checkers.jepsen import check_history
from sim.checkers.oracle import check_trace

__all__ = ["Anomaly", "CheckResult", "check_history", "check_trace", "combine", "exit_code"]
