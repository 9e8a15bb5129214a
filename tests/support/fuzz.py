"""Fuzzing an ASGI app against its own OpenAPI document with schemathesis, in-process (no
socket, no broker): the document is read from the app's ``/openapi.json``, each operation gets
schemathesis' examples, coverage (boundary and malformed values, undeclared methods) and
``FUZZ_SETTINGS.max_examples`` fuzzed cases, and every answer goes through schemathesis' checks
(:func:`call_and_check`).

Deterministic: hypothesis runs derandomized (the same cases on every run, nothing stored in an
example database), so a CI failure is a real regression, reproduced by running the test again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as hs
from schemathesis import Case, checks
from schemathesis.config import NotAServerErrorConfig
from schemathesis.schemas import BaseSchema

FUZZ_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def load_schema(
    app: Any, known: Mapping[str, Sequence[str]], *, faults: Sequence[int] = ()
) -> BaseSchema:
    """``app``'s OpenAPI document as schemathesis reads it; a path parameter named in ``known``
    is mostly one of those values instead of generated text (so that fuzzing also reaches a
    store that exists, or a key that is held, not only 404s).

    ``faults``: the 5xx statuses the app is expected to answer because the test injected a
    fault (a peer down: 504; rebalancing: 503). The ``not_a_server_error`` check accepts those
    and still fails on any other 5xx; whether the answer is documented is checked as always."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    if faults:
        expected = ["2xx", "3xx", "4xx", *(str(status) for status in faults)]
        schema.config.checks.not_a_server_error = NotAServerErrorConfig(expected_statuses=expected)

    def flatmap_path_parameters(context: Any, generated: dict[str, Any] | None) -> Any:
        if not generated:  # an operation without path parameters
            return hs.just(generated)
        choices = {
            name: hs.one_of(hs.sampled_from(known[name]), hs.just(value))
            for name, value in generated.items()
            if known.get(name)
        }
        return hs.fixed_dictionaries({**{n: hs.just(v) for n, v in generated.items()}, **choices})

    schema.hook(flatmap_path_parameters)
    return schema


def call_and_check(case: Case[Any]) -> None:
    """Send ``case`` to the app and run every check schemathesis enables by default, among
    them: no 5xx (``not_a_server_error``), a documented status (``status_code_conformance``),
    a documented media type (``content_type_conformance``), a body valid against the documented
    schema (``response_schema_conformance``), documented headers present and valid, a 4xx for
    a value the document forbids (``negative_data_rejection``), and a 405 with ``Allow`` for an
    undeclared method (``unsupported_method``).

    Left out: ``positive_data_acceptance`` (a value the document allows must not get a 400).
    It cannot hold for these APIs: a key, a ``from``/``to`` bound or a ``cursor`` is a string in
    the document, but which strings parse depends on each store's key serde (JSON text for
    ``DEFAULT``, any text for ``STRING``) and a cursor is an opaque token the server issued, so a
    schema-valid string is rightly answered ``400 bad_key``/``bad_request``."""
    case.call_and_validate(excluded_checks=[checks.positive_data_acceptance])


def fuzz_test(schema: BaseSchema) -> Callable[[Case[Any]], None]:
    """A pytest test, one item per operation of ``schema``, fuzzing it with
    :data:`FUZZ_SETTINGS` and checking each answer with :func:`call_and_check`. Bind it to a
    module-level ``test_...`` name."""

    @schema.parametrize()
    @FUZZ_SETTINGS
    def test(case: Case[Any]) -> None:
        call_and_check(case)

    return test  # type: ignore[no-any-return]
