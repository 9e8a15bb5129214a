"""The base of the bench's typed results (bench/results.py, bench/results_w6.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

Num = int | float
"""A measured figure: kept as measured (an int stays an int in the JSON)."""


class Model(BaseModel):
    """Frozen, and an unknown key is an error (a typo must not vanish from the results)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
