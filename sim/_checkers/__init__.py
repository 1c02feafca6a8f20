"""Checkers over a run's outputs: Jepsen's Kafka checker over the client history
(:mod:`eosim._checkers.jepsen`) and simulator-only invariants over the trace
(:mod:`eosim._checkers.oracle`). Both return a :class:`CheckResult`; :func:`combine` merges them and
:func:`exit_code` maps the verdict to Jepsen's exit codes (0 valid, 1 invalid, 2 unknown)."""

from eosim._checkers.anomaly import Anomaly, CheckResult
from eosim._checkers.combine import combine, exit_code
from eosim._checkers.jepsen import check_history
from eosim._checkers.oracle import check_trace

__all__ = ["Anomaly", "CheckResult", "check_history", "check_trace", "combine", "exit_code"]
