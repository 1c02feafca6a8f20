"""Each historical-bug scenario (experiments/scenarios/bug-kafka-NNNN.toml) fails with its bug switched
back on, and the checkers name the anomaly it expects; with the switch removed from the loaded
scenario (Kafka as it is today) the same steps run clean."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from eosim.models.bugs import HISTORICAL_BUGS, cluster_switch
from eosim._scenario import Scenario, load_scenario
from eosim._runner import run_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "experiments" / "scenarios").glob("bug-kafka-*.toml"))


def bug_of(path: Path) -> str:
    """bug-kafka-9666.toml and bug-kafka-9666-replicated.toml (the same bug another way) -> KAFKA-9666."""
    return "-".join(path.stem.split("-")[1:3]).upper()


def without_bug(scenario: Scenario, bug: str) -> Scenario:
    """The scenario with ``bug``'s switch taken out of [cluster] and no anomaly expected."""
    key, _ = cluster_switch(bug)
    cluster = dict(scenario.cluster)
    if key == "eosim.reintroduce":
        cluster[key] = tuple(b for b in cluster[key] if b != bug)
    else:
        del cluster[key]
    return attrs.evolve(scenario, cluster=cluster, scenario=attrs.evolve(scenario.scenario, expect_anomalies=()))


def _summary(outcome) -> str:
    return "\n".join([f"{a.name}: {a.description}" for a in outcome.result.anomalies]
                     + [repr(step) for step in outcome.observation.steps])


@pytest.fixture(params=SCENARIOS, ids=lambda p: p.stem)
def bug_scenario(request) -> tuple[str, Scenario]:
    path = request.param
    bug, scenario = bug_of(path), load_scenario(path)
    assert bug in HISTORICAL_BUGS, f"{path.name}: no such bug in eosim.models.bugs.HISTORICAL_BUGS"
    key, value = cluster_switch(bug)
    switched = scenario.cluster.get(key)
    assert switched == value or (isinstance(value, tuple) and bug in (switched or ())), \
        f"{path.name}: [cluster] must switch the bug on with {key!r}"
    assert not scenario.scenario.conformance, f"{path.name}: Kafka has the fix, so conformance = false"
    assert scenario.scenario.expect_anomalies, f"{path.name}: expect_anomalies names what the checkers find"
    return bug, scenario


def test_the_bug_is_found_and_named(bug_scenario):
    _, scenario = bug_scenario
    outcome = run_scenario(scenario)
    assert outcome.verdict.status == "broken as expected" and outcome.exit_code == 0, _summary(outcome)
    assert outcome.result.anomaly_types == sorted(scenario.scenario.expect_anomalies), _summary(outcome)


def test_without_the_bug_the_run_is_clean(bug_scenario):
    bug, scenario = bug_scenario
    outcome = run_scenario(without_bug(scenario, bug))
    assert outcome.exit_code == 0, _summary(outcome)
    assert outcome.result.anomalies == () and outcome.result.allowed == (), _summary(outcome)
