"""eosim._observation: deterministic JSON, a line per difference, expectations in words."""

import attrs

from eosim._observation import (
    GroupObservation,
    Observation,
    PartitionObservation,
    StepColumns,
    StepObservation,
    check_expectations,
    diff,
    nearest,
)
from eosim._scenario import load_scenario_text

SCENARIO = """\
# Fixture for observation tests.
[scenario]
name = "obs"
description = "d"

[[topics]]
name = "in"
partitions = 2

[[topics]]
name = "out"

[actors.p1]
kind = "producer"
config = { "transactional.id" = "tx" }

[actors.c1]
kind = "consumer"
config = { "group.id" = "g1" }

[[steps]]
actor = "p1"
op = "init_transactions"
expect_error = "NONE"

[[steps]]
actor = "p1"
op = "commit_transaction"
expect_error = "_FENCED"

[[steps]]
actor = "c1"
op = "consume"
expect_records = [[0, "k", "v"], { offset = 1, value = "w" }]

[[steps]]
actor = "c1"
op = "position"
expect_offsets = [{ topic = "in", partition = 0, offset = 2 }, { topic = "in", partition = 1, offset = "none" }]

[[steps]]
actor = "c1"
op = "committed"
expect_offsets = [{ topic = "in", partition = 0, offset = 2 }]

[[steps]]
actor = "p1"
op = "flush"

[[expect.partitions]]
topic = "out"
partition = 0
high_watermark = 4
last_stable_offset = 4
read_committed = [[0, "k1", "v1"]]
read_uncommitted = [[0, "k1", "v1"], { offset = 1 }]

[[expect.committed]]
group = "g1"
topic = "in"
partition = 0
offset = 3

[[expect.committed]]
group = "g1"
topic = "in"
partition = 1
offset = "none"
"""


def satisfying() -> Observation:
    """An observation meeting every expectation of SCENARIO."""
    return Observation(
        scenario="obs",
        steps=[
            StepObservation(index=0, actor="p1", op="init_transactions", outcome="ok"),
            StepObservation(index=1, actor="p1", op="commit_transaction", outcome="_FENCED"),
            StepObservation(index=2, actor="c1", op="consume", outcome="ok",
                            values={"records": [["in", 0, 0, "k", "v"], ["in", 0, 1, None, "w"]]}),
            StepObservation(index=3, actor="c1", op="position", outcome="ok",
                            values={"offsets": [["in", 0, 2], ["in", 1, -1001]]}),
            StepObservation(index=4, actor="c1", op="committed", outcome="ok", values={"offsets": [["in", 0, 2]]}),
            StepObservation(index=5, actor="p1", op="flush", outcome="ok", values={"deliveries": [["out", 0, 0]]}),
        ],
        partitions=[
            PartitionObservation(topic="out", partition=0, high_watermark=4, last_stable_offset=4,
                                 read_committed=[(0, "k1", "v1")], read_uncommitted=[(0, "k1", "v1"), (1, None, None)]),
            PartitionObservation(topic="in", partition=0, high_watermark=2, last_stable_offset=2,
                                 read_committed=[], read_uncommitted=[]),
        ],
        groups=[GroupObservation(group="g1", committed=[("in", 0, 3)])],
    )


def test_json_round_trip_is_exact_and_deterministic():
    obs = satisfying()
    text = obs.to_json()
    assert Observation.from_json(text) == obs
    assert Observation.from_json(text).to_json() == text
    reordered = attrs.evolve(obs, steps=obs.steps[::-1], partitions=obs.partitions[::-1])
    assert reordered == obs and reordered.to_json() == text  # canonical order, whatever the input order
    assert text.index('"groups"') < text.index('"partitions"') < text.index('"scenario"') < text.index('"steps"')


def test_values_are_json_data():
    step = StepObservation(index=0, actor="a", op="poll", outcome="ok", values={"deliveries": (("t", 0, 1),)})
    assert step.values == {"deliveries": [["t", 0, 1]]}


def test_diff_is_empty_for_equal_observations():
    assert diff(satisfying(), Observation.from_json(satisfying().to_json())) == []


