"""Checks that an HTTP answer is one its OpenAPI document promises: the status is documented
for that operation, the media type is documented for that status, and a JSON body validates
against the documented schema (``$ref``s into the document's components resolved)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]  # no stubs; a dev dependency (registry extra)


def check_documented(
    document: dict[str, Any], method: str, path: str, reply: httpx.Response
) -> None:
    """Raise AssertionError unless ``reply`` to ``method`` on the path template ``path`` is
    what ``document`` says that operation answers."""
    operation = document["paths"].get(path, {}).get(method.lower())
    assert operation is not None, f"{method} {path} is not documented"
    answers = operation["responses"]
    answer = answers.get(str(reply.status_code))
    where = f"{method} {path} -> {reply.status_code} {reply.text[:200]}"
    assert answer is not None, f"undocumented status: {where} (documented: {sorted(answers)})"
    content = answer.get("content", {})
    media = reply.headers.get("content-type", "").split(";")[0].strip()
    assert media in content, f"undocumented media type {media!r}: {where} ({sorted(content)})"
    schema = content[media].get("schema")
    if schema is not None and media == "application/json":
        rooted = {**schema, "components": document.get("components", {})}
        errors = list(jsonschema.Draft202012Validator(rooted).iter_errors(reply.json()))
        assert not errors, f"body does not match the schema: {where}: {errors[0].message}"
    for header in answer.get("headers", {}):
        assert header in reply.headers, f"documented header {header} missing: {where}"
