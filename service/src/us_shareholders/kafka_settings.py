"""The service's Kafka client settings: librdkafka properties from the environment.

One JSON object in ``USH_KAFKA`` (``{"security.protocol": "SASL_SSL"}``) and one variable per
property, ``USH_KAFKA__SECURITY_PROTOCOL=SASL_SSL`` (after ``USH_KAFKA__`` the name is
lower-cased and ``_`` becomes ``.``), which wins over the JSON object. ``USH_`` is the settings
class's ``env_prefix``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

_NOT_AN_OBJECT = 'must be a JSON object, e.g. {"security.protocol": "SASL_SSL"}'


class KafkaPropertiesSource(PydanticBaseSettingsSource):
    """``USH_KAFKA`` (a JSON object) merged with ``USH_KAFKA__SASL_USERNAME=x`` variables
    (``{"kafka": {"sasl.username": "x"}}``), which win."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the environment itself

    def __call__(self) -> dict[str, Any]:
        whole_name = f"{self.config.get('env_prefix', '')}KAFKA".upper()
        one_prefix = f"{whole_name}__"
        whole = next((v for k, v in os.environ.items() if k.upper() == whole_name), None)
        properties: dict[str, Any] = {}
        if whole is not None and whole.strip():
            try:
                parsed = json.loads(whole)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                return {"kafka": whole}  # let the field validator explain what is wrong
            properties.update(parsed)
        properties.update(
            (name[len(one_prefix) :].lower().replace("_", "."), value)
            for name, value in os.environ.items()
            if name.upper().startswith(one_prefix) and len(name) > len(one_prefix)
        )
        return {"kafka": properties} if properties else {}


def kafka_properties(value: object) -> object:
    """The ``kafka`` setting's check: a JSON object (or its text) of strings, numbers and
    booleans; blank text is no properties. Raises ValueError saying what is wrong."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(_NOT_AN_OBJECT) from None
    if not isinstance(value, dict):
        raise ValueError(_NOT_AN_OBJECT)
    for key, item in value.items():
        if not isinstance(item, str | int | bool):
            raise ValueError(f"property {key!r} must be a string, number or boolean")
    return value
