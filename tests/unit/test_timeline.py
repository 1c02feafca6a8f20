"""timeline.html: one self-contained page per run, a lane per client and broker, fault windows shaded,
the anomaly's witness outlined. The last test renders it in a real browser (Debian's chromium driven by
Playwright): skipped with a reason when chromium is missing, a failure under CI=true."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from eosim._runner import Outcome, run_file
from eosim._timeline import timeline_html

SCENARIOS = Path(__file__).resolve().parents[2] / "experiments" / "scenarios"


def page(name: str) -> tuple[Outcome, str]:
    out = run_file(SCENARIOS / f"{name}.toml")
    return out, timeline_html(out.trace, out.results_json())


def test_the_page_is_self_contained_and_deterministic() -> None:
    out, html = page("fault-lost-response-duplicate")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert timeline_html(out.trace, out.results_json()) == html


def test_one_lane_per_client_and_broker() -> None:
    _out, html = page("fault-pause-zombie-fenced")
    heads = re.findall(r'<div class="lane-head" style="grid-column:\d+">([^<]+)</div>', html)
    assert heads == ["t (ms)", "p1", "p2", "reader", "broker-1"]  # the pause sits in p1's lane


def test_the_witness_is_outlined_and_listed_with_a_link() -> None:
    _out, html = page("fault-lost-response-duplicate")
    witnesses = re.findall(r'<div id="e(\d+)" class="ev [^"]*witness', html)
    assert len(witnesses) >= 5
    assert f'<a href="#e{witnesses[0]}">duplicate</a>: Value &#x27;v1&#x27; appears 2 times' in html
    assert re.search(r'class="ev msg response lost witness"[^>]*><span class="what">⇠ p1: Produce out-0 @0</span> ✗ '
                     r"lost: dropped by lose-produce-response", html)


def test_fault_windows_are_shaded_over_the_lanes_they_strike() -> None:
    _out, html = page("fault-pause-zombie-fenced")
    (band,) = re.findall(r'<div class="band pause" style="grid-row:(\d+) / (\d+);grid-column:(\d+)"', html)
    first, last, column = map(int, band)
    assert column == 2 and last - first > 20  # p1's lane, for the whole pause
    _out, html = page("fault-broker-restart-idempotent")
    assert re.search(r'<div class="band down" style="grid-row:\d+ / \d+;grid-column:3"', html)


def test_chatty_protocol_is_hidden_until_asked_for() -> None:
    _out, html = page("ctp-commit")
    assert re.search(r'class="ev msg request chatty"[^>]*><span class="what">→ broker-1: Fetch', html)
    assert 'id="chatty"' in html


def heading(html: str) -> tuple[str, str, str]:
    """The verdict the page heads with: (status, its tone, the guarantees and expectation line)."""
    (found,) = re.findall(r'<h1>[^<]*: <span class="([^"]+)">([^<]+)</span></h1>\n<p id="verdict">(.*?)</p>', html)
    tone, status, line = found
    return status, tone, re.sub(r"<[^>]+>", "", line)


def test_a_broken_pattern_showing_its_anomaly_is_headed_broken_as_expected_as_eosim_run_says() -> None:
    out, html = page("read-uncommitted-dirty-read")
    assert out.exit_code == 0
    assert heading(html) == ("broken as expected", "as-expected",
                             "guarantees: broken (G1a) · as this scenario expects: yes (it declares G1a)")
    assert "INVALID" not in html


def test_a_valid_run_not_as_the_scenario_expects_is_headed_invalid(tmp_path: Path) -> None:
    copy = tmp_path / "zombie-fencing.toml"
    text = (SCENARIOS / "zombie-fencing.toml").read_text(encoding="utf-8")
    copy.write_text(text.replace('name = "zombie-fencing"\n', 'name = "zombie-fencing"\nexpect_anomalies = ["duplicate"]\n', 1), encoding="utf-8")
    out = run_file(copy)
    assert out.exit_code == 1 and out.verdict.checks.valid is True
    assert heading(timeline_html(out.trace, out.results_json())) == (
        "INVALID", "not-as-expected", "guarantees: held · as this scenario expects: NO (it declares duplicate)")


def test_without_a_recorded_verdict_the_page_says_so() -> None:
    out = run_file(SCENARIOS / "zombie-fencing.toml")
    html = timeline_html(out.trace, {"anomalies": {}})
    assert '<span class="undecided">verdict not recorded</span>' in html and 'id="verdict"' not in html


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_timeline_renders_in_chromium_without_errors_and_shows_the_witness(tmp_path: Path) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    chromium = _chromium()
    missing = ("chromium is not installed (apt-get install chromium)" if chromium is None else
               "the playwright package is not installed (pip install -e '.[test]')" if sync_playwright is None else None)
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: under CI the browser test must run (.ci/run installs both)")
        pytest.skip(f"{missing}: the browser test is skipped")
    _out, html = page("fault-lost-response-duplicate")
    path = tmp_path / "timeline.html"
    path.write_text(html, encoding="utf-8")
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            view = browser.new_page()
            view.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            view.on("pageerror", lambda e: errors.append(str(e)))
            view.on("request", lambda r: requests.append(r.url))
            view.goto(path.as_uri())
            witness = view.locator(".ev.witness")
            assert witness.count() >= 5
            assert witness.first.is_visible()
            assert "duplicate" in view.locator("#anomalies").inner_text()
            chatty = view.locator(".ev.chatty").first
            assert not chatty.is_visible()
            view.locator("#chatty").check()
            assert chatty.is_visible()
            view.locator("#anomalies a").first.click()
            assert view.evaluate("location.hash") == f"#{witness.first.get_attribute('id')}"
        finally:
            browser.close()
    assert errors == []
    assert requests == [path.as_uri()]  # nothing fetched from anywhere else


def test_every_glyph_the_pictures_draw_is_in_an_installed_font() -> None:
    """An emoji (⏸, 💥) shows as an empty box in Debian's chromium, which has no emoji font: the pictures
    use only characters some installed font has (DejaVu's, on Debian)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        pytest.skip("fontconfig's fc-list is not installed: cannot ask which fonts cover a character")
    import subprocess

    sources = [SCENARIOS.parents[1] / "sim" / name for name in ("_diagram.py", "_timeline.py", "_verdict.py")]
    glyphs = sorted({ch for path in sources for ch in path.read_text(encoding="utf-8") if ord(ch) > 0x7f})
    assert "→" in glyphs
    uncovered = [ch for ch in glyphs
                 if not subprocess.run([fc_list, f":charset={ord(ch):x}", "family"], capture_output=True,
                                       text=True, check=True).stdout.strip()]
    assert uncovered == []
