"""The studies of experiments/studies/ at a tiny size: they write their tables, and the results they
exist to show hold. The tables need only the simulator; the plots need matplotlib (the ``studies``
extra) and are skipped without it."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

STUDIES = Path(__file__).resolve().parents[2] / "experiments" / "studies"


def load(name: str) -> ModuleType:
    """experiments/studies/NAME.py is a script, not a package module: load it by path."""
    module_name = f"eosim_study_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, STUDIES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dedup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    study = load("dedup_window")
    return study.run_study(3, tmp_path_factory.mktemp("dedup_window"), loss_rates=(0.0, 0.5))


@pytest.fixture(scope="module")
def timeout(tmp_path_factory: pytest.TempPathFactory) -> dict:
    study = load("transaction_timeout")
    return study.run_study(3, tmp_path_factory.mktemp("transaction_timeout"), ratios=(0.5, 2.5))


def cell(summary: list[dict], **match) -> dict:
    (found,) = [s for s in summary if all(s[k] == v for k, v in match.items())]
    return found


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# -- dedup_window ----------------------------------------------------------------------------------


def test_dedup_window_writes_its_tables(dedup: dict) -> None:
    study = load("dedup_window")
    runs = read_csv(dedup["paths"]["runs"])
    assert len(runs) == 3 * 2 * len(study.VARIANTS)
    assert list(runs[0]) == list(study.RUN_FIELDS)
    assert len(read_csv(dedup["paths"]["summary_csv"])) == 2 * len(study.VARIANTS)
    text = dedup["paths"]["markdown"].read_text(encoding="utf-8")
    assert dedup["markdown"] in text
    assert text.count("\n| plain |") == 2


def test_dedup_window_plain_producer_duplicates_when_responses_are_lost(dedup: dict) -> None:
    lossy = cell(dedup["summary"], variant="plain", loss_rate=0.5)
    assert lossy["duplicate_runs"] == lossy["runs"] == 3
    assert lossy["extra_copies_mean"] > 1
    assert lossy["observed_loss"] > 0.2
    assert cell(dedup["summary"], variant="plain", loss_rate=0.0)["duplicate_runs"] == 0


def test_dedup_window_idempotent_producer_never_duplicates(dedup: dict) -> None:
    for p in (0.0, 0.5):
        clean = cell(dedup["summary"], variant="idempotent", loss_rate=p)
        assert clean["duplicate_runs"] == clean["missed_duplicate_runs"] == 0
        assert clean["extra_copies_mean"] == 0


def test_dedup_window_of_one_batch_refuses_retries(dedup: dict) -> None:
    assert cell(dedup["summary"], variant="window-1", loss_rate=0.5)["missed_duplicate_runs"] > 0
    assert cell(dedup["summary"], variant="window-1", loss_rate=0.0)["missed_duplicate_runs"] == 0


def test_dedup_window_is_deterministic(dedup: dict) -> None:
    study = load("dedup_window")
    again = [study.run_one(row["variant"], row["loss_rate"], row["seed"]) for row in dedup["rows"][:4]]
    assert again == dedup["rows"][:4]


def test_dedup_window_loss_rules_lose_exactly_the_drawn_responses() -> None:
    study = load("dedup_window")
    rules = study.loss_rules([0.9, 0.1, 0.2, 0.9, 0.05], 0.25)
    assert [(r["action"], r["count"]) for r in rules] == [
        ("delay", 1), ("drop", 1), ("drop", 1), ("delay", 1), ("drop", 1), ("delay", 10**6)]


# -- transaction_timeout --------------------------------------------------------------------------


def test_transaction_timeout_writes_its_tables(timeout: dict) -> None:
    study = load("transaction_timeout")
    runs = read_csv(timeout["paths"]["runs"])
    assert len(runs) == 3 * 2
    assert list(runs[0]) == list(study.RUN_FIELDS)
    assert len(read_csv(timeout["paths"]["summary_csv"])) == 2
    assert timeout["markdown"] in timeout["paths"]["markdown"].read_text(encoding="utf-8")


def test_transaction_timeout_short_pause_commits(timeout: dict) -> None:
    short = [r for r in timeout["rows"] if r["ratio"] == 0.5]
    assert [r["outcome"] for r in short] == ["committed"] * 3
    assert all(r["visible"] and not r["coordinator_abort"] for r in short)


def test_transaction_timeout_long_pause_is_fenced_and_never_visible(timeout: dict) -> None:
    study = load("transaction_timeout")
    long = [r for r in timeout["rows"] if r["ratio"] == 2.5]
    assert [r["outcome"] for r in long] == ["fenced"] * 3
    assert not any(r["visible"] or r["zombie_visible"] for r in long)
    for r in long:
        assert r["coordinator_abort"]
        assert 0 < r["timeout_to_abort_ms"] <= study.SWEEP_MS
        assert r["anomalies"] == ""


# -- the plots -------------------------------------------------------------------------------------


def test_plots(dedup: dict, timeout: dict, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = load("dedup_window").plot(dedup["summary"], tmp_path / "dedup.png", dedup["seeds"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png = load("transaction_timeout").plot(timeout["summary"], timeout["rows"], tmp_path / "timeout.png",
                                           timeout["seeds"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_main_writes_the_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    study = load("transaction_timeout")
    monkeypatch.setattr(study, "RATIOS", (0.5, 2.0))
    assert study.main(["--seeds", "2", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "plot.png").is_file()
    assert "| pause / timeout |" in capsys.readouterr().out
