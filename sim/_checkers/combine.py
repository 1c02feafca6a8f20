"""Merging checker results and turning them into process exit codes, as Jepsen does."""

from __future__ import annotations

from eosim._checkers.anomaly import CheckResult, Validity

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN = 0, 1, 2  # jepsen.cli: 0 passed, 1 failed, 2 :unknown


def _merge_valid(values: list[Validity]) -> Validity:
    # jepsen.checker/merge-valid: false beats :unknown beats true.
    if any(v is False for v in values):
        return False
    if any(v == "unknown" for v in values):
        return "unknown"
    return True


def combine(*results: CheckResult) -> CheckResult:
    return CheckResult(
        _merge_valid([r.valid for r in results]),
        [a for r in results for a in r.anomalies],
        [a for r in results for a in r.allowed],
    )


def exit_code(result: CheckResult) -> int:
    if result.valid is True:
        return EXIT_VALID
    return EXIT_INVALID if result.valid is False else EXIT_UNKNOWN
