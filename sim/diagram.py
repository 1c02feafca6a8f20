"""sim.diagram
===========

A Mermaid ``sequenceDiagram`` of a run, drawn from its trace in the spirit of the classic
producer → broker → consumer exactly-once picture: client calls and their outcomes, the requests they
cause, coordinator state changes, transaction markers, offset commits, and dropped messages (faults).
"""

from __future__ import annotations

from typing import Any

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
        elif kind == "net.drop":
            lines.append(f"    Note over {lane(node)},{lane(data['dst'])}: ✗ {data['msg']} dropped")
        elif kind == "txn.state":
            lines.append(f"    Note over {lane(node)}: {_text(data['transactional_id'])}: {data['old']} → {data['new']}"
                         f" (pid {data['producer_id']}, epoch {data['producer_epoch']})")
        elif kind == "log.marker":
            lines.append(f"    Note over {lane(node)}: {data['control']} marker @ {data['tp']}:{data['offset']}")
        elif kind == "group.offsets":
            lines.append(f"    Note over {lane(node)}: offsets {_text(data['group_id'])} {data['tp']} → {data['offset']}")
        elif kind == "log.reject":
            lines.append(f"    Note over {lane(node)}: reject {data['tp']} {data['error']}")
    header = ["sequenceDiagram"] + [f"    participant {name}" for name in lanes]
    return "\n".join(header + lines) + "\n"