def test_diff_gives_one_line_per_difference():
    sim = satisfying()
    in0, out0 = sim.partitions  # sorted by topic and partition
    kafka = attrs.evolve(
        sim,
        steps=[attrs.evolve(sim.steps[1], outcome="ok"), *sim.steps[2:5],
               attrs.evolve(sim.steps[5], values={"deliveries": []})],
        partitions=[attrs.evolve(in0, last_stable_offset=1),
                    attrs.evolve(out0, last_stable_offset=0, read_committed=[(0, "k1", "v2"), (3, "x", None)])],
        groups=[GroupObservation(group="g1", committed=[("in", 0, 4)]), GroupObservation(group="g2", committed=[])],
    )
    assert diff(sim, kafka) == [
        "steps[0]: sim=init_transactions by p1: ok kafka=(missing)",
        "steps[1].outcome: sim=_FENCED kafka=ok",
        'steps[5].values[deliveries]: sim=[["out",0,0]] kafka=[]',
        "partitions[in-0].last_stable_offset: sim=2 kafka=1",
        "partitions[out-0].last_stable_offset: sim=4 kafka=0",
        'partitions[out-0].read_committed[offset=0]: sim=["k1","v1"] kafka=["k1","v2"]',
        'partitions[out-0].read_committed[offset=3]: sim=(missing) kafka=["x",null]',
        "groups[g1].committed[in-0]: sim=3 kafka=4",
        "groups[g2]: sim=(missing) kafka=[]",
    ]
    assert diff(sim, attrs.evolve(sim, scenario="other"), labels=("a", "b")) == ["scenario: a=obs b=other"]


def test_a_satisfying_observation_violates_nothing():
    assert check_expectations(load_scenario_text(SCENARIO, "obs"), satisfying()) == []


def test_every_violated_expectation_is_listed_in_words():
    scenario = load_scenario_text(SCENARIO, "obs")
    good = satisfying()
    bad = attrs.evolve(
        good,
        steps=[
            attrs.evolve(good.steps[0], outcome="_TIMED_OUT"),
            attrs.evolve(good.steps[1], outcome="ok"),
            attrs.evolve(good.steps[2], values={"records": [["in", 0, 0, "k", "v"]]}),
            attrs.evolve(good.steps[3], values={"offsets": [["in", 0, 1], ["in", 1, 5]]}),
            # steps[4] and steps[5] were not observed: only steps[4] expects something
        ],
        partitions=[attrs.evolve(good.partitions[1], high_watermark=5, last_stable_offset=1, read_committed=[])],
        groups=[GroupObservation(group="g1", committed=[("in", 1, 7)])],
    )
    assert check_expectations(scenario, bad) == [
        "steps[0] (init_transactions by p1): expected success, got _TIMED_OUT",
        "steps[1] (commit_transaction by p1): expected error _FENCED, got success",
        'steps[2] (consume by c1): expected records [[0,"k","v"],[1,null,"w"]], got [["in",0,0,"k","v"]]',
        "steps[3] (position by c1): expected offset 2 for in-0, got 1",
        "steps[3] (position by c1): expected offset none for in-1, got 5",
        "steps[4] (committed by c1): not observed",
        "partition out-0: expected high_watermark 4, got 5",
        "partition out-0: expected last_stable_offset 4, got 1",
        'partition out-0: expected read_committed [[0,"k1","v1"]], got []',
        "group g1 in-0: expected committed offset 3, got none",
        "group g1 in-1: expected committed offset none, got 7",
    ]


def test_consumed_records_compare_topic_and_partition_only_when_given():
    text = SCENARIO.replace('expect_records = [[0, "k", "v"], { offset = 1, value = "w" }]',
                            'expect_records = [["in", 1, 0, "k", "v"]]')
    scenario = load_scenario_text(text, "obs")
    obs = satisfying()
    consumed = attrs.evolve(obs.steps[2], values={"records": [["in", 0, 0, "k", "v"]]})
    steps = [*obs.steps[:2], consumed, *obs.steps[3:]]
    assert check_expectations(scenario, attrs.evolve(obs, steps=steps)) == [
        'steps[2] (consume by c1): expected records [["in",1,0,"k","v"]], got [["in",0,0,"k","v"]]']


def test_mismatched_observations_are_reported():
    scenario = load_scenario_text(SCENARIO, "obs")
    obs = satisfying()
    swapped = attrs.evolve(obs, scenario="x", steps=[attrs.evolve(obs.steps[0], op="flush"), *obs.steps[1:]],
                           partitions=[])
    assert check_expectations(scenario, swapped) == [
        'the observation is of scenario "x", not "obs"',
        "steps[0] (init_transactions by p1): the observation at this index is flush by p1",
        "partition out-0: not observed",
    ]


