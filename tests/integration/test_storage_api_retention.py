"""Retention's queued file deletions, drained against Supabase's real Storage API.

A user's documents are uploaded and processed with STORAGE_BACKEND=supabase on the real
server (the `storage_api` session fixture; docflow on the same database). Deleting the user
from auth.users cascades to the documents, whose trigger queues their files (the upload, its
text and its Markdown) in `storage_deletions`; `retention.run` then deletes them from the
server and forgets the queue rows.

The real server answers 200 `[]` to a removal that did nothing (a missing bucket, a key
without delete rights), as to one of objects already gone: `SupabaseStorage.delete_many`
asks about every name the answer does not list, so a queue row is only forgotten once its
object is gone.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from shared.documents import intake, pipeline
from shared.jobs.worker import Worker
from shared.ops import retention
from shared.platform.client import Database, get_db
from shared.platform.config import Settings
from shared.platform.errors import DocflowError
from shared.platform.storage import SupabaseStorage, get_storage
from tests.support.data import TEXT
from tests.support.storage_api import RealStorageApi
from tests.support.users import create_user


@pytest.fixture
def settings(real_storage: RealStorageApi, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return real_storage.use_in_docflow(monkeypatch)


@pytest.fixture
def db(settings: Settings) -> Database:
    return get_db()


@pytest.fixture
def storage(settings: Settings) -> SupabaseStorage:
    store = get_storage()
    assert isinstance(store, SupabaseStorage)
    return store


def user_with_a_document(
    api: RealStorageApi, db: Database, storage: SupabaseStorage, settings: Settings
) -> tuple[str, set[str]]:
    """A user whose document went through intake and the pipeline on the real server; the
    user's id and the document's three objects (upload, text, Markdown)."""
    user = create_user(api.database_url)
    created = intake.accept_upload(
        db, storage, settings, user, data=TEXT, filename="report.txt", priority=None,
        idempotency_key=None,
    )  # fmt: skip
    handler = pipeline.handler(db, storage, settings)
    Worker(db, settings, handler, concurrency=1, batch_size=1).drain(20, 60)
    with psycopg.connect(api.admin_database_url) as conn:
        row = conn.execute(
            "select d.storage_path, d.text_path, d.markdown_path, j.status "
            "from public.documents d join public.processing_jobs j on j.document_id = d.id "
            "where d.id = %s",
            (created["document_id"],),
        ).fetchone()
    assert row is not None and row[3] == "completed", row
    paths = {str(p) for p in row[:3]}
    assert all(api.object_row(path) is not None for path in paths)
    return user.user_id, paths


def delete_user(api: RealStorageApi, user_id: str) -> None:
    """What deleting a user in Supabase Auth does: the row goes, the documents cascade."""
    with psycopg.connect(api.admin_database_url, autocommit=True) as conn:
        conn.execute("delete from auth.users where id = %s", (user_id,))


def queued(api: RealStorageApi, paths: set[str]) -> set[str]:
    with psycopg.connect(api.admin_database_url) as conn:
        rows = conn.execute(
            "select object_path from public.storage_deletions where object_path = any(%s)",
            (list(paths),),
        ).fetchall()
    return {row[0] for row in rows}


def files_on_disk(api: RealStorageApi, user_id: str) -> list[Path]:
    """The server's file backend: the objects of this user's folder (a directory per object
    name, its versions inside)."""
    return [p for p in api.server.files_dir.rglob("*") if p.is_file() and user_id in str(p)]


def test_retention_deletes_the_queued_files_from_the_real_server(
    real_storage: RealStorageApi, db: Database, storage: SupabaseStorage, settings: Settings
) -> None:
    user_id, paths = user_with_a_document(real_storage, db, storage, settings)
    assert len(files_on_disk(real_storage, user_id)) >= 3
    delete_user(real_storage, user_id)
    assert queued(real_storage, paths) == paths

    report = retention.run(db, storage, settings)
    assert report["finished"] is True
    assert report["counts"]["stored_files"] >= len(paths)
    assert queued(real_storage, paths) == set()
    assert [real_storage.object_row(path) for path in paths] == [None] * len(paths)
    assert files_on_disk(real_storage, user_id) == []


def test_the_queue_rows_stay_while_the_server_is_down(
    real_storage: RealStorageApi, db: Database, storage: SupabaseStorage, settings: Settings
) -> None:
    user_id, paths = user_with_a_document(real_storage, db, storage, settings)
    delete_user(real_storage, user_id)

    with real_storage.stopped():
        report = retention.run(db, storage, settings)
    assert (report["finished"], report["counts"]["stored_files"]) == (False, 0)
    assert queued(real_storage, paths) == paths
    assert all(real_storage.object_row(path) is not None for path in paths)

    # The next run, with the server back, deletes the files and then the rows.
    report = retention.run(db, storage, settings)
    assert report["finished"] is True
    assert queued(real_storage, paths) == set()
    assert [real_storage.object_row(path) for path in paths] == [None] * len(paths)
    assert files_on_disk(real_storage, user_id) == []


def test_a_removal_that_does_nothing_keeps_the_queue_rows(
    real_storage: RealStorageApi, db: Database, storage: SupabaseStorage, settings: Settings
) -> None:
    """A wrong STORAGE_BUCKET: the server answers the removal 200 `[]`, as for objects that
    are already gone. The rows stay (retention reports `finished: false`) until a run with the
    right bucket deletes the files."""
    user_id, paths = user_with_a_document(real_storage, db, storage, settings)
    delete_user(real_storage, user_id)
    wrong = SupabaseStorage(real_storage.client(), f"no-such-bucket-{uuid.uuid4().hex[:8]}")

    report = retention.run(db, wrong, settings)
    assert (report["finished"], report["counts"]["stored_files"]) == (False, 0)
    assert queued(real_storage, paths) == paths
    assert all(real_storage.object_row(path) is not None for path in paths)

    report = retention.run(db, storage, settings)
    assert report["finished"] is True
    assert queued(real_storage, paths) == set()
    assert files_on_disk(real_storage, user_id) == []


# --- delete_many on the real server -------------------------------------------------------------


def test_delete_many_answers_for_each_name(
    real_storage: RealStorageApi, storage: SupabaseStorage
) -> None:
    folder = str(uuid.uuid4())
    present = [f"{folder}/{i}.txt" for i in range(3)]
    for name in present:
        storage.put(name, b"x", "text/plain")
    gone = f"{folder}/gone.txt"

    # Removed and already gone: no error, one answer lists what went.
    storage.delete_many([*present[:2], gone, gone])
    assert [storage.exists(name) for name in present] == [False, False, True]

    # The same names through a bucket that does not exist: 200 [] from the server, an error
    # here (the bucket's 404 when the name is asked about), and the object is still there.
    wrong = SupabaseStorage(real_storage.client(), f"no-such-bucket-{uuid.uuid4().hex[:8]}")
    with pytest.raises(DocflowError) as info:
        wrong.delete_many([present[2]])
    assert (type(info.value), info.value.code) == (DocflowError, "storage_error")
    with pytest.raises(DocflowError):
        wrong.delete(present[2])
    assert storage.exists(present[2]) is True

    # A key that may read but not delete (a user's, in their own folder: the migration gives
    # users no delete policy): 200 [] from the server, an error here, the object stays.
    alice = create_user(real_storage.database_url)
    own = f"{alice.user_id}/own.txt"
    storage.put(own, b"mine", "text/plain")
    as_alice = SupabaseStorage(real_storage.user_client(alice.token), "documents")
    assert as_alice.get(own) == b"mine"
    with pytest.raises(DocflowError) as info:
        as_alice.delete_many([own])
    assert (type(info.value), info.value.code) == (DocflowError, "storage_error")
    assert storage.exists(own) is True

    storage.delete(present[2])
    assert storage.exists(present[2]) is False
    storage.delete(present[2])  # gone already: no error
    # (The server down: StorageUnavailable, in test_storage_contract.py.)
