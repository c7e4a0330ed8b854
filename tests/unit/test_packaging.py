"""What Cloud Functions needs at the source root stays in step with the project.

- `requirements.txt` (installed by the Cloud Functions build) lists exactly pyproject's
  `[project.dependencies]`;
- `main.py` exports every deployable target as a plain function, and functions-framework can
  load each of them from it (`functions-framework --target NAME`);
- `.env.example` documents every setting.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
import types
from pathlib import Path

import functions_framework
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import functions
from shared.platform.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGETS = sorted(functions.targets())


def normalized(line: str) -> str:
    """One requirement, spelled canonically (name case, extras and specifier order)."""
    req = Requirement(line)
    extras = ",".join(sorted(canonicalize_name(e) for e in req.extras))
    specifier = ",".join(sorted(str(s) for s in req.specifier))
    marker = f"; {req.marker}" if req.marker else ""
    url = f" @ {req.url}" if req.url else ""
    return f"{canonicalize_name(req.name)}[{extras}]{url}{specifier}{marker}"


def requirements_txt() -> list[str]:
    lines = []
    for raw in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            assert not line.startswith("-"), f"requirements.txt: options are not expected: {raw}"
            lines.append(line)
    return lines


def test_normalized_spelling_is_canonical() -> None:
    assert normalized("PyJWT[crypto] >=2.8, <3") == normalized("pyjwt[Crypto]<3,>=2.8")
    assert normalized("psycopg[binary]>=3.2,<4") != normalized("psycopg>=3.2,<4")
    assert normalized("httpx>=0.27,<1") != normalized("httpx>=0.28,<1")


def test_requirements_txt_matches_pyproject_dependencies() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    declared = [normalized(d) for d in pyproject["project"]["dependencies"]]
    listed = [normalized(line) for line in requirements_txt()]
    assert declared, "pyproject.toml declares no runtime dependencies"
    assert len(listed) == len(set(listed)), "requirements.txt lists a requirement twice"
    assert set(listed) == set(declared), {
        "only in requirements.txt": sorted(set(listed) - set(declared)),
        "only in pyproject.toml": sorted(set(declared) - set(listed)),
    }


def load_main() -> types.ModuleType:
    """main.py as Cloud Functions imports it (a module named after the file)."""
    spec = importlib.util.spec_from_file_location("docflow_main_under_test", REPO_ROOT / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_main_exports_every_target_as_a_plain_function() -> None:
    assert TARGETS, "functions.targets() names no target"
    main = load_main()
    for name, handler in functions.targets().items():
        exported = getattr(main, name, None)
        # functions-framework refuses anything that is not a types.FunctionType
        assert isinstance(exported, types.FunctionType), (name, type(exported))
        assert exported is handler, name
        assert name in main.__all__, name
    assert sorted(main.__all__) == TARGETS  # nothing exported that is not deployable


def test_every_route_is_served_by_a_known_target() -> None:
    assert set(functions.ROUTES.values()) <= set(TARGETS)
    assert set(TARGETS) <= set(functions.ROUTES.values())


@pytest.mark.parametrize("target", TARGETS)
def test_functions_framework_loads_each_target(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)  # `functions-framework --target NAME` runs at the source root
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader appends the source dir
    app = functions_framework.create_app(target=target, source="main.py")
    # the target answers as an HTTP function, through docflow's router (no database needed)
    response = app.test_client().get("/__no_such_route__")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "route_not_found"
    # the loaded module is main.py and its target is the function's own handler
    assert sys.modules["main"].__file__ == str(REPO_ROOT / "main.py")
    assert getattr(sys.modules["main"], target) is functions.targets()[target]


def test_functions_framework_rejects_an_unknown_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(functions_framework.exceptions.MissingTargetException):
        functions_framework.create_app(target="no_such_target", source="main.py")


def env_example_keys() -> set[str]:
    text = (REPO_ROOT / ".env.example").read_text()
    return set(re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_env_example_lists_every_setting() -> None:
    keys = env_example_keys()
    fields = {name.upper() for name in Settings.model_fields}
    assert fields, "Settings has no fields"
    assert fields <= keys, f"missing from .env.example: {sorted(fields - keys)}"


def test_env_example_lists_no_unknown_setting() -> None:
    known = {name.upper() for name in Settings.model_fields} | {"DOCFLOW_ENV_FILE"}
    unknown = env_example_keys() - known
    assert not unknown, f".env.example names settings that do not exist: {sorted(unknown)}"