def test_nearest_finds_the_allowed_observation_that_equals_kafkas():
    """A racy scenario's allowed observations (docs/conformance.md): Kafka's matches one, not the first."""
    obs = satisfying()
    other = attrs.evolve(obs, groups=[GroupObservation(group="g1", committed=[("in", 0, 1)])])
    assert nearest([other, obs], obs) == (1, [])


def test_nearest_reports_the_differences_to_the_closest_allowed_observation():
    obs = satisfying()
    far = attrs.evolve(obs, groups=[], partitions=[])
    close = attrs.evolve(obs, groups=[GroupObservation(group="g1", committed=[("in", 0, 1)])])
    index, lines = nearest([far, close], obs)
    assert index == 1 and lines == diff(close, obs) and len(lines) == 1


def test_nearest_needs_an_allowed_observation():
    import pytest

    with pytest.raises(ValueError):
        nearest([], satisfying())


def test_step_columns_read_as_the_step_observations_they_hold():
    """A run's steps are held in columns (StepColumns) and read as StepObservations: equal to the tuple of
    them, value for value, whatever shape the values take."""
    s = load_scenario_text(SCENARIO, "obs")
    columns = StepColumns(s.steps)
    for _ in s.steps:
        columns.start()
    columns.finish(0, "ok")
    columns.finish(1, "_FENCED")
    columns.put(2, "records", records := [])
    records.append(["in", 0, 0, "k", "v"])  # a list put is held: the consume fills it afterwards
    columns.put(3, "offsets", [["in", 0, 2]])
    columns.put(3, "more", {"a": (1, 2)})
    columns.delivered(4, "in", 0, -1)  # not a produce in SCENARIO, but any step may hold any shape
    columns.put(5, "remaining", 0)
    columns.put(5, "remaining", 3)
    columns.put(5, "deliveries", [])  # past the compact shape: a dict, the earlier value kept
    expected = (
        StepObservation(index=0, actor="p1", op="init_transactions", outcome="ok"),
        StepObservation(index=1, actor="p1", op="commit_transaction", outcome="_FENCED"),
        StepObservation(index=2, actor="c1", op="consume", outcome="pending",
                        values={"records": [["in", 0, 0, "k", "v"]]}),
        StepObservation(index=3, actor="c1", op="position", outcome="pending",
                        values={"offsets": [["in", 0, 2]], "more": {"a": [1, 2]}}),
        StepObservation(index=4, actor="c1", op="committed", outcome="pending", values={"delivery": ["in", 0, -1]}),
        StepObservation(index=5, actor="p1", op="flush", outcome="pending",
                        values={"remaining": 3, "deliveries": []}),
    )
    assert columns == expected and tuple(columns) == expected and columns[-1] == expected[-1]
    assert columns[1:3] == expected[1:3] and columns[::-1] == expected[::-1]
    assert repr(columns) == repr(expected) and hash(columns) == hash(expected)
    built = Observation(scenario="obs", steps=columns, partitions=[], groups=[])
    as_tuple = Observation(scenario="obs", steps=expected, partitions=[], groups=[])
    assert built.steps is columns and built == as_tuple and built.to_json() == as_tuple.to_json()
    assert Observation.from_json(built.to_json()) == built
    assert check_expectations(s, built) == check_expectations(s, as_tuple)
    assert check_expectations(s, built)  # it does compare: SCENARIO expects what these steps did not do
    other = load_scenario_text(SCENARIO.replace('op = "flush"', 'op = "poll"\ntimeout_ms = 0'), "obs")
    assert check_expectations(other, built) == check_expectations(other, as_tuple)  # columns of other steps
    assert "steps[5] (poll by p1): the observation at this index is flush by p1" in check_expectations(other, built)


def test_step_columns_of_a_run_that_ended_early_are_not_observed_past_it():
    s = load_scenario_text(SCENARIO, "obs")
    columns = StepColumns(s.steps)
    columns.finish(columns.start(), "ok")
    built = Observation(scenario="obs", steps=columns, partitions=[], groups=[])
    as_tuple = Observation(scenario="obs", steps=tuple(columns), partitions=[], groups=[])
    assert len(built.steps) == 1
    problems = check_expectations(s, built)
    assert problems == check_expectations(s, as_tuple)
    assert "steps[1] (commit_transaction by p1): not observed" in problems
