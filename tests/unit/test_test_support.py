"""Test modules share helpers through tests/support only: none imports another test module.

Every `tests/**/*.py` is parsed with `ast`; an import that names a module under tests/ must
name one of tests/support (or the `tests` package itself). Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.data import REPO_ROOT

TESTS = REPO_ROOT / "tests"
SUPPORT = TESTS / "support"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every module `source` (the text of `module`) imports: relative
    imports resolved, and `from package import name` counted as `package.name` too (the name
    may be a module)."""
    package = module.rsplit(".", 1)[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                parent = ".".join([*base, *([node.module] if node.module else [])])
            else:
                parent = node.module or ""
            found.append((node.lineno, parent))
            found.extend((node.lineno, f"{parent}.{alias.name}") for alias in node.names)
    return found


def bare_names() -> set[str]:
    """The names a test module or conftest under tests/ can be imported by without a package:
    pytest puts a test folder that has no __init__.py on sys.path."""
    return {
        path.stem
        for path in TESTS.rglob("*.py")
        if not path.is_relative_to(SUPPORT) and path.stem != "__init__"
    }


def offending(source: str, module: str, bare: set[str]) -> list[str]:
    """The imports of modules under tests/ that are not tests/support (one per statement)."""
    problems: dict[int, str] = {}
    for line, name in imported_modules(source, module):
        if name == "tests" or name == "tests.support" or name.startswith("tests.support."):
            continue
        if name.startswith("tests.") or name in bare:
            problems.setdefault(line, f"{module}:{line} imports {name}")
    return list(problems.values())


def test_no_test_module_imports_another() -> None:
    bare = bare_names()
    problems = [
        problem
        for path in sorted(TESTS.rglob("*.py"))
        for problem in offending(path.read_text(encoding="utf-8"), module_name(path), bare)
    ]
    assert problems == [], "import shared helpers from tests/support:\n" + "\n".join(problems)


def test_support_is_a_package() -> None:
    assert (SUPPORT / "__init__.py").is_file()


@pytest.mark.parametrize(
    "source",
    [
        "from tests.acceptance.test_skeleton import bearer",
        "import tests.integration.test_queue_sql",
        "from tests.unit import sandbox_targets",
        "from .test_skeleton import upload",
        "from . import test_skeleton",
        "from .conftest import client_for",
        "from test_queue_sql import upload",
        "def helper():\n    from tests.acceptance.conftest import client_for",
    ],
)
def test_the_check_sees_each_way_of_importing_a_test_module(source: str) -> None:
    bare = {"test_queue_sql", "conftest"}
    assert offending(source, "tests.acceptance.test_probe", bare)


@pytest.mark.parametrize(
    "source",
    [
        "from tests.support.http import assert_error",
        "from tests.support import factories",
        "import tests.support.queue",
        "import queue\nimport pytest\nfrom http.server import ThreadingHTTPServer",
        "from shared.platform import auth",
    ],
)
def test_the_check_lets_support_and_other_packages_through(source: str) -> None:
    assert offending(source, "tests.acceptance.test_probe", bare_names()) == []
