"""The examples of the README and of docs/windowing.md are documentation that runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("document", ["README.md", "docs/windowing.md"])
def test_python_examples_run(document: str) -> None:
    text = (Path(__file__).resolve().parents[1] / document).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, f"{document} has no python example"
    for block in blocks:
        exec(compile(block, document, "exec"), {})
