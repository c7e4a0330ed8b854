"""docs/configuration.md and .env.example are generated from the settings' fields.

Each setting is described once, in `shared/platform/config.py`; `shared.dev.configuration`
renders both files from it. These tests regenerate them in memory and compare with the
committed files, and check that every field carries what the generator needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.dev import configuration
from shared.platform import config
from shared.platform.config import SECTIONS, Settings

FIX = "run `python -m shared.dev.configuration --write` and commit the result"
FIELDS = sorted(Settings.model_fields)


@pytest.mark.parametrize(
    ("path", "render"),
    [
        (configuration.DOCS_PATH, configuration.render_docs),
        (configuration.ENV_EXAMPLE_PATH, configuration.render_env_example),
    ],
    ids=["docs/configuration.md", ".env.example"],
)
def test_generated_file_is_up_to_date(path: Path, render: Callable[[], str]) -> None:
    committed = path.read_text(encoding="utf-8") if path.is_file() else ""
    name = path.relative_to(config.REPO_ROOT)
    assert committed == render(), f"{name} is out of date with shared/platform/config.py: {FIX}"


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_has_a_description_and_a_section(name: str) -> None:
    field = Settings.model_fields[name]
    assert field.description and field.description.strip(), (
        f"{name.upper()} has no description: give it Field(description=...)"
    )
    extra = field.json_schema_extra
    assert isinstance(extra, dict), f"{name.upper()}: json_schema_extra={{'section': ...}} missing"
    assert extra.get("section") in SECTIONS, (
        f"{name.upper()}: section {extra.get('section')!r} is not one of config.SECTIONS"
    )
    assert set(extra) <= {"section", "off"}, f"{name.upper()}: unknown keys {sorted(extra)}"
    if "off" in extra:
        assert isinstance(extra["off"], str) and extra["off"].strip()


def test_every_section_has_settings() -> None:
    used = {
        extra.get("section")
        for field in Settings.model_fields.values()
        if isinstance(extra := field.json_schema_extra, dict)
    }
    assert used == set(SECTIONS), "a section of config.SECTIONS has no setting"


def test_every_setting_is_in_both_files_once() -> None:
    docs = configuration.render_docs()
    env = configuration.render_env_example()
    for name in FIELDS:
        assert docs.count(f"| `{name.upper()}` |") == 1, name
        assert len(re.findall(rf"^{name.upper()}=", env, re.MULTILINE)) == 1, name


def test_secrets_show_no_default_in_the_docs() -> None:
    docs = configuration.render_docs()
    for name in config.SECRET_SETTINGS:
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{name.upper()}` |"))
        assert row.split(" | ")[1] in {"secret", "**required**, secret"}, row


def test_local_values_are_secrets_that_deployed_mode_refuses() -> None:
    """`.env.example`'s own values differ from the code only for secrets, and only with values
    that are public: deployed mode must refuse each of them."""
    assert set(configuration.LOCAL_VALUES) <= set(config.SECRET_SETTINGS)
    for name, (value, note) in configuration.LOCAL_VALUES.items():
        assert value in config.WELL_KNOWN_SECRETS, name
        assert note.strip(), name
        field = Settings.model_fields[name]
        assert field.is_required() or field.default is None, f"{name.upper()} has a code default"


def test_env_example_values_are_the_code_defaults() -> None:
    """Apart from LOCAL_VALUES, every entry of `.env.example` is the code default, so the
    file and the code cannot disagree on a default."""
    env = configuration.render_env_example()
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", env, re.MULTILINE))
    for name, field in Settings.model_fields.items():
        if name in configuration.LOCAL_VALUES:
            assert values[name.upper()] == configuration.LOCAL_VALUES[name][0]
            continue
        default = None if field.is_required() else field.default
        assert values[name.upper()] == configuration.env_value(default), name


def test_the_ranges_come_from_the_validation() -> None:
    fields = Settings.model_fields
    assert configuration.allowed_range(fields["jwks_cache_seconds"]) == "1\N{EN DASH}600"
    assert configuration.allowed_range(fields["db_connect_timeout"]) == "> 0"
    assert configuration.allowed_range(fields["db_pool_min"]) == "\N{GREATER-THAN OR EQUAL TO} 0"
    assert configuration.allowed_range(fields["storage_bucket"]) is None


def test_check_and_write(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale, fresh = tmp_path / "configuration.md", tmp_path / ".env.example"
    stale.write_text("old\n", encoding="utf-8")
    fresh.write_text("same\n", encoding="utf-8")
    monkeypatch.setattr(configuration, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(configuration, "outputs", lambda: {stale: "new\n", fresh: "same\n"})
    assert configuration.main(["--check"]) == 1
    assert "out of date: configuration.md" in capsys.readouterr().err
    assert stale.read_text(encoding="utf-8") == "old\n"
    assert configuration.main(["--write"]) == 0
    assert capsys.readouterr().out == "wrote configuration.md\n"
    assert stale.read_text(encoding="utf-8") == "new\n"
    assert configuration.main(["--check"]) == 0
