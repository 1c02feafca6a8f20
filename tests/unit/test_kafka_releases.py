"""The broker's Kafka release as a model input (models/bugs.py ``Bug.affects``, BrokerConfig
``eosim.kafka.version``): which bugs each 4.x release has, that an unknown release is refused, and that
the simulator's observation follows the release as Kafka's does (docs/version-matrix.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import attrs
import pytest

from eosim._cli import scenario_dir
from eosim._realkafka.driver import for_broker, kafka_version_of, on_client
from eosim._runner import run_scenario
from eosim._scenario import load_scenario
from eosim.models.bugs import HISTORICAL_BUGS, KAFKA_RELEASES, PINNED_RELEASE, bugs_of, release_key, validate_release
from eosim.models.config import BrokerConfig

# Read off the released jars (models/bugs.py, affects_source), not derived from the table under test.
BUGS_OF = {
    "4.0.0": {"KAFKA-19367", "KAFKA-19690", "KAFKA-20785"},
    "4.0.1": {"KAFKA-19690", "KAFKA-20785"},
    "4.0.2": {"KAFKA-20785"},
    "4.1.0": {"KAFKA-19690", "KAFKA-20785"},
    "4.1.1": {"KAFKA-20785"},
    "4.1.2": {"KAFKA-20785"},
    "4.2.0": {"KAFKA-20785"},
    "4.2.1": {"KAFKA-20785"},
    "4.2.2": {"KAFKA-20785"},
    "4.3.0": {"KAFKA-20785"},
    "4.3.1": {"KAFKA-20785"},
    "4.3.2": set(),
    "4.4.0": {"KAFKA-20785"},
}


def test_every_release_on_maven_central_is_in_the_table_oldest_first():
    assert list(BUGS_OF) == list(KAFKA_RELEASES) == sorted(KAFKA_RELEASES, key=release_key)
    assert PINNED_RELEASE in KAFKA_RELEASES


@pytest.mark.parametrize("release", KAFKA_RELEASES)
def test_the_bugs_of_each_release(release):
    assert bugs_of(release) == BUGS_OF[release]
    config = BrokerConfig(eosim_kafka_version=release)
    assert {b for b in HISTORICAL_BUGS if config.reintroduces(b)} == BUGS_OF[release]


def test_every_range_is_ordered_cited_and_made_of_known_releases():
    for bug_id, bug in HISTORICAL_BUGS.items():
        for first, last in bug.affects:
            assert first in KAFKA_RELEASES and last in KAFKA_RELEASES, bug_id
            assert release_key(first) <= release_key(last), bug_id
        assert bool(bug.affects) == bool(bug.affects_source), bug_id


def test_the_default_broker_is_the_pinned_release_and_eosim_reintroduce_adds_to_its_bugs():
    assert BrokerConfig().eosim_kafka_version == PINNED_RELEASE
    config = BrokerConfig(eosim_reintroduce=("KAFKA-6119",), eosim_kafka_version="4.0.0")
    assert {b for b in HISTORICAL_BUGS if config.reintroduces(b)} == BUGS_OF["4.0.0"] | {"KAFKA-6119"}


@pytest.mark.parametrize(("release", "reason"), [
    ("4.5.0", "Kafka 4.5.0 is not a release the model knows the bugs of (known: 4.0.0, 4.0.1,"),
    ("3.9.1", "Kafka 3.9.1 is not a release the model knows the bugs of"),
    ("4.1", "'4.1' is not a Kafka release (MAJOR.MINOR.PATCH, e.g. \"4.1.2\")"),
    ("latest", "'latest' is not a Kafka release"),
    (412, "expected a Kafka release as a string like \"4.1.2\", got 412"),
])
def test_an_unknown_release_is_refused_with_the_reason(release, reason):
    with pytest.raises(ValueError) as info:
        validate_release(release)
    assert reason in str(info.value)
    with pytest.raises(ValueError):
        BrokerConfig.from_kafka({"eosim.kafka.version": release})


def test_conform_refuses_an_unknown_release_before_starting_anything():
    pytest.importorskip("confluent_kafka")
    done = subprocess.run([sys.executable, "-m", "eosim", "conform", "zombie-fencing", "--start-kafka",
                           "--kafka-version", "4.9.9"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 254, done.stderr
    assert done.stderr == ("eosim: --kafka-version: Kafka 4.9.9 is not a release the model knows the bugs of "
                           f"(known: {', '.join(KAFKA_RELEASES)})\n")


def _late_commit(release: str, name: str = "transaction-timeout-abort") -> tuple[str, str]:
    """transaction-timeout-abort on the Java lane at TV2, simulated as ``release``: what the late
    commit_transaction and the abort after it raise."""
    scenario = for_broker(on_client(load_scenario(scenario_dir() / f"{name}.toml"), "java"), 2, release)
    steps = json.loads(run_scenario(scenario).observation.to_json())["steps"]
    commit, abort = (s for s in steps if s["actor"] == "slow" and s["op"] in ("commit_transaction",
                                                                               "abort_transaction"))
    return commit["outcome"], abort["outcome"]


@pytest.mark.parametrize(("release", "raised"), [
    ("4.0.0", "PRODUCER_FENCED"),  # KAFKA-19367: the fence-abort bumps twice, EndTxn at epoch 0 is no retry
    ("4.0.2", "INVALID_TXN_STATE"),  # a retry of the completed abort that fails the state check
    (PINNED_RELEASE, "INVALID_TXN_STATE"),
    ("4.3.2", "PRODUCER_FENCED"),  # KAFKA-20785's fix
    ("4.4.0", "INVALID_TXN_STATE"),  # released before 4.3.2, without the fix
])
def test_the_simulator_observes_the_late_commit_as_each_release_answers_it(release, raised):
    """Kafka's own answers, per release, are in docs/version-matrix.md and docs/conformance.md."""
    assert _late_commit(release) == (raised, raised)


