"""The soak's workloads (experiments/soak.py) are valid scenarios, and their files replay them."""

from __future__ import annotations

from eosim._scenario import load_scenario_text, scenario_from_dict, scenario_to_dict
from eosim.experiments.soak import HEADER, generate, soak, to_toml


def test_every_generated_workload_loads_and_its_file_gives_the_same_scenario():
    for seed in range(200):
        document = generate(seed)
        name = document["scenario"]["name"]
        scenario = scenario_from_dict(document, name=name, header=HEADER)
        again = load_scenario_text(to_toml(document), name)
        assert scenario_to_dict(again) == scenario_to_dict(scenario)


def test_a_sample_of_the_soak_has_no_false_alarm():
    """40 soak runs (experiments/soak.py runs 10,000): none INVALID, none crashes, and an unknown verdict names
    the Kafka timer that leaves it undecided."""
    results = soak(range(40))
    assert [r for r in results if r["verdict"] in ("INVALID", "crash")] == []
    for r in results:
        if r["verdict"] == "unknown":
            assert all("undecided" in d for d in r["details"]), r
