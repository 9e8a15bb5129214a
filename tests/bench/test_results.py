"""The results model: every file under bench/results/ loads and is written back byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.results import BenchResults, Failure, QueriesResult

pytestmark = pytest.mark.unit

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
FILES = sorted(RESULTS.glob("*.json"))


def test_there_are_results_to_check() -> None:
    assert len(FILES) >= 2
    assert RESULTS / "latest.json" in FILES


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_results_file_round_trips_exactly(path: Path) -> None:
    assert BenchResults.load(path).to_json() == path.read_text()


def test_figures_keep_their_json_type() -> None:
    results = BenchResults.load(RESULTS / "latest.json")
    restore = results.runs[0].st_alos.restore
    assert restore is not None
    assert type(restore.restored_records) is int
    assert type(results.runs[0].st_alos.rps) is float
    assert isinstance(results.extras and results.extras.w3, QueriesResult)


def test_a_missing_key_is_left_out_and_a_null_is_kept() -> None:
    oldest = BenchResults.load(RESULTS / "20261124T194215Z.json")
    assert oldest.machine.kafka is None
    assert "kafka" not in oldest.model_dump(exclude_unset=True)["machine"]
    assert oldest.extras is None
    assert oldest.w3.pending is not None
    recent = BenchResults.load(RESULTS / "20261201T022851Z.json")
    assert recent.w3.scan_keys is None
    assert '"scan_keys": null' in recent.to_json()


def test_a_failed_extra_loads_as_a_failure(tmp_path: Path) -> None:
    text = (RESULTS / "20261201T022851Z.json").read_text()
    failed = '"extras": {\n    "w5": {\n      "error": "boom"\n    }\n  }'
    path = tmp_path / "failed.json"
    path.write_text(text.replace('"extras": {}', failed))
    results = BenchResults.load(path)
    assert results.extras is not None
    assert results.extras.w5 == Failure(error="boom")
    assert results.to_json() == path.read_text()


def test_an_unknown_key_or_bad_json_is_a_clear_error(tmp_path: Path) -> None:
    text = (RESULTS / "20261201T022851Z.json").read_text()
    typo = tmp_path / "typo.json"
    typo.write_text(text.replace('"repeats":', '"repeat":'))
    with pytest.raises(ValueError, match=r"typo\.json: not a bench results file"):
        BenchResults.load(typo)
    broken = tmp_path / "broken.json"
    broken.write_text(text[:100])
    with pytest.raises(ValueError, match=r"broken\.json: not a bench results file"):
        BenchResults.load(broken)
