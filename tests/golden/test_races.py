"""Timing is part of the search space (docs/fidelity.md, "Broker work takes jittered time"): the broker's
internal work takes seeded, jittered time, so a race a real broker shows in both orders appears in both
orders across seeds, while each seed replays byte for byte. And a scenario that does not declare itself
racy must not be: its observation is the same whatever the seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from eosim._runner import reachable, replay, run_scenario
from eosim._scenario import load_scenario
from eosim._trace import dumps_lines

SCENARIOS = Path(__file__).resolve().parents[2] / "experiments" / "scenarios"
RACE = load_scenario(SCENARIOS / "commit-marker-race.toml")
Y_STEP = 7  # plain's produce of y, right after txp's commit_transaction returned


def y_offset(outcome) -> int:
    step = outcome.observation.steps[Y_STEP]
    assert (step.actor, step.op) == ("plain", "produce")
    return step.values["delivery"][2]


def test_the_commit_marker_race_is_reached_in_both_orders() -> None:
    """y lands at 2 (before the COMMIT marker, which then takes 3) or at 3 (after it)."""
    outcomes = [run_scenario(RACE, seed) for seed in range(RACE.seed, RACE.seed + RACE.scenario.racy_seeds)]
    orders = {y_offset(o) for o in outcomes}
    assert orders == {2, 3}
    assert all(o.result.valid is True and o.exit_code == 0 for o in outcomes)  # both orders are correct Kafka
    marker = {o.seed: [e.offset for e in o.trace if e.kind == "log.marker"] for o in outcomes}
    assert all(marker[o.seed] == [5 - y_offset(o)] for o in outcomes)  # the marker takes the other slot


def test_the_reachable_set_holds_both_orders_once() -> None:
    allowed = reachable(RACE)
    assert sorted(y_offset(o) for o in allowed) == [2, 3]


def test_each_order_replays_byte_for_byte() -> None:
    first = {}
    for seed in range(RACE.seed, RACE.seed + RACE.scenario.racy_seeds):
        first.setdefault(y_offset(run_scenario(RACE, seed)), seed)
    assert set(first) == {2, 3}
    for seed in first.values():
        recorded = dumps_lines(run_scenario(RACE, seed).trace)
        same, message = replay(RACE, seed, recorded)
        assert same, message


DETERMINISTIC = sorted(p.stem for p in SCENARIOS.glob("*.toml")
                       if (s := load_scenario(p)).scenario.conformance and not s.scenario.racy_seeds)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_a_scenario_not_declared_racy_observes_the_same_on_other_seeds(name: str) -> None:
    """The conformance suite compares Kafka with the scenario's own seed only: that is sound only if the
    jitter cannot change the observation (docs/conformance.md, "Racy scenarios")."""
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    expected = run_scenario(scenario).observation.to_json()
    for seed in (scenario.seed + 1, scenario.seed + 2, scenario.seed + 3):
        assert run_scenario(scenario, seed).observation.to_json() == expected, f"seed {seed}"


def test_work_time_bounds_are_checked() -> None:
    from random import Random

    from eosim._worktime import FIXED_WORK_MS, WORK_MS, WorkTime

    with pytest.raises(ValueError, match="must name exactly"):
        WorkTime(Random(1), {"request": (0, 1)})
    with pytest.raises(ValueError, match="fewest <= most"):
        WorkTime(Random(1), {**WORK_MS, "markers": (3, 2)})
    with pytest.raises(ValueError, match="at least 1"):
        WorkTime(Random(1), {**WORK_MS, "txn.log.append": (0, 2)})
    fixed = WorkTime(Random(1), FIXED_WORK_MS)
    assert [fixed.draw(kind) for kind in sorted(WORK_MS)] == [0, 0, 0, 1]
    drawn = WorkTime(Random(1))
    assert all(0 <= drawn.draw("markers") <= 10 for _ in range(200))
    # the draws are randint's (none for a fixed time), the sequence the traces were recorded with
    bounds = {"request": (0, 1), "log.append": (2, 7), "markers": (0, 10), "txn.log.append": (1, 1)}
    kinds = sorted(bounds) * 100
    work, reference = WorkTime(Random(7), bounds), Random(7)
    assert [work.draw(kind) for kind in kinds] == [low if low == high else reference.randint(low, high)
                                                   for low, high in (bounds[kind] for kind in kinds)]


def test_a_scenario_not_declared_racy_is_compared_with_its_own_seed_alone() -> None:
    scenario = load_scenario(SCENARIOS / "zombie-fencing.toml")
    [outcome] = reachable(scenario)
    assert outcome.seed == scenario.seed
