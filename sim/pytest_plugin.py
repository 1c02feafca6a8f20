"""eosim.pytest_plugin
===================

eosim's pytest plugin, registered as the ``pytest11`` entry point ``eosim`` (installing eosim is
enough; ``-p no:eosim`` turns it off). Fixtures for tests of a user's own exactly-once code
(docs/exploration.md, "Testing your own code"):

- ``eosim_seed``: the seed of the simulations, ``--eosim-seed`` (default 1).
- ``eosim_cluster``: a fresh simulated cluster (``eosim.Simulation``), active for the test (a
  ``Producer``/``Consumer`` made in the test joins it). ``@pytest.mark.eosim(topics=..., cluster=...)``
  sets its topics (default ``{"in": 1, "out": 1}``) and broker settings.
- ``eosim_check``: a function that runs a scenario (a document drawn by ``eosim.strategies``, a
  loaded ``Scenario``, or a path) and fails the test if the checkers call the run INVALID, with the
  scenario file in the message: under ``@given`` the example Hypothesis shrank to prints as a file
  that ``eosim run`` reproduces. It is session-scoped, so ``@given`` tests may use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

DEFAULT_TOPICS = {"in": 1, "out": 1}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("eosim").addoption("--eosim-seed", type=int, default=1,
                                       help="seed of the eosim_cluster simulations (default 1)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "eosim(topics=None, cluster=None): the eosim_cluster fixture's topics "
                                       "({name: partitions}) and [cluster] broker settings")


@pytest.fixture
def eosim_seed(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("eosim_seed")


@pytest.fixture
def eosim_cluster(request: pytest.FixtureRequest, eosim_seed: int) -> Iterator[Any]:
    from eosim import Simulation

    marker = request.node.get_closest_marker("eosim")
    options = dict(marker.kwargs) if marker is not None else {}
    with Simulation(topics=options.get("topics") or DEFAULT_TOPICS, cluster=options.get("cluster") or {},
                    seed=eosim_seed) as sim:
        yield sim


@pytest.fixture(scope="session")
def eosim_check() -> Callable[..., Any]:
    return check_scenario


def check_scenario(scenario: Any, seed: int | None = None) -> Any:
    """Run ``scenario`` (a scenario document, an ``eosim.Scenario`` or a path); AssertionError with the
    scenario file if the checkers call it INVALID. Returns the run's outcome."""
    from eosim._explore import scenario_toml
    from eosim._runner import run_scenario
    from eosim._scenario import Scenario, load_scenario, scenario_from_dict, scenario_to_dict

    if isinstance(scenario, (str, Path)):
        scenario = load_scenario(Path(scenario))
    if isinstance(scenario, Scenario):
        document = scenario_to_dict(scenario)
    else:
        document = scenario
        scenario = scenario_from_dict(document, name=document["scenario"]["name"], header="eosim_check")
    outcome = run_scenario(scenario, scenario.scenario.seed if seed is None else seed)
    if outcome.verdict.checks.valid is False:
        anomalies = ", ".join(outcome.verdict.checks.anomaly_types)
        text = scenario_toml(document, f"INVALID: {anomalies} (seed {outcome.seed}); reproduce with eosim run")
        raise AssertionError(f"the checkers call this run INVALID: {anomalies}\n\n{text}")
    return outcome