def test_a_pinned_release_wins_over_the_brokers_default():
    scenario = load_scenario(scenario_dir() / "kafka-4-0-0-timeout-commit-fenced.toml")
    assert kafka_version_of(scenario, PINNED_RELEASE) == "4.0.0"
    assert for_broker(scenario, 2, PINNED_RELEASE).broker_config.eosim_kafka_version == "4.0.0"
    # The same steps on the pinned release: the answer differs, which is why the scenario pins 4.0.0.
    moved = attrs.evolve(scenario, cluster={**scenario.cluster, "eosim.kafka.version": PINNED_RELEASE})
    outcomes = [s.outcome for s in run_scenario(moved).observation.steps if s.op == "commit_transaction"]
    assert outcomes[0] == "INVALID_TXN_STATE"


# -- eosim run --kafka-version ------------------------------------------------------------------------------


def test_run_as_a_release_writes_it_into_the_run_directory_so_replay_agrees(tmp_path):
    from typer.testing import CliRunner

    from eosim._cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    done = runner.invoke(app, ["run", "transaction-timeout-abort", "--kafka-version", "4.0.0", "--out", str(out)])
    # librdkafka's commit is fenced on every release, but on 4.0.0 the timeout abort skips an epoch (KAFKA-19367)
    assert done.exit_code == 1 and "epoch-skip" in done.output, done.output
    assert load_scenario(out / "scenario.toml").cluster["eosim.kafka.version"] == "4.0.0"
    replayed = runner.invoke(app, ["replay", str(out)])
    assert replayed.exit_code == 0 and "identical" in replayed.output, replayed.output
    plain = runner.invoke(app, ["run", "transaction-timeout-abort", "--out", str(tmp_path / "pinned")])
    assert plain.exit_code == 0 and "epoch-skip" not in plain.output, plain.output


def test_run_as_a_release_adds_a_cluster_table_where_there_is_none(tmp_path):
    from typer.testing import CliRunner

    from eosim._cli import app

    source = scenario_dir() / "zombie-fencing.toml"
    bare = tmp_path / "bare.toml"
    bare.write_text(source.read_text().replace('[cluster]\n"transaction.version" = 2\n', ""))
    assert "cluster" not in bare.read_text().split("[[topics]]")[0]
    out = tmp_path / "run"
    done = CliRunner().invoke(app, ["run", str(bare), "--kafka-version", "4.3.2", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert load_scenario(out / "scenario.toml").cluster == {"eosim.kafka.version": "4.3.2"}


@pytest.mark.parametrize(("args", "message"), [
    (["zombie-fencing", "--kafka-version", "4.1"], "eosim: --kafka-version: '4.1' is not a Kafka release"),
    (["kafka-4-0-0-timeout-commit-fenced", "--kafka-version", "4.1.2"],
     'cluster."eosim.kafka.version" pins Kafka 4.0.0; --kafka-version 4.1.2 contradicts it'),
])
def test_run_refuses_a_bad_or_contradicting_release(args, message):
    done = subprocess.run([sys.executable, "-m", "eosim", "run", *args, "--out", "/nonexistent/never"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 254 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
