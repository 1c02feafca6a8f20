"""The pipeline checker: each committed input value exactly once among the committed outputs."""

from eosim._checkers.pipeline import check_pipeline

INPUT = [("in-0", 0, "a"), ("in-0", 1, "b")]


def test_exactly_once_is_quiet() -> None:
    result = check_pipeline(INPUT, [("out-0", 0, "a"), ("out-0", 2, "b")])
    assert result.valid is True and result.anomalies == ()


def test_a_lost_input_fires_pipeline_loss_with_the_input_as_witness() -> None:
    result = check_pipeline(INPUT, [("out-0", 0, "a")])
    assert result.valid is False
    [anomaly] = result.anomalies
    assert anomaly.name == "pipeline-loss" and anomaly.witness == ({"input": ["in-0", 1, "b"], "outputs": []},)


def test_a_reprocessed_input_fires_pipeline_duplicate_naming_both_outputs() -> None:
    result = check_pipeline(INPUT, [("out-0", 0, "a"), ("out-0", 1, "b"), ("out-0", 3, "b")])
    [anomaly] = result.anomalies
    assert anomaly.name == "pipeline-duplicate"
    assert anomaly.witness == ({"input": ["in-0", 1, "b"], "outputs": [["out-0", 1], ["out-0", 3]]},)
    assert "out-0@1, out-0@3" in anomaly.description
