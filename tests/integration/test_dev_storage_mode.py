"""`docflow serve --storage-api` decides what to do with the local database from two reads:
is the real Storage API's schema there, and does docflow hold documents in it."""

from __future__ import annotations

import uuid

from shared.dev import cli, localdb
from tests.support.storage_api import RealStorageApi


def test_a_database_docflow_has_not_migrated_has_no_documents_and_no_real_schema(
    pg_admin_url: str,
) -> None:
    name = f"bare_{uuid.uuid4().hex[:8]}"
    localdb.recreate_database(pg_admin_url, name, template="template0")
    try:
        url = localdb.url_for(pg_admin_url, name)
        assert cli._document_count(url) == 0
        assert cli._has_real_storage_schema(url) is False
    finally:
        localdb.drop_database(pg_admin_url, name)


def test_the_migrated_test_database_has_the_stand_in_schema(admin_database_url: str) -> None:
    assert cli._has_real_storage_schema(admin_database_url) is False
    assert cli._document_count(admin_database_url) == 0


def test_the_storage_api_database_has_the_real_schema(real_storage: RealStorageApi) -> None:
    assert cli._has_real_storage_schema(real_storage.admin_database_url) is True
