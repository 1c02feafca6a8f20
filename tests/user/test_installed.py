"""A user's test against the installed package: it imports only `eosim` (run from a wheel by .ci/wheel.sh)."""

import eosim


def test_a_shipped_scenario_runs_and_is_valid() -> None:
    from importlib import resources

    path = resources.files("eosim.experiments") / "scenarios" / "zombie-fencing.toml"
    outcome = eosim.run_scenario(eosim.load_scenario(path))
    assert outcome.result.valid is True
