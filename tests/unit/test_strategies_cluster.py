"""eosim.strategies on a 3-broker cluster: the broker ops of a drawn schedule kill, restart and cut broker-2 ..
broker-N, and the drawn scenarios load and run."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from eosim._runner import run_scenario
from eosim.strategies import scenarios


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
@given(scenarios(kinds=("broker-restart", "partition", "clog", "disconnect-nodes"), max_producers=2, brokers=3))
def test_drawn_broker_ops_strike_brokers_2_to_n(scenario) -> None:
    assert scenario.brokers == ("broker-1", "broker-2", "broker-3")
    for step in scenario.steps:
        if step.op in ("crash_broker", "restart_broker"):
            assert step.broker in ("broker-2", "broker-3")
        for node in getattr(step, "nodes", ()):
            assert node in scenario.actors or node in ("broker-2", "broker-3")
    outcome = run_scenario(scenario)
    assert outcome.completed
