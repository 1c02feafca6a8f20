"""eosim._verdict
=============

A run's verdict in two parts (docs/cli.md, "Verdicts"):

- **guarantees**: did Kafka keep its promises? The checkers' result, Jepsen's ``valid`` (true,
  false or "unknown"), untouched by what the scenario claims;
- **as this scenario expects**: did the run show exactly the anomalies the scenario declares
  (``expect_anomalies``), and did its own expectations (``expect_error``, ``[expect]``, ...) hold?

A broken-pattern scenario that shows exactly its declared anomalies is "broken as expected" and
exits 0; an anomaly it does not declare, a declared one that is missing, or a failed expectation
exits 1. A run that did not finish (or a checker that cannot tell) is "unknown", exit 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from attrs import frozen

from eosim._checkers import Anomaly, CheckResult, combine

EXIT_AS_EXPECTED, EXIT_NOT_AS_EXPECTED, EXIT_UNKNOWN = 0, 1, 2
MISMATCH = "expectation-mismatch"  # the anomaly name of a failed scenario claim in a combined result

Status = Literal["valid", "broken as expected", "INVALID", "unknown"]
_GUARANTEES = {True: "held", False: "broken", "unknown": "undecided"}
_ANSWER = {True: "yes", False: "NO", "unknown": "cannot tell"}


@frozen
class Verdict:
    checks: CheckResult  # the checkers only: Kafka's guarantees
    expected: tuple[str, ...]  # the scenario's expect_anomalies
    mismatches: tuple[str, ...]  # the scenario's own expectations that did not hold, one sentence each

    @property
    def unexpected(self) -> list[str]:
        return [name for name in self.checks.anomaly_types if name not in self.expected and name != "incomplete"]

    @property
    def missing(self) -> list[str]:
        return sorted(set(self.expected) - set(self.checks.anomaly_types))

    @property
    def as_expected(self) -> bool | Literal["unknown"]:
        if self.checks.valid == "unknown" and self.unexpected:
            return "unknown"  # undecided anomalies the scenario does not declare
        if "incomplete" in self.checks.anomaly_types:  # an unfinished run cannot vouch for anything ...
            return False if self.unexpected else "unknown"  # ... but a definite undeclared anomaly stands
        return not (self.unexpected or self.missing or self.mismatches)

    @property
    def status(self) -> Status:
        if self.as_expected == "unknown":
            return "unknown"
        if self.as_expected is False:
            return "INVALID"
        return "valid" if self.checks.valid is True else "broken as expected"

    @property
    def exit_code(self) -> int:
        return {True: EXIT_AS_EXPECTED, False: EXIT_NOT_AS_EXPECTED}.get(self.as_expected, EXIT_UNKNOWN)

    def claims(self) -> list[str]:
        """Every way the run differs from what the scenario claims, one sentence each."""
        unexpected = [f"the checkers report {name}, which the scenario does not expect"
                      for name in self.unexpected] if self.expected else []
        return self._unmet() + unexpected

    def _unmet(self) -> list[str]:
        return [f"the scenario says the checkers report {name}, but they do not"
                for name in self.missing] + list(self.mismatches)

    def combined(self) -> CheckResult:
        """The checkers and the scenario's unmet claims as one result (each an ``expectation-mismatch``
        anomaly), as the conformance driver judges a run on Kafka."""
        unmet = tuple(Anomaly(name=MISMATCH, description=c, witness=()) for c in self._unmet())
        return combine(self.checks, CheckResult(valid=not unmet, anomalies=unmet, allowed=()))

    def to_json(self) -> dict[str, Any]:
        """results.json: Jepsen's fields for the guarantees, then the expectation verdict."""
        return {**self.checks.to_json(),
                "expected-anomaly-types": sorted(self.expected),
                "unexpected-anomaly-types": self.unexpected,
                "missing-anomaly-types": self.missing,
                "expectation-mismatches": list(self.mismatches),
                "as-expected": self.as_expected,
                "verdict": self.status}

    def words(self) -> tuple[Status, str, str]:
        return words(self.to_json())


def words(results: Mapping[str, Any]) -> tuple[Status, str, str]:
    """A verdict in words from its results.json fields, as `eosim run` prints it and timeline.html
    heads it: the status, the guarantees ("broken (G1a)") and the expectation ("yes (it declares G1a)")."""
    broken = [name for name in results["anomaly-types"] if name != "incomplete"]
    guarantees = _GUARANTEES[results["valid"]] + (f" ({', '.join(broken)})" if broken else "")
    expected = results["expected-anomaly-types"]
    declared = f"declares {', '.join(expected)}" if expected else "expects none broken"
    return results["verdict"], guarantees, f"{_ANSWER[results['as-expected']]} (it {declared})"
