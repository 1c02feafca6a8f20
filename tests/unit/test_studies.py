"""The studies of experiments/studies/ at a tiny size, through the shared runner (eosim._study): they
write their tables, the results they exist to show hold, and the files do not depend on the number of
worker processes. The tables need only the simulator; the plots need matplotlib (the ``studies``
extra) and are skipped without it."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from eosim._study import StudyError, load, names, run_study


@pytest.fixture(scope="module")
def dedup(tmp_path_factory: pytest.TempPathFactory):
    cells = [(variant, p) for variant in load("dedup_window").VARIANTS for p in (0.0, 0.5)]
    return run_study("dedup_window", 3, tmp_path_factory.mktemp("dedup_window"), workers=1, cells=cells, plot=False)


@pytest.fixture(scope="module")
def timeout(tmp_path_factory: pytest.TempPathFactory):
    return run_study("transaction_timeout", 3, tmp_path_factory.mktemp("transaction_timeout"), workers=1,
                     cells=(0.5, 2.5), plot=False)


def cell(summary: list[dict], **match) -> dict:
    (found,) = [s for s in summary if all(s[k] == v for k, v in match.items())]
    return found


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# -- dedup_window ----------------------------------------------------------------------------------


def test_dedup_window_writes_its_tables(dedup: dict) -> None:
    study = load("dedup_window")
    runs = read_csv(dedup.paths["runs"])
    assert len(runs) == 3 * 2 * len(study.VARIANTS)
    assert list(runs[0]) == list(study.RUN_FIELDS)
    assert len(read_csv(dedup.paths["summary_csv"])) == 2 * len(study.VARIANTS)
    text = dedup.paths["markdown"].read_text(encoding="utf-8")
    assert dedup.markdown in text
    assert text.count("\n| plain |") == 2


def test_dedup_window_plain_producer_duplicates_when_responses_are_lost(dedup: dict) -> None:
    lossy = cell(dedup.summary, variant="plain", loss_rate=0.5)
    assert lossy["duplicate_runs"] == lossy["runs"] == 3
    assert lossy["extra_copies_mean"] > 1
    assert lossy["observed_loss"] > 0.2
    assert cell(dedup.summary, variant="plain", loss_rate=0.0)["duplicate_runs"] == 0


def test_dedup_window_idempotent_producer_never_duplicates(dedup: dict) -> None:
    for p in (0.0, 0.5):
        clean = cell(dedup.summary, variant="idempotent", loss_rate=p)
        assert clean["duplicate_runs"] == clean["missed_duplicate_runs"] == 0
        assert clean["extra_copies_mean"] == 0


def test_dedup_window_of_one_batch_refuses_retries(dedup: dict) -> None:
    assert cell(dedup.summary, variant="window-1", loss_rate=0.5)["missed_duplicate_runs"] > 0
    assert cell(dedup.summary, variant="window-1", loss_rate=0.0)["missed_duplicate_runs"] == 0


def test_dedup_window_is_deterministic(dedup: dict) -> None:
    study = load("dedup_window")
    again = [study.run_one((row["variant"], row["loss_rate"]), row["seed"]) for row in dedup.rows[:4]]
    assert again == dedup.rows[:4]


def test_dedup_window_loss_rules_lose_exactly_the_drawn_responses() -> None:
    study = load("dedup_window")
    rules = study.loss_rules([0.9, 0.1, 0.2, 0.9, 0.05], 0.25)
    assert [(r["action"], r["count"]) for r in rules] == [
        ("delay", 1), ("drop", 1), ("drop", 1), ("delay", 1), ("drop", 1), ("delay", 10**6)]


# -- transaction_timeout --------------------------------------------------------------------------


def test_transaction_timeout_writes_its_tables(timeout: dict) -> None:
    study = load("transaction_timeout")
    runs = read_csv(timeout.paths["runs"])
    assert len(runs) == 3 * 2
    assert list(runs[0]) == list(study.RUN_FIELDS)
    assert len(read_csv(timeout.paths["summary_csv"])) == 2
    assert timeout.markdown in timeout.paths["markdown"].read_text(encoding="utf-8")


def test_transaction_timeout_short_pause_commits(timeout: dict) -> None:
    short = [r for r in timeout.rows if r["ratio"] == 0.5]
    assert [r["outcome"] for r in short] == ["committed"] * 3
    assert all(r["visible"] and not r["coordinator_abort"] for r in short)


def test_transaction_timeout_long_pause_is_fenced_and_never_visible(timeout: dict) -> None:
    study = load("transaction_timeout")
    long = [r for r in timeout.rows if r["ratio"] == 2.5]
    assert [r["outcome"] for r in long] == ["fenced"] * 3
    assert not any(r["visible"] or r["zombie_visible"] for r in long)
    for r in long:
        assert r["coordinator_abort"]
        assert 0 < r["timeout_to_abort_ms"] <= study.SWEEP_MS
        assert r["anomalies"] == ""


# -- the runner -----------------------------------------------------------------------------------


def test_every_study_states_its_claim_and_sweep() -> None:
    assert {"dedup_window", "transaction_timeout", "retries_duplicates", "transaction_cost"} <= set(names())
    for name in names():
        study = load(name)
        assert "Claim" in study.__doc__ and "Usage: ``eosim study" in study.__doc__, name
        assert study.cells() and study.DEFAULT_SEEDS > 0


def test_an_unknown_study_names_the_known_ones() -> None:
    with pytest.raises(StudyError, match="transaction_timeout"):
        load("no_such_study")
    assert load("dedup-window") is load("dedup_window")


def test_the_files_do_not_depend_on_the_number_of_workers(tmp_path: Path) -> None:
    files = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        run_study("transaction_timeout", 5, out, workers=workers, cells=(0.5, 1.2, 2.5), plot=False)
        files[workers] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert files[1] == files[2]
    assert set(files[1]) == {".eosim-run", "runs.csv", "summary.csv", "summary.md"}


def test_progress_counts_every_run(tmp_path: Path) -> None:
    ticks: list[int] = []
    run_study("transaction_timeout", 10, tmp_path, workers=2, cells=(0.5,), progress=ticks.append, plot=False)
    assert sum(ticks) == 10 and len(ticks) == 2  # chunks of eosim._study.CHUNK runs


def test_the_markdown_says_how_to_reproduce(timeout) -> None:
    text = timeout.paths["markdown"].read_text(encoding="utf-8")
    assert text.startswith("# transaction_timeout\n\nWhen does a paused transactional producer get fenced?")
    assert "Reproduce: `eosim study transaction_timeout --seeds 3`" in text


# -- the plots -------------------------------------------------------------------------------------


def test_plots(tmp_path: Path) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("matplotlib is not installed: under CI the plots must be tested (.ci/run installs the "
                        "studies extra)")
        pytest.skip("matplotlib is not installed (pip install -e '.[studies]'): the plots are not tested")
    for name, cells in (("dedup_window", [("plain", 0.0), ("plain", 0.5)]), ("transaction_timeout", (0.5, 2.5)),
                        ("retries_duplicates", None), ("transaction_cost", None)):
        study = load(name)
        result = run_study(name, 1, tmp_path / name, workers=1, cells=cells or study.cells()[:2])
        assert result.plot_skipped is None
        assert result.paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_the_plot_is_skipped_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    result = run_study("transaction_timeout", 1, tmp_path, workers=1, cells=(0.5,))
    assert "matplotlib" in result.plot_skipped and "plot" not in result.paths
    assert not (tmp_path / "plot.png").exists()


# -- retries_duplicates ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retries(tmp_path_factory: pytest.TempPathFactory):
    return run_study("retries_duplicates", 3, tmp_path_factory.mktemp("retries"), workers=1,
                     cells=[(0, 0.2), (10, 0.2)], plot=False)


def test_without_retries_lost_requests_lose_records_and_never_duplicate(retries) -> None:
    none = cell(retries.summary, retries=0)
    assert none["lost_runs"] == 3 and none["duplicate_runs"] == 0
    assert none["reported_failed_mean"] >= none["lost_records_mean"] > 0
    assert none["failed_but_written_mean"] > 0  # the request arrived, the answer did not


def test_with_retries_nothing_is_lost_but_lost_acks_duplicate(retries) -> None:
    many = cell(retries.summary, retries=10)
    assert many["lost_runs"] == 0 and many["duplicate_runs"] == 3 and many["extra_copies_mean"] > 1
    rows = [r for r in retries.rows if r["retries"] == 10]
    assert all(r["extra_copies"] <= r["responses_lost"] for r in rows)  # a copy per lost acknowledgement at most


# -- transaction_cost --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cost(tmp_path_factory: pytest.TempPathFactory):
    return run_study("transaction_cost", 2, tmp_path_factory.mktemp("cost"), workers=1, cells=(0, 1, 10, 100),
                     plot=False)


def test_a_transaction_costs_one_marker_whatever_its_size(cost) -> None:
    for size in (1, 10, 100):
        s = cell(cost.summary, size=size)
        assert s["markers_per_record"] == 1 / size
        assert s["offsets_per_record"] == 1 + 1 / size  # a marker takes an offset
    assert cell(cost.summary, size=0)["markers_per_record"] == 0


def test_larger_transactions_are_faster_and_later_visible(cost) -> None:
    sizes = [cell(cost.summary, size=size) for size in (1, 10, 100)]
    throughput = [s["records_per_s_mean"] for s in sizes]
    assert throughput == sorted(throughput) and throughput[-1] < cell(cost.summary, size=0)["records_per_s_mean"]
    lag = [s["lso_lag_mean_ms"] for s in sizes]
    # each lag includes the marker queue's few ms after the commit (sim/_worktime.py): a floor for size 1
    assert lag == sorted(lag) and lag[-1] > 5 * lag[0]
    assert cell(cost.summary, size=0)["lso_lag_max_ms"] == 0
    assert not any(r["anomalies"] for r in cost.rows)
