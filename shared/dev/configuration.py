"""`docs/configuration.md` and `.env.example`, generated from the settings' fields.

Each setting is described once, in `shared/platform/config.py`: its `Field` carries the
default and validation, a `description`, and in `json_schema_extra` its section (one of
`config.SECTIONS`) and, where it can be turned off, its `"off"` value. This module renders
them twice:

- `docs/configuration.md`: how settings are read, then a table per section (setting, default
  with its allowed range, description with the off value). Secrets are marked as such and show
  no default.
- `.env.example`: every setting as `NAME=value` under its description as comment lines. The
  value is the code default, except where `LOCAL_VALUES` gives a working local one (secrets
  have no default in code).

    python -m shared.dev.configuration --write   # write both files
    python -m shared.dev.configuration --check   # exit 1 when either is out of date

`tests/unit/test_configuration_docs.py` regenerates both in memory and compares them with the
committed files.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

import annotated_types
from pydantic.fields import FieldInfo

from shared.platform import config
from shared.platform.config import REPO_ROOT, SECRET_SETTINGS, SECTIONS, Settings

DOCS_PATH = REPO_ROOT / "docs" / "configuration.md"
ENV_EXAMPLE_PATH = REPO_ROOT / ".env.example"
COMMAND = "python -m shared.dev.configuration --write"
WIDTH = 92  # .env.example's comment lines

# `.env.example`'s value where it differs from the code default, with a note on that value.
# Only the secrets that a local set-up needs: the code gives them no default, and both values
# are public, so deployed mode refuses them (`config.WELL_KNOWN_SECRETS`, checked by the test).
LOCAL_VALUES: dict[str, tuple[str, str]] = {
    "supabase_jwt_secret": (
        config.SUPABASE_CLI_JWT_SECRET,
        "This local value is the Supabase CLI's well-known default JWT secret: never use it "
        "live. Deployed mode (`K_SERVICE` set, or a `DATABASE_URL` / `SUPABASE_URL` host that "
        "is not loopback) refuses to start with it, with the CLI's anon and service-role keys, "
        "with the example `SCHEDULER_SECRET` below and with any secret containing `change-me` "
        "(docs/deploy.md).",
    ),
    "scheduler_secret": (
        "local-scheduler-secret-change-me-0123456789",
        "This example value works locally only: deployed mode refuses it.",
    ),
}

DOCS_INTRO = """\
# Configuration

<!-- Generated from shared/platform/config.py by
`python -m shared.dev.configuration --write`: edit the settings there, not this file. -->

Settings are read once at start-up from the environment, then from a dotenv file, with
pydantic-settings. By default the dotenv file is `.env` in the current directory, so run
commands from the repository root. `DOCFLOW_ENV_FILE=path` picks another file, and
`DOCFLOW_ENV_FILE=` (empty) reads none. The environment overrides the file, and an empty
value means the default. A wrong or missing setting stops start-up with
`invalid configuration: NAME: reason`.

