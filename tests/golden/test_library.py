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

The library's hygiene rules are checked here too (rules of the library, not of the format: a user's own
file may do without them): every scenario starts with a comment block saying what it teaches; in a
conformance scenario every produce names its partition (the conformance suite replays the file against
a real broker, where a keyless record on a random partition would make the observation differ), and a
broken-pattern scenario says so in its header.

And the library stays far within the format's resource limits (docs/scenario-format.md, "Limits"):
each scenario runs to completion with a tenth of the simulated time and a hundredth of the events.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eosim import _scenario as sc
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


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_every_scenario_is_named_after_its_file(path: Path) -> None:
    # A library lint (eosim run NAME finds the file by it); a user's own files may be named anything.
    assert load_scenario(path).scenario.name == path.stem


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_every_scenario_has_a_teaching_header(path: Path) -> None:
    assert load_scenario(path).header, f"{path.name}: start the file with a comment block (# ...) saying what " \
                                       "the scenario teaches"


def test_the_library_is_far_within_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    scenarios = [load_scenario(path) for path in PATHS]
    assert max(path.stat().st_size for path in PATHS) * 10 <= sc.MAX_FILE_BYTES
    assert max(len(s.steps) for s in scenarios) * 10 <= sc.MAX_ITEMS
    assert max(len(s.actors) for s in scenarios) * 10 <= sc.MAX_ACTORS
    assert max(sum(t.partitions for t in s.topics) for s in scenarios) * 10 <= sc.MAX_PARTITIONS
    assert max(len(s.faults) for s in scenarios) * 10 <= sc.MAX_FAULTS
    monkeypatch.setattr(sc, "MAX_SIM_MS", sc.MAX_SIM_MS // 10)
    monkeypatch.setattr(sc, "MAX_EVENTS", sc.MAX_EVENTS // 100)
    for scenario in scenarios:
        outcome = run_scenario(scenario)
        assert outcome.completed, _explain(outcome)
