"""The Mermaid diagram teaches: arrows carry offsets, sequence numbers and epochs, a lost message is a
crossed arrow, the witness of an anomaly is highlighted, and chatty protocol stays out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from eosim._diagram import _text, mermaid, message_fates, witness_marks
from eosim._runner import Outcome, run_file

SCENARIOS = Path(__file__).resolve().parents[2] / "experiments" / "scenarios"


def run(name: str) -> Outcome:
    return run_file(SCENARIOS / f"{name}.toml")


def diagram(name: str) -> str:
    out = run(name)
    return mermaid(out.trace, out.result.to_json()["anomalies"])


def test_a_lost_response_is_a_crossed_dotted_arrow_not_a_normal_arrow_plus_a_note() -> None:
    text = diagram("fault-lost-response-duplicate")
    assert "broker_1--xp1: Produce out-0 @0 ✗ lost: dropped by lose-produce-response" in text
    assert "broker_1-->>p1: Produce out-0 @0" not in text
    assert "Note over broker_1,p1" not in text  # the old "⚡ ... dropped" note


def test_a_lost_request_is_a_crossed_solid_arrow() -> None:
    text = diagram("fault-dropped-request")
    assert re.search(r"p1-xbroker_1: EndTxn COMMIT pid 0 epoch 0 ✗ lost: dropped by \S+", text)
    assert "p1->>broker_1: EndTxn COMMIT pid 0 epoch 0\n" in text  # the retry arrives


def test_a_request_lost_to_a_crashed_broker_says_so() -> None:
    assert "-xbroker_1: Produce out-0 [v1] pid 0 epoch 0 seq 0 ✗ lost: broker down" in diagram(
        "fault-broker-restart-shrunken-window")


def test_arrows_carry_offsets_sequence_numbers_and_epochs() -> None:
    text = diagram("fault-pause-zombie-fenced")
    assert "p1->>broker_1: Produce out-0 [v1] pid 0 epoch 0 seq 0 txn" in text
    assert "broker_1-->>p1: Produce out-0 @0" in text
    assert "broker_1-->>p1: InitProducerId ok pid 0 epoch 0" in text
    assert "p2->>broker_1: EndTxn COMMIT pid 1 epoch 0" in text
    assert "ABORT marker @ out-0:2 (pid 0, epoch 1)" in text  # the coordinator's bump fences the zombie
    assert "COMMIT marker @ out-0:3 (pid 1, epoch 0)" in text


def test_the_witness_of_an_anomaly_is_highlighted_and_the_anomaly_named() -> None:
    text = diagram("fault-lost-response-duplicate")
    band = text.split("    rect rgb(255, 205, 210)\n", 2)[1].split("    end\n")[0]
    assert "p1->>broker_1: Produce out-0 [v1] ⚠ duplicate" in band
    assert "broker_1-->>p1: Produce out-0 @1 ⚠ duplicate" in band
    assert "Note over p1: t=1111 delivery v1 @out-0:1 ⚠ duplicate" in band
    assert "⚠ duplicate: Value 'v1' appears 2 times in out-0, at offsets 0, 1" in text
    assert "flush ⚠" not in text


def test_an_oracle_witness_is_the_trace_events_it_names() -> None:
    out = run("bug-kafka-5494")
    anomalies = out.result.to_json()["anomalies"]
    seqs = {w["seq"] for a in anomalies["missed-duplicate"] for w in a["witness"]}
    marks = witness_marks(out.trace, anomalies)
    assert seqs <= {seq for seq, names in marks.items() if "missed-duplicate" in names}


def test_a_valid_run_has_no_highlight() -> None:
    text = diagram("zombie-fencing")
    assert "rect" not in text and "⚠" not in text


def test_chatty_protocol_and_empty_calls_are_left_out() -> None:
    text = diagram("ctp-commit")
    assert "OffsetFetch ctp-app input-0" in text  # where the app resumes is worth a line
    assert not re.search(r"[>x]broker_1: Fetch|: Fetch ", text)
    assert not re.search(r": t=\d+ poll\b", text)
    for noise in ("Heartbeat", "ListOffsets", "__transaction_state", " HW ", "append "):
        assert noise not in text, noise


def test_a_fault_that_answers_an_error_is_on_its_arrow() -> None:
    text = diagram("fault-not-enough-replicas")
    assert re.search(r"p1->>broker_1: Produce out-0 \[v1\].* ⚡ \S+: answered NOT_ENOUGH_REPLICAS", text)


def test_every_lost_message_is_crossed_out() -> None:
    out = run("fault-disconnect-duplicate")
    lost = {seq for seq, fate in message_fates(out.trace).items() if fate.startswith("lost")}
    assert len(lost) == 2
    assert mermaid(out.trace).count("-x") == 2


@pytest.mark.parametrize(("raw", "safe"), [("a;b", "a#59;b"), ("p1#2", "p1#35;2"), ("the end", "the #101;nd"),
                                           ("end of it", "#101;nd of it")])
def test_text_escapes_what_mermaid_would_parse(raw: str, safe: str) -> None:
    assert _text(raw) == safe


def test_participants_with_hyphens_get_an_id_mermaid_cannot_misread() -> None:
    text = diagram("java-vs-librdkafka-fenced-produce")
    assert "participant broker_1 as broker-1" in text
    assert "broker-1-" not in text.split("participant", 1)[1].split("\n", 1)[1]


def test_a_lost_write_marks_the_record_from_produce_call_to_delivery_report() -> None:
    text = diagram("bug-kafka-14920")
    for line in ("Note over p1: t=4 produce v0 to out-0 ⚠ lost-write",
                 "p1->>broker_1: Produce out-0 [v0] pid 0 epoch 0 seq 0 txn ⚠ lost-write",
                 "Note over p1: t=1014 delivery v0: PERSISTED, no offset ⚠ lost-write"):
        assert line in text
    assert "produce v1 to out-0 ⚠" not in text
