"""What every section test checks: the results survive their JSON, and the section is rendered
before the machine's."""

from __future__ import annotations

from pathlib import Path

from bench.render import render_markdown
from bench.results import BenchResults


def assert_round_trip_before_machine(results: BenchResults, tmp_path: Path, heading: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(results.to_json())
    loaded = BenchResults.load(path)
    assert loaded == results
    text = render_markdown(loaded, "stamp", 1.0)
    assert text.index(heading) < text.index("## Machine")
