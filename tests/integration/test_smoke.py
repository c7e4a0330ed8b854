import hashlib


def test_upload_claim_complete(db, make_user):
    user = make_user()
    up = db.call(
        "create_upload",
        user_id=user.user_id,
        original_filename="a.txt",
        content_type="text/plain",
        size_bytes=3,
        sha256=hashlib.sha256(b"abc").hexdigest(),
        storage_path=f"{user.user_id}/obj",
    )
    jobs = db.call("claim_jobs", worker_id="w1", max_jobs=5)
    assert [j["id"] for j in jobs] == [up["job_id"]]
    db.call("complete_job", job_id=up["job_id"], worker_id="w1", attempt=1, result={"words": 1})
    job = db.as_user(user).call("get_job", job_id=up["job_id"])
    assert job["status"] == "completed"
