"""A delivery report without an offset (librdkafka's implicit ack, offset -1001) is an unknown offset in the
history, never a position in the log (found by experiments/studies/dedup_window.py)."""

from eosim._runner import run_scenario
from eosim._scenario import scenario_from_dict


def test_an_implicitly_acked_send_has_an_unknown_offset_in_the_history() -> None:
    document = {
        "scenario": {"name": "implicit-ack", "description": "lost acks with a one-batch window",
                     "conformance": False},
        "cluster": {"eosim.reintroduce": ["KAFKA-5494"]},
        "topics": [{"name": "out", "partitions": 1}],
        "actors": {"p": {"kind": "producer", "config": {
            "enable.idempotence": True, "batch.num.messages": 1, "socket.timeout.ms": 1000}}},
        "faults": [{"name": "lost-acks", "action": "drop", "message": "Produce", "direction": "response",
                    "count": 4}],
        "steps": [*({"actor": "p", "op": "produce", "topic": "out", "partition": 0, "value": f"v{i}"}
                    for i in range(3)),
                  {"actor": "p", "op": "flush"}],
    }
    outcome = run_scenario(scenario_from_dict(document, name="implicit-ack", header="# regression"))
    sends = [mop for op in outcome.history if op["f"] == "send" and op["type"] == "ok" for mop in op["value"]]
    implicit = [s for s in outcome.observation.steps if s.values.get("delivery", [0, 0, 0])[2] < 0]
    assert implicit, "the scenario no longer produces an implicit ack"
    assert all(offset is None or offset >= 0 for _f, _k, (offset, _v) in sends)
    for anomaly in outcome.result.anomalies:
        assert "-1001" not in anomaly.description
