"""The CLI: a flag for every setting (derived from the settings model, so a new setting gets
one), and a bad value, ``--kafka`` JSON included, a clean exit 2 that names it."""

from __future__ import annotations

import pytest

from us_shareholders import cli
from us_shareholders.config import ServiceSettings

pytestmark = pytest.mark.unit


def test_every_setting_has_a_flag() -> None:
    flags = set(cli.SETTINGS_FLAGS) | {"kafka"}
    assert flags == set(ServiceSettings.model_fields)
    args = cli._parser().parse_args(
        ["run", "--smtp-timeout-s", "5", "--log-personal-data", "true", "--http-port", "9001"]
    )
    settings = cli._settings(args)
    assert settings.smtp_timeout_s == 5.0
    assert settings.log_personal_data is True
    assert settings.http_port == 9001


def test_the_help_describes_each_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--smtp-timeout-s" in out
    assert "Where local state" in out  # the field's docstring


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["run", "--kafka", "{bad json"], "--kafka: not JSON"),
        (["run", "--kafka", "[1, 2]"], "USH_KAFKA"),
        (["run", "--http-port", "eighty"], "USH_HTTP_PORT"),
        (["run", "--processing-guarantee", "twice"], "USH_PROCESSING_GUARANTEE"),
    ],
)
def test_a_bad_value_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    assert cli.main([*argv, "--log-format", "text"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("us-shareholders: configuration error: "), err
    assert named in err
    assert "Traceback" not in err
