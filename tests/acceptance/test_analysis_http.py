"""Analysis templates end to end over HTTP (issue 16): `GET /templates`, the template of an
upload and of a reanalysis, the `analysis` of the job result with the offline extractor and
with an LLM (respx), and the per-template reanalyze interval. Every value in `fields` must
quote the document: the check here is independent of the extractor's own grounding (a plain
look-up in the served Markdown with markup and white space collapsed)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import respx
from flask.testing import FlaskClient

from tests.support.data import SAMPLES
from tests.support.env import configure
from tests.support.http import ClientFor, assert_error, post_upload, process_jobs, uploaded
from tests.support.rows import row_count
from tests.support.tokens import bearer
from tests.support.users import MakeUser


def _plain(text: str) -> str:
    text = re.sub(r"<!--.*?-->|[*_`|#>\\]", " ", text)
    return " ".join(text.split()).casefold()


def _values(fields: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for value in fields.values():
        out += value if isinstance(value, list) else ([value] if value else [])
    return out


def _upload(client_for: ClientFor, user: Any, name: str, **form: str) -> dict[str, Any]:
    data = (SAMPLES / name).read_bytes()
    return uploaded(client_for("uploads"), user, data, name, form=form or None)  # type: ignore[no-any-return]


def _result(http: FlaskClient, user: Any, job_id: str) -> dict[str, Any]:
    job = http.get(f"/jobs/{job_id}", headers=bearer(user)).get_json()
    assert job["status"] == "completed", job
    return job["result"]  # type: ignore[no-any-return]


def test_templates_are_listed_with_their_json_schema(
    client_for: ClientFor, make_user: MakeUser
) -> None:
    response = client_for("jobs").get("/templates", headers=bearer(make_user()))
    assert response.status_code == 200
    body = response.get_json()
    assert body["default"] == "document_brief"
    by_name = {t["name"]: t for t in body["templates"]}
    assert set(by_name) == {"document_brief", "financial"}
    brief = by_name["document_brief"]["schema"]
    assert {"dates", "amounts", "percentages", "organizations", "risks"} <= set(brief["properties"])
    assert {"revenue", "ebitda", "net_income", "headcount"} <= set(
        by_name["financial"]["schema"]["properties"]
    )
    # Every value model requires its evidence.
    for template in by_name.values():
        for name, model in template["schema"]["$defs"].items():
            if name != "Evidence":
                assert "evidence" in model["required"], (template["name"], name)


def test_each_upload_is_analysed_with_its_template_and_every_value_quotes_the_document(
    client_for: ClientFor, make_user: MakeUser
) -> None:
    user = make_user()
    brief = _upload(client_for, user, "annual-report.pdf")  # default template
    financial = _upload(client_for, user, "annual-report.pdf", template="financial")
    csv = _upload(client_for, user, "sales-q3.csv", template="document_brief")
    report = process_jobs(client_for("process_jobs")).get_json()
    assert report["completed"] == 3, report

    http = client_for("jobs")
    markdown = http.get(
        f"/documents/{brief['document_id']}/markdown", headers=bearer(user)
    ).get_data(as_text=True)
    plain = _plain(markdown)

    got = _result(http, user, brief["job_id"])["analysis"]
    assert got["template"] == "document_brief"
    fields = got["fields"]
    amounts = {(a["currency"], a["value"], a["scale"]) for a in fields["amounts"]}
    assert ("EUR", 48.2, "million") in amounts
    assert 14 in {p["value"] for p in fields["percentages"]}
    for value in _values(fields):
        evidence = value["evidence"]
        assert _plain(evidence["quote"]) in plain, value
        assert evidence["page"] in {1, 2, 3, 4}, value
    # The page is the page the quote is on.
    (revenue,) = [a for a in fields["amounts"] if a["value"] == 48.2]
    assert revenue["evidence"]["page"] == 1
    assert revenue["evidence"]["section"] == "Page 1: Overview"

    got = _result(http, user, financial["job_id"])["analysis"]
    assert got["template"] == "financial"
    assert set(got["fields"]) >= {"company", "revenue", "growth_rates", "headcount"}
    revenue_values = {(m["currency"], m["value"], m["scale"]) for m in got["fields"]["revenue"]}
    assert ("EUR", 48.2, "million") in revenue_values
    for value in _values(got["fields"]):
        assert _plain(value["evidence"]["quote"]) in plain, value

    result = _result(http, user, csv["job_id"])
    assert result["analysis"]["template"] == "document_brief"
    assert "rows" in result["summary"] and "columns" in result["summary"]


def test_an_unknown_template_is_refused_before_anything_is_created(
    client_for: ClientFor, make_user: MakeUser, sql: Any
) -> None:
    user = make_user()
    before = row_count(sql, "documents")
    response = post_upload(client_for("uploads"), user, form={"template": "horoscope"})
    body = assert_error(response, 422, "unknown_template")
    assert "document_brief" in body["message"]
    assert row_count(sql, "documents") == before

    done = _upload(client_for, user, "quarterly-report.txt")
    process_jobs(client_for("process_jobs"))
    http = client_for("jobs")
    path = f"/documents/{done['document_id']}/reanalyze"
    assert_error(http.post(path, json={"template": "horoscope"}, headers=bearer(user)), 422)
    assert_error(http.post(path, json={"template": 7}, headers=bearer(user)), 422)


def test_reanalyze_switches_templates_and_limits_each_once_an_interval(
    client_for: ClientFor, make_user: MakeUser
) -> None:
    user = make_user()
    done = _upload(client_for, user, "annual-report.pdf")
    process_jobs(client_for("process_jobs"))
    http = client_for("jobs")
    path = f"/documents/{done['document_id']}/reanalyze"

    first = http.post(path, json={"template": "financial"}, headers=bearer(user))
    assert first.status_code == 202, first.get_data(as_text=True)
    process_jobs(client_for("process_jobs"))
    assert _result(http, user, first.get_json()["job_id"])["analysis"]["template"] == "financial"

    again = http.post(path, json={"template": "financial"}, headers=bearer(user))
    assert_error(again, 429, "reanalyze_too_soon")
    # Another template is not held back by the first; no body means the default template.
    other = http.post(path, headers=bearer(user))
    assert other.status_code == 202, other.get_data(as_text=True)
    process_jobs(client_for("process_jobs"))
    result = _result(http, user, other.get_json()["job_id"])
    assert result["analysis"]["template"] == "document_brief"
    assert_error(http.post(path, headers=bearer(user)), 429, "reanalyze_too_soon")


def test_the_financial_template_through_an_llm_over_http(
    client_for: ClientFor, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anthropic fills `financial` by tool use (respx stands in for the API): grounded values
    are kept with their page and section, a figure whose quote is not in the document and a
    value that breaks the schema (after the one retry with the errors) go to `unverified`."""
    configure(monkeypatch, SUMMARIZER="anthropic", ANTHROPIC_API_KEY="sk-ant-test-never-logged")
    user = make_user()
    job = _upload(client_for, user, "annual-report.pdf", template="financial")
    fields = {
        "company": {"value": "Fernhill Instruments",
                    "evidence": {"quote": "Fernhill Instruments had its strongest year"}},
        "revenue": [
            {"value": 48.2, "currency": "EUR", "scale": "million", "period": "2026",
             "text": "48.2 million euros",
             "evidence": {"quote": "Revenue reached 48.2 million euros"}},
            {"value": 52.0, "currency": "EUR", "scale": "million", "period": "2027",
             "text": "52 million euros",
             "evidence": {"quote": "revenue will reach 52 million euros"}},
        ],
        "headcount": [{"value": 247, "text": "247",
                       "evidence": {"quote": "Headcount grew from 212 to 247"}},
                      {"value": -3, "text": "minus three",
                       "evidence": {"quote": "Headcount grew from 212 to 247"}}],
    }  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        usage = {"input_tokens": 1000, "output_tokens": 100}
        if "tools" in body:
            assert body["tool_choice"]["type"] == "tool"
            block = {"type": "tool_use", "id": "t1", "name": body["tools"][0]["name"],
                     "input": fields}  # fmt: skip
            return httpx.Response(200, json={"content": [block], "usage": usage})
        text = json.dumps({"summary": "A strong year.", "key_points": ["Revenue 48.2m"]})
        return httpx.Response(
            200, json={"content": [{"type": "text", "text": text}], "usage": usage}
        )

    with respx.mock(assert_all_called=True) as mock:
        mock.post("https://api.anthropic.com/v1/messages").side_effect = answer
        report = process_jobs(client_for("process_jobs")).get_json()
    assert report["completed"] == 1, report
    result = _result(client_for("jobs"), user, job["job_id"])
    analysis = result["analysis"]
    assert analysis["template"] == "financial"
    got = analysis["fields"]
    assert got["company"]["value"] == "Fernhill Instruments"
    assert got["company"]["evidence"]["page"] == 1
    (revenue,) = got["revenue"]
    assert (revenue["value"], revenue["currency"], revenue["scale"]) == (48.2, "EUR", "million")
    assert revenue["evidence"] == {
        "quote": "Revenue reached 48.2 million euros",
        "page": 1,
        "section": "Page 1: Overview",
    }
    assert [h["value"] for h in got["headcount"]] == [247]
    assert got["headcount"][0]["evidence"]["page"] == 3
    reasons = sorted((u["field"], u["reason"]) for u in analysis["unverified"])
    assert reasons == [("headcount", "invalid"), ("revenue", "quote_not_found")]
    # The invalid headcount made the extractor ask once more (same answer): 3 requests.
    assert (result["input_tokens"], result["requests"]) == (3000, 3)


def test_the_demo_samples_have_clean_key_points_and_an_analysis(
    client_for: ClientFor, make_user: MakeUser
) -> None:
    """What `make demo` prints for each sample: key points without the annual report's page
    footer ("Fernhill Instruments - Annual Report 2026 - page 1 of 4") or Markdown markup."""
    user = make_user()
    names = sorted(p.name for p in SAMPLES.iterdir() if p.is_file() and p.suffix != ".py")
    jobs = {name: _upload(client_for, user, name)["job_id"] for name in names}
    report = process_jobs(client_for("process_jobs")).get_json()
    assert report["completed"] == len(jobs), report
    http = client_for("jobs")
    markup = re.compile(r"^\s*(?:#|[-*+] |\d+[.)] |>)|\|.*\||\]\(|<[a-z/!]|```|\*\*")
    for name, job_id in jobs.items():
        result = _result(http, user, job_id)
        assert result["analysis"]["template"] == "document_brief", name
        points = result["key_points"]
        assert points, name
        for point in [*points, result["summary"]]:
            assert "page 1 of 4" not in point.lower() and "Annual Report 2026 -" not in point
            assert not markup.search(point), (name, point)
