"""Refused uploads are visible to operators: each refusal of an authenticated upload records an
`upload_rejected` event (by `record_processing_event`, fire-and-forget) with its error code,
while no document, job or stored object is left behind."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.data import PNG, TEXT
from tests.support.http import assert_error, post_upload, stored_objects
from tests.support.rows import row_count


def _rejections(sql) -> list[tuple[str, str, int]]:
    return [
        (str(r[0]), r[1], int(r[2]))
        for r in sql.execute(
            "select user_id, error_message, (details ->> 'status')::int"
            "  from document_processing_events where event_type = 'upload_rejected' order by id"
        )
    ]


def test_each_refused_upload_records_its_reason(
    client_for: Callable, make_user: Callable, sql
) -> None:
    user = make_user()
    uploads = client_for("uploads")

    assert_error(post_upload(uploads, user, TEXT, "tool.exe"), 415, "extension_not_allowed")
    assert_error(post_upload(uploads, user, PNG, "photo.txt"), 415, "unsupported_content")
    assert_error(post_upload(uploads, user, b"", "empty.txt"), 400, "empty_file")
    assert_error(post_upload(uploads, user, TEXT, "report.txt", priority="urgent"), 422)

    rejections = _rejections(sql)
    assert [(code, status) for _, code, status in rejections] == [
        ("extension_not_allowed", 415),
        ("unsupported_content", 415),
        ("empty_file", 400),
        ("invalid_priority", 422),
    ]
    assert {uid for uid, _, _ in rejections} == {user.user_id}
    assert row_count(sql, "documents") == 0
    assert row_count(sql, "processing_jobs") == 0
    assert stored_objects() == []


def test_an_accepted_upload_and_an_unauthenticated_one_record_no_rejection(
    client_for: Callable, make_user: Callable, sql
) -> None:
    uploads = client_for("uploads")
    assert post_upload(uploads, make_user(), TEXT, "report.txt").status_code == 202
    assert_error(post_upload(uploads, "not-a-token", TEXT, "report.txt"), 401)
    assert _rejections(sql) == []