Secrets have no default in code. `SCHEDULER_SECRET` is required, and so is at least one of
`SUPABASE_JWT_SECRET` (HS256 tokens) and `JWKS_URL` (ES256/RS256 tokens). `.env.example`
gives the secrets local values and lists every other setting with a working local default.
A deployed process refuses secrets anyone can read, those local values among them
([deployed mode](deploy.md#deployed-mode)).

Each setting is described once, in its field in `shared/platform/config.py`. This page and
`.env.example` are generated from there (`python -m shared.dev.configuration --write`), and
a test fails when they drift. **Off** says how to turn a setting off, where it can be.

A few environment variables are not settings and are never read from `.env`:

- `DOCFLOW_ENV_FILE`: the dotenv file to read.
- `PG_BINDIR`: where the PostgreSQL server binaries are.
- `TEST_DATABASE_URL`: a Postgres server for the tests ([tests](operations.md#tests)).
"""

ENV_INTRO = """\
# docflow settings. Copy to .env (`make` does it for you) and adjust. Every setting is
# listed here with a working local default; the environment overrides this file, and an
# empty value means the default. docs/configuration.md describes them too.
#
# Generated from shared/platform/config.py by
# `python -m shared.dev.configuration --write`: change a setting's description or default
# there, not here.
"""


def _section(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    return str(extra["section"]) if isinstance(extra, dict) and "section" in extra else ""


def _off(field: FieldInfo) -> str | None:
    extra = field.json_schema_extra
    return str(extra["off"]) if isinstance(extra, dict) and "off" in extra else None


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def env_value(value: object) -> str:
    """A default as `.env.example` writes it (None: empty; paths relative to the checkout)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return (
            value.relative_to(REPO_ROOT).as_posix()
            if value.is_relative_to(REPO_ROOT)
            else str(value)
        )
    return _number(value)


def allowed_range(field: FieldInfo) -> str | None:
    """The numeric bounds of a field (`ge`, `gt`, `le`, `lt`): `≥ 0`, `> 0`, or `1-600` with an
    en dash."""
    bound: dict[str, str] = {}
    for item in field.metadata:
        for kind in ("ge", "gt", "le", "lt"):
            if isinstance(item, annotated_types.BaseMetadata) and hasattr(item, kind):
                bound[kind] = _number(getattr(item, kind))
    if "ge" in bound and "le" in bound:
        return f"{bound['ge']}\N{EN DASH}{bound['le']}"
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return ", ".join(f"{signs[kind]} {value}" for kind, value in bound.items()) or None


def _by_section() -> dict[str, list[tuple[str, FieldInfo]]]:
    grouped: dict[str, list[tuple[str, FieldInfo]]] = {title: [] for title in SECTIONS}
    for name, field in Settings.model_fields.items():
        section = _section(field)
        if section not in grouped:
            raise ValueError(f"{name.upper()}: section {section!r} is not in config.SECTIONS")
        grouped[section].append((name, field))
    return grouped


def _heading(title: str) -> str:
    return title[:1].upper() + title[1:]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _docs_default(name: str, field: FieldInfo) -> str:
    if name in SECRET_SETTINGS:
        return "**required**, secret" if field.is_required() else "secret"
    if field.is_required():
        return "**required**"
    value = env_value(field.default)
    shown = f"`{value}`" if value else "empty"
    bounds = allowed_range(field)
    return f"{shown} ({bounds})" if bounds else shown


def _docs_description(field: FieldInfo) -> str:
    text = field.description or ""
    off = _off(field)
    return f"{text} **Off:** {off}." if off else text


def render_docs() -> str:
    """`docs/configuration.md`."""
    grouped = _by_section()
    out = [DOCS_INTRO]
    out.append(
        "Sections:\n\n"
        + "".join(
            f"- [{_heading(t)}](#{_heading(t).lower().replace(' ', '-')})\n" for t in SECTIONS
        )
    )
    for title, fields in grouped.items():
        out.append(f"## {_heading(title)}\n")
        if SECTIONS[title]:
            out.append("\n".join(_wrap(SECTIONS[title])) + "\n")
        rows = ["| setting | default | description |", "|---|---|---|"]
        rows += [
            f"| `{name.upper()}` | {_cell(_docs_default(name, field))} | "
            f"{_cell(_docs_description(field))} |"
            for name, field in fields
        ]
        out.append("\n".join(rows) + "\n")
    return "\n".join(out)


# Spans a line must not break inside: inline code, a bound (`≥ 0`), a number and its unit.
_UNBROKEN = re.compile(r"`[^`]*`|[≥≤<>] \d|\d (?:s|h|ms|MiB)\b")
_NBSP = "\N{NO-BREAK SPACE}"  # textwrap breaks only at ASCII whitespace


def _wrap(text: str, prefix: str = "") -> list[str]:
    text = _UNBROKEN.sub(lambda m: m.group().replace(" ", _NBSP), text)
    lines = textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=prefix,
        subsequent_indent=prefix,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(_NBSP, " ") for line in lines]


def _comment(text: str) -> list[str]:
    return _wrap(text, "# ")


def _rule(title: str) -> str:
    head = f"# --- {title} "
    return head + "-" * max(3, 90 - len(head))


def render_env_example() -> str:
    """`.env.example`."""
    grouped = _by_section()
    out = [ENV_INTRO]
    for title, fields in grouped.items():
        block = [_rule(title)]
        if SECTIONS[title]:
            block += _comment(SECTIONS[title])
        out.append("\n".join(block) + "\n")
        for name, field in fields:
            text = field.description or ""
            if name in SECRET_SETTINGS:
                text = f"Secret. {text}"
            if off := _off(field):
                text += f" Off: {off}."
            if bounds := allowed_range(field):
                text += f" Range: {bounds}."
            lines = _comment(text)
            value = env_value(None if field.is_required() else field.default)
            if name in LOCAL_VALUES:
                value, note = LOCAL_VALUES[name]
                lines += _comment(note)
            lines.append(f"{name.upper()}={value}")
            out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def outputs() -> dict[Path, str]:
    return {DOCS_PATH: render_docs(), ENV_EXAMPLE_PATH: render_env_example()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.dev.configuration",
        description="Generate docs/configuration.md and .env.example from the settings.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write both files")
    mode.add_argument("--check", action="store_true", help="exit 1 when either is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(path.relative_to(REPO_ROOT).as_posix())
        if args.write:
            path.write_text(text, encoding="utf-8")
    if args.write:
        print(f"wrote {', '.join(stale)}" if stale else "up to date")
        return 0
    if stale:
        print(f"out of date: {', '.join(stale)}; run `{COMMAND}`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
