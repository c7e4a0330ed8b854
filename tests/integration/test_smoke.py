from tests.support.factories import create_upload


def test_upload_claim_complete(db, make_user):
    user = make_user()
    up = create_upload(db, user, data=b"abc", filename="a.txt", storage_path=f"{user.user_id}/obj")
    jobs = db.call("claim_jobs", worker_id="w1", max_jobs=5)
    assert [j["id"] for j in jobs] == [up["job_id"]]
    db.call("complete_job", job_id=up["job_id"], worker_id="w1", attempt=1, result={"words": 1})
    job = db.as_user(user).call("get_job", job_id=up["job_id"])
    assert job["status"] == "completed"
