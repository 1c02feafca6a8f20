"""The soak's workloads (experiments/soak.py) are valid scenarios, and their files replay them."""

from __future__ import annotations

from pathlib import Path

from eosim._checkers import Anomaly
from eosim._runner import run_file
from eosim._scenario import load_scenario_text, scenario_from_dict, scenario_to_dict
from eosim._findings import KNOWN_FINDINGS, classify
from eosim.experiments.soak import HEADER, false_alarm, generate, soak, to_toml

ROOT = Path(__file__).resolve().parents[2]


def test_every_generated_workload_loads_and_its_file_gives_the_same_scenario():
    for seed in range(200):
        document = generate(seed)
        name = document["scenario"]["name"]
        scenario = scenario_from_dict(document, name=name, header=HEADER)
        again = load_scenario_text(to_toml(document), name)
        assert scenario_to_dict(again) == scenario_to_dict(scenario)


def test_a_sample_of_the_soak_has_no_false_alarm():
    """40 soak runs (experiments/soak.py runs 10,000): no false alarm (an INVALID no documented finding explains,
    or a crash), and an unknown verdict names the Kafka timer that leaves it undecided."""
    results = soak(range(40))
    assert [r for r in results if false_alarm(r)] == []
    for r in results:
        if r["verdict"] == "unknown":
            assert all("undecided" in d for d in r["details"]), r


def _documented_run():
    (finding,) = KNOWN_FINDINGS
    outcome = run_file(ROOT / finding.scenario)
    return outcome.result.anomalies, list(outcome.trace)


def test_the_documented_sequence_reuse_after_an_abort_is_a_finding_not_a_false_alarm():
    anomalies, trace = _documented_run()
    assert sorted(a.name for a in anomalies) == ["lost-write", "sequence-reuse"]
    assert classify(anomalies, trace) == ["txn-abort-sequence-reuse"]
    assert not false_alarm({"verdict": "INVALID", "findings": classify(anomalies, trace)})


def test_the_classifier_hides_nothing_else():
    """Strict: without the abort that causes it, a sequence reuse is a false alarm; so is a lost write that no
    deduplicated reuse explains, and a run with any other anomaly besides the finding."""
    anomalies, trace = _documented_run()
    no_abort = [e for e in trace if not (e.kind == "log.marker" and e.control == "ABORT")]
    assert classify(anomalies, no_abort) is None
    lost = [a for a in anomalies if a.name == "lost-write"]
    assert classify(lost, trace) is None
    other = Anomaly(name="duplicate", description="another anomaly", witness=())
    assert classify([*anomalies, other], trace) is None
    assert classify([], trace) is None
    assert false_alarm({"verdict": "INVALID", "findings": None}) and false_alarm({"verdict": "crash", "findings": None})


def test_a_poll_skip_over_a_deduplicated_record_is_the_same_finding():
    """A reader that reads on past the offset the producer was told (the aborted batch's) skips the lost
    record: explained only when every skipped value is one the reuse got deduplicated."""
    anomalies, trace = _documented_run()
    (lost,) = [a for a in anomalies if a.name == "lost-write"]
    key, value = lost.witness[0]["key"], lost.witness[0]["value"]

    def skip(*values: str) -> Anomaly:
        return Anomaly(name="int-poll-skip", description="a skip", witness=({"key": key, "skipped": list(values)},))

    assert classify([*anomalies, skip(value)], trace) == ["txn-abort-sequence-reuse"]
    assert classify([*anomalies, skip(value, "another")], trace) is None
    assert classify([*anomalies, skip()], trace) is None
