"""eosim._timeline
=============

``timeline.html``: a run as one self-contained page in the manner of Jepsen's timeline.html. One lane
(column) per client actor and per broker, one row per event in trace order with its simulated time;
a message sits in its sender's lane, crossed out when a fault lost it. Fault windows (partitions,
clogs, pauses, a crashed broker) are shaded over the lanes they strike, and the events that witness
an anomaly are outlined in red and listed at the top with links to them. Hovering an event shows its
trace record. Chatty protocol (fetches, heartbeats, HW/LSO updates, coordinator log writes) is
hidden until asked for.

No network: the style and the one small script are inline, so the file opens anywhere, offline.
"""

from __future__ import annotations

import bisect
import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

from eosim._trace import ABSENT, TraceEvent
from eosim._diagram import CHATTY, DETAIL, Line, describe, is_broker, lane_of, message_fates, witness_marks
from eosim._verdict import words

_STYLE = """
body { font: 13px/1.35 system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 10px 16px; border-bottom: 1px solid #ccc; }
h1 { font-size: 17px; margin: 0 0 6px; }
.as-expected { color: #1a7f37; } .not-as-expected { color: #c62828; } .undecided { color: #b26a00; }
#verdict { margin: 0 0 6px; } #verdict b { font-weight: 600; }
#anomalies { margin: 6px 0; padding: 0; list-style: none; }
#anomalies li { margin: 2px 0; padding: 3px 8px; background: #ffebee; border-left: 4px solid #c62828; }
#anomalies a { color: #c62828; font-weight: 600; }
.legend span { display: inline-block; margin-right: 10px; padding: 0 6px; border-radius: 3px; }
.timeline { display: grid; column-gap: 6px; padding: 0 16px 40px; }
.lane-head { position: sticky; top: 0; z-index: 3; background: #fff; font-weight: 600; padding: 6px 4px;
  border-bottom: 2px solid #888; text-align: center; }
.time { color: #777; text-align: right; padding: 2px 4px; font-variant-numeric: tabular-nums; z-index: 1; }
.ev { z-index: 1; margin: 1px 0; padding: 2px 6px; border-radius: 3px; border: 1px solid transparent;
  overflow-wrap: anywhere; }
.op { background: #6db6fe55; border-color: #6db6fe; }
.op.fail { background: #feb5da; border-color: #e57399; }
.msg { background: #f1f1f1; border-color: #ddd; }
.msg.response { background: #fafafa; border-style: dashed; }
.msg.lost { background: #fff; border: 1px dashed #c62828; color: #c62828; }
.msg.lost .what { text-decoration: line-through; }
.state { background: #fff6d5; border-color: #e8d48a; }
.fault { background: #ffaa2655; border-color: #ffaa26; }
.detail { opacity: 0.85; }
.chatty { display: none; }
body.show-chatty .chatty { display: block; }
.witness { outline: 3px solid #c62828; outline-offset: 1px; }
.witness .badge { color: #c62828; font-weight: 600; }
.band { z-index: 0; border-radius: 4px; }
.band.partition, .band.clog { background: repeating-linear-gradient(135deg, #ffaa2633 0 8px, #ffaa2611 8px 16px); }
.band.pause { background: #9e9e9e33; }
.band.down { background: #c6282822; }
:target { box-shadow: 0 0 0 4px #ffcdd2; }
"""

