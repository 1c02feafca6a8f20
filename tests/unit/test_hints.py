"""Hints (eosim._hints, docs/cli.md "Hints"): each fires on a run that shows its cause, names what
it read from the run, and stays quiet on a run that does not."""

from pathlib import Path

from eosim._cli import scenario_dir
from eosim._hints import hints
from eosim._runner import run_scenario
from eosim._scenario import load_scenario, load_scenario_text

LATE_READER = """# A consumer that starts after the records were written.

[scenario]
name = "late-reader"
description = "A consumer joins after the records were written."

[[topics]]
name = "events"
partitions = 1

[actors.p]
kind = "producer"
config = { "enable.idempotence" = true }

[actors.reader]
kind = "consumer"
config = { "group.id" = "late", RESET"enable.auto.commit" = false }

[[steps]]
actor = "p"
op = "produce"
topic = "events"
partition = 0
value = "v1"

[[steps]]
actor = "p"
op = "produce"
topic = "events"
partition = 0
value = "v2"

[[steps]]
actor = "p"
op = "flush"

[[steps]]
actor = "reader"
op = "assign"
partitions = [{ topic = "events", partition = 0 }]

[[steps]]
actor = "reader"
op = "consume"
max_records = 2
timeout_ms = 3000
"""


def _hints_of(name_or_text: str, reset: str = "") -> dict[str, list[str]]:
    if name_or_text == "late-reader":
        scenario = load_scenario_text(LATE_READER.replace("RESET", reset), "late-reader")
    else:
        scenario = load_scenario(scenario_dir() / f"{name_or_text}.toml")
    out: dict[str, list[str]] = {}
    for hint in hints(run_scenario(scenario)):
        out.setdefault(hint.kind, []).append(hint.text)
    return out


def test_reset_latest_explains_why_a_consumer_read_nothing() -> None:
    explicit = _hints_of("late-reader", '"auto.offset.reset" = "latest", ')
    [text] = explicit["reset-latest"]
    assert text.startswith("reader read nothing from events-0: its group 'late' had no committed offset")
    assert "auto.offset.reset=latest" in text and "offset 2" in text and "auto.offset.reset=earliest" in text
    [default] = _hints_of("late-reader")["reset-latest"]  # librdkafka's default is latest
    assert "auto.offset.reset unset (its default is latest)" in default


def test_a_dropped_request_is_no_message_read() -> None:
    """A net.drop names the message it drops without its fields (found by experiments/fuzz_cli.py: KeyError)."""
    drop = ('\n[[faults]]\nname = "lost"\naction = "drop"\nmessage = "ListOffsets"\ndirection = "request"\n'
            "count = 1\n")
    scenario = load_scenario_text(LATE_READER.replace("RESET", '"auto.offset.reset" = "latest", ') + drop,
                                  "late-reader")
    outcome = run_scenario(scenario)
    assert any(e.kind == "net.drop" and e.msg == "ListOffsetsRequest" for e in outcome.trace)
    assert all(h.kind == "reset-latest" for h in hints(outcome))  # read, without a KeyError


def test_reset_latest_stays_quiet_when_the_consumer_starts_at_the_beginning() -> None:
    assert _hints_of("late-reader", '"auto.offset.reset" = "earliest", ') == {}


def test_open_transaction_names_the_producer_pinning_the_lso() -> None:
    [text] = _hints_of("bug-kafka-6119")["open-transaction"]
    assert text.startswith("out-0: read_committed readers stop at offset 2, the last stable offset, 1 offset(s) "
                           "short of the high watermark 3: p1's transaction (transactional.id 'slow', producer id 0)")


def test_fenced_says_who_fenced_the_zombie() -> None:
    [by_producer] = _hints_of("zombie-fencing")["fenced"]
    assert by_producer.startswith("p1 got _FENCED on commit_transaction: p2 called init_transactions with the same "
                                  "transactional.id at t=519 ms and got epoch 2")
    [by_timeout] = _hints_of("transaction-timeout-abort")["fenced"]
    assert "the coordinator aborted its transaction at t=1500 ms after transaction.timeout.ms" in by_timeout


def test_fenced_names_a_tv2_end_as_the_bump_and_a_shared_epoch_as_no_design() -> None:
    """At transaction.version 2 an EndTxn answer bumps the epoch, and the fencer's epoch came from there, not from
    init_transactions; when fencing failed (two instances shared an epoch) the hint does not call it working."""
    by_init, by_end = _hints_of("mixed-tv-abort-revives-zombie")["fenced"]
    assert by_init.startswith("p1 got INVALID_PRODUCER_EPOCH on delivery: p3 called init_transactions")
    assert by_end.startswith("p3 got _FENCED on commit_transaction: p1, with the same transactional.id, ended a "
                             "transaction and its EndTxn was answered with epoch 2 at t=57 ms")
    assert "shared-producer-epoch" in by_end and "as designed" not in by_init + by_end


def test_read_uncommitted_names_the_reader_and_its_isolation_level() -> None:
    [explicit] = _hints_of("read-uncommitted-dirty-read")["read-uncommitted"]
    assert explicit.startswith("shipper read 'pay-1', 'pay-2' from payments-0, written by a transaction that was "
                               "aborted: it reads with isolation.level=read_uncommitted")
    [java] = _hints_of("java-vs-librdkafka-default-isolation")["read-uncommitted"]
    assert java.startswith("shipper-java read") and "this client's default is read_uncommitted" in java


def test_duplicate_retry_fires_for_a_plain_producer_only() -> None:
    [text] = _hints_of("fault-lost-response-duplicate")["duplicate-retry"]
    assert text.startswith("'v1' is in out-0 2 times (offsets [0, 1]): p1 retried after its ProduceResponse was lost")
    # the Java producer is idempotent by default: its duplicate has another cause, and no such hint
    assert "duplicate-retry" not in _hints_of("java-vs-librdkafka-out-of-order-bump")


def test_a_clean_run_gets_no_hint() -> None:
    assert _hints_of("ctp-commit") == {}
    assert _hints_of("multi-partition-commit") == {}
