"""eosim._diagram
===========

A Mermaid ``sequenceDiagram`` of a run, drawn from its trace in the spirit of the classic
producer → broker → consumer exactly-once picture: client calls and their outcomes, the requests they
cause, coordinator state changes, transaction markers, offset commits, and dropped messages (faults).
"""

from __future__ import annotations

from typing import Any, Callable

BROKER = "broker-1"
# Internal traffic and chatty protocol rounds that would drown the picture.
QUIET_MESSAGES = {"FetchRequest", "FetchResponse", "HeartbeatRequest", "HeartbeatResponse",
                  "ListOffsetsRequest", "ListOffsetsResponse"}


def _actor(node: str) -> str:
    """Client nodes are named ``actor#incarnation``: one lane per actor."""
    return node.split("#", 1)[0]


def _lane(node: str) -> str:
    """One lane per actor (``p1#2/txn`` is p1), one for the broker and its own connections."""
    return "broker" if node.split("/", 1)[0] == BROKER else _actor(node)


def _text(value: Any) -> str:
    return str(value).replace(";", ",").replace("#", "")


def _span(a: str, b: str) -> str:
    return a if a == b else f"{a},{b}"


# What a fault did to a message, by fault event kind (delays by clogs and pauses show as their windows).
_MESSAGE_FAULTS = {"drop": "dropped", "disconnect": "lost, connection closed", "delay": "delayed {ms} ms",
                   "error": "answered {error}"}


def _fault(what: str, data: dict[str, Any], t: int, lane: Callable[[str], str]) -> list[str]:
    """Fault events: ⚡ on the message's lanes, or on the nemesis' lane for its ops."""
    rule = _text(data["rule"])
    if "write_id" in data:  # the transaction coordinator's own append to __transaction_state
        done = " after appending it" if data["after_apply"] else ""
        return [f"    Note over {lane(data['broker'])}: ⚡ {rule}: {_text(data['transactional_id'])}'s "
                f"{data['msg']} failed {data['error']}{done}"]
    if "correlation_id" in data:
        if what == "delay" and rule in ("clog", "pause"):
            return []
        done = _MESSAGE_FAULTS[what].format(**data) + (" after applying it" if data.get("after_apply") else "")
        return [f"    Note over {_span(lane(data['src']), lane(data['dst']))}: ⚡ {rule}: {data['msg']} {done}"]
    if what in ("pause", "resume"):
        sign = f"⏸ paused {data['ms']} ms" if what == "pause" else "▶ wakes"
        return [f"    Note over {_span(lane(data['nodes'][0]), lane(data['nodes'][-1]))}: t={t} {sign} ({rule})"]
    parts = [what if rule == what else f"{what} ({rule})", data.get("action"), ", ".join(data.get("nodes", ())),
             f"{data['ms']} ms" if "ms" in data else None]
    return [f"    Note over {lane('nemesis')}: t={t} ⚡ {' '.join(_text(p) for p in parts if p)}"]


def mermaid(events: list[dict[str, Any]]) -> str:
    lanes: list[str] = []
    lines: list[str] = []

    def lane(node: str) -> str:
        name = _lane(node)
        if name not in lanes:
            lanes.append(name)
        return name

    for ev in events:
        kind, data, node = ev["kind"], ev["data"], ev["node"]
        t = ev["t"]
        if kind == "client.op":
            outcome = data.get("error") or "ok"
            lines.append(f"    Note over {lane(node)}: t={t} {_text(data['op'])} → {_text(outcome)}")
        elif kind in ("net.request", "net.response") and data["msg"] not in QUIET_MESSAGES:
            src, dst = lane(node), lane(data["dst"])
            if src == dst:
                continue
            arrow = "-->>" if kind == "net.response" else "->>"
            lines.append(f"    {src}{arrow}{dst}: {data['msg']}")
        elif kind.startswith("fault."):
            lines.extend(_fault(kind.removeprefix("fault."), data, t, lane))
        elif kind == "net.close":
            lines.append(f"    Note over {_span(lane(node), lane(data['dst']))}: connection closed, "
                         f"{len(data['failed'])} request(s) fail")
        elif kind == "txn.state":
            lines.append(f"    Note over {lane(node)}: {_text(data['transactional_id'])}: {data['old']} → {data['new']}"
                         f" (pid {data['producer_id']}, epoch {data['producer_epoch']})")
        elif kind == "txn.timeout":
            lines.append(f"    Note over {lane(node)}: ⏱ {_text(data['transactional_id'])} timed out: the coordinator "
                         f"fences (epoch {data['producer_epoch']}) and aborts it")
        elif kind == "log.marker":
            lines.append(f"    Note over {lane(node)}: {data['control']} marker @ {data['tp']}:{data['offset']}")
        elif kind == "group.offsets":
            lines.append(f"    Note over {lane(node)}: offsets {_text(data['group_id'])} {data['tp']} → {data['offset']}")
        elif kind == "log.reject":
            lines.append(f"    Note over {lane(node)}: reject {data['tp']} {data['error']}")
        elif kind in ("broker.crash", "broker.restart"):
            lines.append(f"    Note over {lane(node)}: t={t} {'💥 crashed' if kind == 'broker.crash' else 'restarted'}")
        elif kind == "net.drop" and data.get("down"):
            lines.append(f"    Note over {_span(lane(node), lane(data['dst']))}: {data['msg']} lost: broker down")
        elif kind in ("txn.resign", "txn.elect"):
            what = "gives up" if kind == "txn.resign" else "elected at"
            lines.append(f"    Note over {lane(node)}: t={t} txn coordinator {what} epoch {data['coordinator_epoch']}")
        elif kind == "txn.load":
            lines.append(f"    Note over {lane(node)}: loaded {_text(data['transactional_id'])}: {data['state']}"
                         f" (coordinator epoch {data['coordinator_epoch']})")
    header = ["sequenceDiagram"] + [f"    participant {name}" for name in lanes]
    return "\n".join(header + lines) + "\n"
