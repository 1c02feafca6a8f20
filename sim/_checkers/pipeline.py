"""eosim._checkers.pipeline
=====================

End-to-end exactly-once of a consume-transform-produce application, judged on the final committed
state: with the identity transform, every committed input value must appear exactly once among the
committed output values. Kafka's own guarantees can all hold while an application pattern loses
(offsets committed before processing) or duplicates (offsets committed after processing, then a
crash) its output; this checker names those outcomes.
"""

from __future__ import annotations

from typing import Any

from eosim._checkers.anomaly import Anomaly, CheckResult


def check_pipeline(input_records: list[tuple[str, int, Any]], output_records: list[tuple[str, int, Any]]) -> CheckResult:
    """``*_records``: (partition key, offset, value) of the committed records of each topic."""
    outputs: dict[Any, list[list[Any]]] = {}
    for key, offset, value in output_records:
        outputs.setdefault(value, []).append([key, offset])
    found = []
    for key, offset, value in input_records:
        copies = outputs.get(value, [])
        if not copies:
            found.append(Anomaly(
                name="pipeline-loss",
                description=f"input {value!r} ({key}@{offset}) was consumed, but no committed output carries it.",
                witness=({"input": [key, offset, value], "outputs": []},)))
        elif len(copies) > 1:
            found.append(Anomaly(
                name="pipeline-duplicate",
                description=f"input {value!r} ({key}@{offset}) was processed {len(copies)} times: its output "
                            f"is committed at {', '.join(f'{k}@{o}' for k, o in copies)}.",
                witness=({"input": [key, offset, value], "outputs": copies},)))
    return CheckResult.classify(found)
