"""eosim._checkers.anomaly
=====================

The result types every checker returns, shaped like Jepsen's results: a validity (``True``, ``False``
or ``"unknown"``), the anomalies that invalidate the run, and the *allowed* ones: anomalies Kafka
legitimately exhibits (G0, int-send-skip, ...), reported so a reader sees them but not counted
against the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from attrs import field, frozen

Validity = bool | Literal["unknown"]


@frozen(kw_only=True)
class Anomaly:
    """One instance of an anomaly.

    ``witness`` holds the few ops or trace events involved, as JSON-serialisable dicts. History
    checkers put a facts dict first (key, values, offsets, and the roles of the ops by ``index``),
    then the ops themselves; the oracle gives the trace events in ``seq`` order.
    """

    name: str
    description: str
    witness: tuple[dict[str, Any], ...] = field(converter=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"description": self.description, "witness": list(self.witness)}


def _by_name(anomalies: Iterable[Anomaly]) -> tuple[Anomaly, ...]:
    # Stable: within one name, the checker's own (deterministic) order is kept.
    return tuple(sorted(anomalies, key=lambda a: a.name))


def _grouped(anomalies: tuple[Anomaly, ...]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for a in anomalies:
        out.setdefault(a.name, []).append(a.to_json())
    return out


@frozen
class CheckResult:
    valid: Validity
    anomalies: tuple[Anomaly, ...] = field(default=(), converter=_by_name)
    allowed: tuple[Anomaly, ...] = field(default=(), converter=_by_name)

    @classmethod
    def classify(cls, found: Iterable[Anomaly], *, allowed_types: Iterable[str] = (),
                 unknown_types: Iterable[str] = ()) -> CheckResult:
        """Split ``found`` into allowed and invalidating anomalies. An anomaly whose type is in
        ``unknown_types`` means "cannot tell" (Elle's :unknown types): alone it makes the result
        ``"unknown"``, never ``False``."""
        allowed_set, unknown_set = frozenset(allowed_types), frozenset(unknown_types)
        found = list(found)
        bad = [a for a in found if a.name not in allowed_set]
        if any(a.name not in unknown_set for a in bad):
            valid: Validity = False
        elif bad:
            valid = "unknown"
        else:
            valid = True
        return cls(valid, bad, [a for a in found if a.name in allowed_set])

    @property
    def anomaly_types(self) -> list[str]:
        return sorted({a.name for a in self.anomalies})

    def to_json(self) -> dict[str, Any]:
        """Jepsen-like summary; dump with ``json.dumps(..., sort_keys=True)`` for stable bytes."""
        return {
            "valid": self.valid,
            "anomaly-types": self.anomaly_types,
            "anomalies": _grouped(self.anomalies),
            "allowed-types": sorted({a.name for a in self.allowed}),
            "allowed": _grouped(self.allowed),
        }
