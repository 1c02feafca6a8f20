"""A racy scenario on a real broker: after commit_transaction returns, another producer's record races
the commit marker (experiments/scenarios/commit-marker-race.toml). Kafka may show either order, and
the test accepts either only because the simulator reaches both across the scenario's seeds: an order
the simulator could not reach would fail it (docs/conformance.md, "Racy scenarios")."""

from __future__ import annotations

from eosim._cli import scenario_dir
from eosim._observation import nearest
from eosim._realkafka.driver import for_broker, run_on_kafka
from eosim._runner import reachable
from eosim._scenario import load_scenario

RACE = load_scenario(scenario_dir() / "commit-marker-race.toml")
Y_STEP = 7  # plain's produce of y, sent once txp's commit_transaction returned
KAFKA_RUNS = 4


def y_offset(observation) -> int:
    step = observation.steps[Y_STEP]
    assert (step.actor, step.op) == ("plain", "produce")
    return step.values["delivery"][2]


def test_kafka_shows_an_order_of_the_commit_marker_race_that_the_simulator_reaches(kafka_broker, tmp_path,
                                                                                   record_property):
    tv = kafka_broker.transaction_version
    allowed = reachable(for_broker(RACE, tv))
    reached = sorted(y_offset(o.observation) for o in allowed)
    assert reached == [2, 3], "the simulator must reach both orders, or Kafka's could not be accepted"
    seen = []
    for run in range(KAFKA_RUNS):
        (logs := tmp_path / str(run)).mkdir()
        kafka = run_on_kafka(RACE, kafka_broker.bootstrap, transaction_version=tv, log_dir=logs)
        seen.append(y_offset(kafka.observation))
        _index, lines = nearest([o.observation for o in allowed], kafka.observation)
        assert not lines, f"run {run}: Kafka's observation is none the simulator reaches:\n" + "\n".join(lines)
    record_property("kafka_y_offsets", seen)  # 2: y before the marker, 3: after it
