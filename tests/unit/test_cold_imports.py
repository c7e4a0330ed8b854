"""Cold start: each deployable function loads only what its routes and the settings need.

Each case runs in a fresh interpreter (a module, once imported, stays in `sys.modules`), with
the tests' environment. It loads the target the way functions-framework does (`import main`,
then `main.<target>`: the function's module is imported and the App started) and lists which
of the heavy optional libraries are in `sys.modules` afterwards. Module presence, not timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import functions

REPO_ROOT = Path(__file__).resolve().parents[2]
SUPABASE = ("supabase", "postgrest", "storage3")
PARSERS = ("pypdfium2", "docx", "lxml", "selectolax", "pypdf", "pdfminer")
WATCHED = (*SUPABASE, *PARSERS, "httpx", "rich")
# The request-serving functions: never the supabase client (DB_TRANSPORT=postgres,
# STORAGE_BACKEND=local) nor a document parser (those run in the processing path only).
REQUEST_FUNCTIONS = ("uploads", "jobs", "admin")


def loaded_after(code: str, **env: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter; which of WATCHED it left in sys.modules."""
    script = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps({{m: sys.modules.get(m) is not None for m in {list(WATCHED)!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_import_main_loads_no_function_and_no_optional_library() -> None:
    loaded = loaded_after(
        "import sys, main\nassert not any(m.startswith('functions.') for m in sys.modules)"
    )
    assert not any(loaded.values()), loaded


@pytest.mark.parametrize("target", functions.TARGETS)
def test_no_function_loads_supabase_with_postgres_and_local_storage(target: str) -> None:
    loaded = loaded_after(f"import main\nmain.{target}")
    assert not any(loaded[m] for m in SUPABASE), loaded
    # also when the function's module is imported directly (as `docflow serve` does)
    direct = loaded_after(f"import functions.{target}")
    assert not any(direct[m] for m in SUPABASE), direct


@pytest.mark.parametrize("target", functions.TARGETS)
def test_no_function_needs_the_clis_terminal_library(target: str) -> None:
    """rich draws `docflow upload` and `docflow analytics` (the `cli` extra). A deployment
    installs requirements.txt, which leaves it out: every function loads without it. (Where
    rich is installed, as in this venv, `import httpx` loads it: httpx's own CLI.)"""
    loaded = loaded_after(f"import sys\nsys.modules['rich'] = None\nimport main\nmain.{target}")
    assert loaded["rich"] is False
    assert "rich" not in (REPO_ROOT / "requirements.txt").read_text()


@pytest.mark.parametrize("target", REQUEST_FUNCTIONS)
def test_request_functions_load_no_document_parser(target: str) -> None:
    loaded = loaded_after(f"import main\nmain.{target}")
    assert not any(loaded[m] for m in (*SUPABASE, *PARSERS)), loaded


@pytest.mark.parametrize("target", ("uploads", "jobs"))
def test_user_functions_load_no_http_client_without_a_jwks(target: str) -> None:
    """httpx is for the JWKS, REST and Supabase Storage; HS256 tokens need none of them."""
    assert loaded_after(f"import main\nmain.{target}")["httpx"] is False


def test_rest_transport_and_supabase_storage_are_loaded_at_start() -> None:
    """With DB_TRANSPORT=rest and STORAGE_BACKEND=supabase, supabase-py is paid for when the
    target is looked up (functions-framework's start-up), not by the first request."""
    env = {
        "DB_TRANSPORT": "rest",
        "STORAGE_BACKEND": "supabase",
        "SUPABASE_URL": "http://127.0.0.1:54321",
        "SUPABASE_SERVICE_ROLE_KEY": "test-service-role-key-long-enough-0123456789",
        "JWKS_URL": "http://127.0.0.1:54321/auth/v1/.well-known/jwks.json",
    }
    before = loaded_after("import main", **env)
    assert not any(before.values()), before
    after = loaded_after("import main\nmain.jobs", **env)
    assert all(after[m] for m in SUPABASE) and after["httpx"], after
    assert not any(after[m] for m in PARSERS), after
