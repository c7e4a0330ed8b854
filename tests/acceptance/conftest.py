"""Acceptance fixtures: each function built the way Cloud Functions builds it.

`client_for("uploads")` loads `main.py` through functions-framework's own `create_app` (the
same loader as `functions-framework --target uploads`) and returns Flask's test client for it;
`server_client` is the one-port app of `docflow serve`. Both depend on `db`, so DATABASE_URL
already points at this test's fresh, migrated database when the functions start. (Storage
follows this test's STORAGE_DIR: tests/conftest.py drops every cache around each test.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from shared.platform.client import Database
from tests.support.http import load_target


@pytest.fixture
def client_for(db: Database) -> Callable[[str], FlaskClient]:
    """A test client of one deployable target, loaded from main.py by functions-framework."""
    clients: dict[str, FlaskClient] = {}

    def build(target: str) -> FlaskClient:
        if target not in clients:
            clients[target] = load_target(target)
        return clients[target]

    return build


@pytest.fixture
def server_client(db: Database) -> FlaskClient:
    """A test client of the one-port app (`docflow serve`)."""
    from shared.dev.server import create_app

    return create_app().test_client()


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """`shared.dev.cli.main` configures the `docflow` logger; put it back afterwards."""
    docflow = logging.getLogger("docflow")
    saved = (docflow.handlers[:], docflow.level, docflow.propagate)
    yield
    docflow.handlers[:], docflow.level, docflow.propagate = saved