_SCRIPT = """
document.getElementById('chatty').addEventListener('change', function (e) {
  document.body.classList.toggle('show-chatty', e.target.checked);
});
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _lanes(lines: list[Line]) -> list[str]:
    """Clients in order of appearance, then brokers, then the nemesis."""
    seen: list[str] = []
    for line in lines:
        for node in line.nodes[:1] if line.message else line.nodes:
            lane = lane_of(node)
            if lane not in seen:
                seen.append(lane)
    rank = {False: 0, True: 1}
    return sorted(seen, key=lambda lane: (lane == "nemesis", rank[is_broker(lane)]))


def _windows(events: list[Any]) -> list[tuple[int, int, str, tuple[str, ...], str]]:
    """Fault windows as (the seq that opens it, end t, kind, lanes, label): a partition or clog
    until the next heal, a pause until its resume, a crashed broker until its restart."""
    end_t = events[-1].t if events else 0
    windows = []
    for i, ev in enumerate(events):
        kind = ev.kind
        later = (events[j] for j in range(i + 1, len(events)))  # not a copy per event: quadratic on a long run
        if kind in ("fault.partition", "fault.clog"):
            heal = next((e.t for e in later if e.kind == "fault.heal"), end_t)
            what = kind.removeprefix("fault.")
            windows.append((ev.seq, heal, what, tuple(lane_of(n) for n in ev.nodes), f"{what} ({ev.rule})"))
        elif kind == "fault.pause":
            wake = next((e.t for e in later if e.kind == "fault.resume" and e.nodes == ev.nodes), ev.t + ev.ms)
            windows.append((ev.seq, wake, "pause", tuple(lane_of(n) for n in ev.nodes), f"paused {ev.ms} ms"))
        elif kind == "broker.crash":
            up = next((e.t for e in later if e.kind == "broker.restart" and e.node == ev.node), end_t)
            windows.append((ev.seq, up, "down", (lane_of(ev.node),), "crashed"))
    return windows


def _classes(line: Line, ev: Any) -> list[str]:
    kind = ev.kind
    if line.message:
        classes = ["msg", line.message] + (["lost"] if line.lost else [])
    elif kind == "client.op":
        classes = ["op"] + (["fail"] if ev.error is not ABSENT else [])
    elif kind.startswith("fault."):
        classes = ["fault"]
    else:
        classes = ["state"]
    if line.level == DETAIL:
        classes.append("detail")
    return classes


def timeline_html(events: Iterable[TraceEvent], results: Mapping[str, Any]) -> str:
    """The page for a run: ``events`` its trace, ``results`` its results.json (scenario, seed,
    anomalies and the verdict's fields, eosim._verdict)."""
    events = list(events)  # read more than once: a TraceView reads spilled events back on each pass
    anomalies = results.get("anomalies", {})
    fates = message_fates(events)
    marks = witness_marks(events, anomalies)
    drawn = [(ev, line) for ev in events if (line := describe(ev, fates)) is not None]
    lanes = _lanes([line for _ev, line in drawn])
    column = {lane: i + 2 for i, lane in enumerate(lanes)}

    cells: list[str] = ['<div class="lane-head" style="grid-column:1">t (ms)</div>']
    cells += [f'<div class="lane-head" style="grid-column:{column[lane]}">{_e(lane)}</div>' for lane in lanes]
    first_witness: dict[str, int] = {}
    row_of_seq: dict[int, int] = {}
    rows_t: list[int] = []
    for i, (ev, line) in enumerate(drawn):
        row = i + 2
        row_of_seq[ev.seq] = row
        rows_t.append(ev.t)
        chatty = " chatty" if line.level == CHATTY else ""
        names = marks.get(ev.seq, [])
        for name in names:
            first_witness.setdefault(name, ev.seq)
        classes = _classes(line, ev) + (["witness"] if names else [])
        lane = lane_of(line.nodes[0])
        text = line.text
        if line.message:
            arrow = "→" if line.message == "request" else "⇠"
            text = f"{arrow} {lane_of(line.nodes[1])}: {text}"
        elif len(line.nodes) > 1 and lane_of(line.nodes[-1]) != lane:
            text = f"{text} (with {lane_of(line.nodes[-1])})"
        what, lost, fate = text.partition(" ✗ ")
        body = f'<span class="what">{_e(what)}</span>' + (f" ✗ {_e(fate)}" if lost else "")
        badge = f' <span class="badge">⚠ {_e(", ".join(names))}</span>' if names else ""
        record = json.dumps(ev.to_dict(), sort_keys=True)
        cells.append(f'<div class="time{chatty}" style="grid-row:{row};grid-column:1">{ev.t}</div>')
        cells.append(f'<div id="e{ev.seq}" class="ev {" ".join(classes)}{chatty}" '
                     f'style="grid-row:{row};grid-column:{column[lane]}" title="{_e(record)}">'
                     f'{body}{badge}</div>')
    for opened, end, kind, band_lanes, label in _windows(events):
        first = row_of_seq[opened]
        last = max(first, bisect.bisect_right(rows_t, end) + 1)  # rows_t is in time order
        for lane in sorted({lane for lane in band_lanes if lane in column}, key=column.get):
            cells.append(f'<div class="band {kind}" style="grid-row:{first} / {last + 1};'
                         f'grid-column:{column[lane]}" title="{_e(label)} until t={end}"></div>')

    items = []
    for name in sorted(anomalies):
        for instance in anomalies[name]:
            link = (f'<a href="#e{first_witness[name]}">{_e(name)}</a>' if name in first_witness
                    else f"<b>{_e(name)}</b>")
            items.append(f"<li>{link}: {_e(instance['description'])}</li>")
    if "verdict" in results:  # as `eosim run` says it: the guarantees and the scenario's expectation apart
        status, guarantees, expectation = words(results)
        tone = {True: "as-expected", False: "not-as-expected"}.get(results["as-expected"], "undecided")
        verdict = (f'<p id="verdict">guarantees: <b>{_e(guarantees)}</b> · as this scenario expects: '
                   f'<b class="{tone}">{_e(expectation)}</b></p>')
    else:  # `eosim diagram` of a run directory without a readable results.json
        status, tone, verdict = "verdict not recorded", "undecided", ""
    title = f"{results.get('scenario', 'run')} (seed {results.get('seed', '?')})"
    grid = f"grid-template-columns: 5em repeat({len(lanes)}, minmax(14em, 1fr))"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>eosim timeline: {_e(title)}</title>",
        f"<style>{_STYLE}</style></head>",
        "<body><header>",
        f'<h1>{_e(title)}: <span class="{tone}">{_e(status)}</span></h1>',
        verdict,
        f'<ul id="anomalies">{"".join(items)}</ul>' if items else '<p id="anomalies">No anomalies.</p>',
        '<div class="legend"><span class="op">client call</span><span class="op fail">failed call</span>'
        '<span class="msg">→ request / ⇠ response</span><span class="msg lost">lost message</span>'
        '<span class="state">broker</span><span class="fault">fault</span>'
        '<label><input type="checkbox" id="chatty"> show chatty protocol (fetches, heartbeats, HW/LSO, '
        "coordinator log)</label></div>",
        "</header>",
        f'<main class="timeline" style="{grid}">',
        *cells,
        "</main>",
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
        "",
    ])
