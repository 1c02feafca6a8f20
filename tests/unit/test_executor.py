"""The executors (sim/_executor.py): a campaign on a Dask distributed cluster finds what the same campaign
finds in local processes, and a bad --executor is refused."""

from __future__ import annotations

import pytest
from distributed import LocalCluster
from typer.testing import CliRunner

from eosim import _executor, _explore
from eosim._cli import EXIT_BAD_INPUT, app, scenario_dir
from eosim._scenario import load_scenario


def _campaigns(executor: str) -> list[_explore.Campaign]:
    base = _explore.base_document(load_scenario(scenario_dir() / "bug-kafka-6119.toml"))
    return _explore.explore(base=base, reintroduce=("KAFKA-6119",), budget=120, seed=5, jobs=2, executor=executor)


def test_dask_findings_equal_the_local_findings_for_the_same_seed() -> None:
    local = _campaigns("local")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        host_port = cluster.scheduler_address.removeprefix("tcp://")
        on_dask = _campaigns(f"dask://{host_port}")
    assert [c.seed for c in on_dask] == [c.seed for c in local] == [5, 6]
    assert all(c.finding is not None for c in local)
    assert [(c.finding.anomalies, c.finding.document) for c in on_dask] == \
        [(c.finding.anomalies, c.finding.document) for c in local]


def test_results_come_back_in_job_order() -> None:
    finished: list[int] = []
    assert _executor.run_all(abs, [-3, 1, -2], workers=2, progress=lambda i, r: finished.append(i)) == [3, 1, 2]
    assert sorted(finished) == [0, 1, 2]


@pytest.mark.parametrize("spec", ["dask", "dask://host", "spark://h:1", "local2"])
def test_a_bad_executor_is_refused(spec: str) -> None:
    with pytest.raises(_executor.ExecutorError, match="local or dask://HOST:PORT"):
        _executor.check(spec)
    result = CliRunner().invoke(app, ["explore", "--executor", spec, "--budget", "1"])
    assert result.exit_code == EXIT_BAD_INPUT and "dask://HOST:PORT" in result.output
