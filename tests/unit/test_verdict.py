"""The two-part verdict (eosim._verdict, docs/cli.md "Verdicts"): Kafka's guarantees (Jepsen's valid)
apart from what the scenario expects."""

from eosim._checkers import Anomaly, CheckResult
from eosim._verdict import Verdict


def _a(name: str) -> Anomaly:
    return Anomaly(name=name, description=f"a {name}", witness=())


def _checks(*names: str, unknown: tuple[str, ...] = ()) -> CheckResult:
    return CheckResult.classify([_a(n) for n in names], unknown_types=unknown)


def test_valid_and_as_expected() -> None:
    verdict = Verdict(_checks(), (), ())
    assert (verdict.status, verdict.exit_code, verdict.as_expected) == ("valid", 0, True)


def test_exactly_the_declared_anomalies_is_broken_as_expected() -> None:
    verdict = Verdict(_checks("duplicate", "int-nonmonotonic-poll"), ("duplicate", "int-nonmonotonic-poll"), ())
    assert (verdict.status, verdict.exit_code) == ("broken as expected", 0)
    results = verdict.to_json()
    assert results["valid"] is False and results["as-expected"] is True  # Jepsen's valid is the guarantees
    assert verdict.combined().anomaly_types == ["duplicate", "int-nonmonotonic-poll"]


def test_an_undeclared_anomaly_is_invalid() -> None:
    verdict = Verdict(_checks("duplicate", "G1a"), ("duplicate",), ())
    assert (verdict.status, verdict.exit_code, verdict.unexpected) == ("INVALID", 1, ["G1a"])
    assert verdict.claims() == ["the checkers report G1a, which the scenario does not expect"]


def test_a_missing_declared_anomaly_is_invalid_and_a_mismatch_in_the_combined_result() -> None:
    verdict = Verdict(_checks("duplicate"), ("duplicate", "G1c"), ())
    assert (verdict.status, verdict.exit_code, verdict.missing) == ("INVALID", 1, ["G1c"])
    combined = verdict.combined()
    assert combined.valid is False and combined.anomaly_types == ["duplicate", "expectation-mismatch"]


def test_a_failed_expectation_is_invalid_while_the_guarantees_held() -> None:
    verdict = Verdict(_checks(), (), ("step 3: expected _FENCED, got NONE",))
    assert (verdict.status, verdict.exit_code) == ("INVALID", 1)
    results = verdict.to_json()
    assert results["valid"] is True and results["expectation-mismatches"] == ["step 3: expected _FENCED, got NONE"]


def test_an_unfinished_run_is_unknown_whatever_the_scenario_declares() -> None:
    verdict = Verdict(_checks("duplicate", "incomplete", unknown=("incomplete",)), ("duplicate",), ())
    assert verdict.checks.valid is False  # the guarantees: a definite anomaly beats unknown (Jepsen)
    assert (verdict.status, verdict.exit_code) == ("unknown", 2)  # but it was the declared one
    verdict = Verdict(_checks("G1a", "incomplete", unknown=("incomplete",)), ("duplicate",), ())
    assert (verdict.status, verdict.exit_code) == ("INVALID", 1)  # an undeclared definite anomaly stands
    verdict = Verdict(_checks("incomplete", unknown=("incomplete",)), ("duplicate",), ("a mismatch",))
    assert (verdict.status, verdict.exit_code, verdict.as_expected) == ("unknown", 2, "unknown")
    assert verdict.unexpected == []  # "incomplete" is never counted as an unexpected anomaly


def test_an_undecided_anomaly_the_scenario_declares_is_as_expected() -> None:
    declared = Verdict(_checks("unresolved-at-end", unknown=("unresolved-at-end",)), ("unresolved-at-end",), ())
    assert declared.checks.valid == "unknown"
    assert (declared.status, declared.exit_code) == ("broken as expected", 0)
    undeclared = Verdict(_checks("unresolved-at-end", unknown=("unresolved-at-end",)), (), ())
    assert (undeclared.status, undeclared.exit_code) == ("unknown", 2)
