"""Every scenario of the library (experiments/scenarios, or $EOSIM_SCENARIOS) runs in the simulator
and comes out as it says it does:

- a scenario without ``expect_anomalies`` is valid: exit code 0, no anomaly at all (in particular no
  ``expectation-mismatch``: every ``expect_error``, ``expect_records``, ``expect_offsets`` and
  ``[expect]`` table holds);
- a broken-pattern scenario (``expect_anomalies`` set) is "broken as expected" (exit 0): the
  checkers name exactly the anomalies it lists, and its own expectations hold all the same (no
  ``expectation-mismatch``).

Scenarios are run in-process, one simulator run each; the whole library takes well under a few
seconds. A failure prints every anomaly the run found and each step's outcome.

The library's hygiene rules for conformance scenarios are checked here too: every produce names its
partition (the conformance suite replays the file against a real broker, where a keyless record on a
random partition would make the observation differ), and a broken-pattern scenario says so in its
header.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eosim._cli import scenario_dir
from eosim._runner import Outcome, run_scenario
from eosim._scenario import Produce, load_scenario

MISMATCH = "expectation-mismatch"
PATHS = sorted(scenario_dir().glob("*.toml"))


def _explain(outcome: Outcome) -> str:
    lines = [f"{outcome.scenario.name}: exit {outcome.exit_code}, completed={outcome.completed}"]
    lines += [f"  {a.name}: {a.description}" for a in outcome.result.anomalies]
    lines += [f"  step {s.index} {s.actor}.{s.op} -> {s.outcome} {s.values or ''}" for s in outcome.observation.steps]
    return "\n".join(lines)


def test_the_library_is_there() -> None:
    assert len(PATHS) >= 22, f"expected the scenario library in {scenario_dir()}, found {len(PATHS)} files"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_scenario_comes_out_as_it_says(path: Path) -> None:
    scenario = load_scenario(path)
    outcome = run_scenario(scenario)
    names, code = {a.name for a in outcome.result.anomalies}, outcome.exit_code
    assert outcome.completed, _explain(outcome)
    assert MISMATCH not in names, _explain(outcome)
    assert code == 0, _explain(outcome)
    expected = set(scenario.scenario.expect_anomalies)
    assert names == expected, f"the checkers report {sorted(names)}, the scenario lists {sorted(expected)}\n" \
        + _explain(outcome)
    assert outcome.verdict.status == ("broken as expected" if expected else "valid"), _explain(outcome)


@pytest.mark.parametrize("path", [p for p in PATHS if load_scenario(p).scenario.conformance], ids=lambda p: p.stem)
def test_conformance_scenario_hygiene(path: Path) -> None:
    scenario = load_scenario(path)
    unpinned = [i for i, step in enumerate(scenario.steps) if isinstance(step, Produce) and step.partition is None]
    assert not unpinned, f"{path.name}: steps {unpinned} produce without an explicit partition"
    assert scenario.scenario.description.strip(), f"{path.name}: no description"
    if scenario.scenario.expect_anomalies:
        assert "broken pattern" in scenario.header.lower(), \
            f"{path.name}: expects anomalies, so its header must say it shows a broken pattern and why"
