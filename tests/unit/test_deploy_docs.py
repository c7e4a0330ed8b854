"""docs/deploy.md stays in step with the code it deploys.

- its `gcloud functions deploy` commands name exactly the targets of `functions.targets()`,
  each with its own entry point, and functions-framework loads each from `main.py`;
- the gateway config (`docs/gateway/firebase.json`, copied in the guide) sends every rewrite
  to a documented function, as `functions.ROUTES` does, and covers every user-facing route;
- its Cloud Scheduler commands call the scheduled functions on their own URL and route, with
  the scheduler secret and an OIDC token, and each route answers as a scheduled route.

Only the fenced `sh` and `json` blocks are read: those are the commands a reader pastes.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from functools import cache
from pathlib import Path
from typing import Any

import flask
import functions_framework
import pytest

import functions
from shared.platform.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_MD = REPO_ROOT / "docs" / "deploy.md"
FIREBASE_JSON = REPO_ROOT / "docs" / "gateway" / "firebase.json"
SCHEDULES = {"process_jobs": "* * * * *", "probe_health": "* * * * *"}
DAILY = re.compile(r"^[0-5]?\d (?:1?\d|2[0-3]) \* \* \*$")  # minute hour * * *


def blocks(language: str) -> list[str]:
    text = DEPLOY_MD.read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


@cache
def commands() -> tuple[str, ...]:
    """Every line of the guide's sh blocks, with continuation lines joined."""
    lines: list[str] = []
    for block in blocks("sh"):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [line.strip() for line in joined.splitlines() if line.strip()]
    return tuple(lines)


def argv_of(prefix: str) -> list[list[str]]:
    return [shlex.split(line) for line in commands() if line.startswith(prefix + " ")]


def option(argv: list[str], flag: str) -> str | None:
    """The value of `--flag VALUE` (or `--flag=VALUE`), None when the flag is absent."""
    for i, arg in enumerate(argv):
        if arg == flag:
            assert i + 1 < len(argv), f"{flag} has no value in {argv}"
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def seconds(value: str | None) -> int:
    assert value is not None and re.fullmatch(r"\d+s", value), value
    return int(value[:-1])


@cache
def deploys() -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for argv in argv_of("gcloud functions deploy"):
        name = argv[3]
        assert name not in found, f"{name} is deployed twice in docs/deploy.md"
        found[name] = tuple(argv)
    return found


def deployed(name: str) -> list[str]:
    return list(deploys()[name])


def private_functions() -> set[str]:
    return {name for name, argv in deploys().items() if "--no-allow-unauthenticated" in argv}


def rewrites() -> list[dict[str, Any]]:
    config = json.loads(FIREBASE_JSON.read_text())
    found: list[dict[str, Any]] = config["hosting"]["rewrites"]
    return found


def first_segment(source: str) -> str:
    match = re.fullmatch(r"/([a-z_]+)(?:/\*\*)?", source)
    assert match, f"unexpected rewrite source {source!r}"
    return match.group(1)


def url_variables() -> dict[str, str]:
    """`VAR=$(gcloud functions describe NAME …)` assignments: VAR -> NAME."""
    found: dict[str, str] = {}
    for line in commands():
        match = re.match(r"(\w+)=\$\(gcloud functions describe (\w+) ", line)
        if match:
            var, name = match.groups()
            assert found.setdefault(var, name) == name, f"${var} names two functions"
            assert "serviceConfig.uri" in line, line
    return found


def scheduler_jobs() -> dict[str, list[str]]:
    """The Cloud Scheduler jobs, by the function they call."""
    variables = url_variables()
    found: dict[str, list[str]] = {}
    for argv in argv_of("gcloud scheduler jobs create http"):
        uri = option(argv, "--uri")
        assert uri is not None, argv
        match = re.fullmatch(r"\$(\w+)(/.*)", uri)
        assert match, f"--uri {uri!r} is not $URL/route"
        var, path = match.groups()
        assert var in variables, f"${var} is not set from `gcloud functions describe`"
        name = variables[var]
        assert name not in found, f"{name} is scheduled twice"
        assert option(argv, "--oidc-token-audience") == f"${var}", argv
        found[name] = [*argv, "--x-path", path]
    return found


def load(target: str, monkeypatch: pytest.MonkeyPatch) -> flask.Flask:
    monkeypatch.chdir(REPO_ROOT)  # the deploy's --source . is the repository root
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader appends the source dir
    app: flask.Flask = functions_framework.create_app(  # type: ignore[no-untyped-call]
        target=target, source="main.py"
    )
    return app


# --- the deploy commands ---------------------------------------------------------------------


def test_the_guide_deploys_exactly_the_targets() -> None:
    assert deploys(), "docs/deploy.md has no `gcloud functions deploy` command"
    assert set(deploys()) == set(functions.targets()), {
        "documented only": sorted(set(deploys()) - set(functions.targets())),
        "not documented": sorted(set(functions.targets()) - set(deploys())),
    }


@pytest.mark.parametrize("name", sorted(deploys()))
def test_each_deploy_command_is_complete(name: str) -> None:
    argv = deployed(name)
    assert option(argv, "--entry-point") == name  # main.py exports the target by its name
    assert "--gen2" in argv and "--trigger-http" in argv
    assert option(argv, "--runtime") == "python311"
    assert option(argv, "--source") == "."
    assert option(argv, "--region") is not None
    assert option(argv, "--service-account") is not None
    assert re.fullmatch(r"\d+(Mi|Gi)", option(argv, "--memory") or ""), argv
    seconds(option(argv, "--timeout"))
    assert option(argv, "--set-secrets"), argv
    env_file = option(argv, "--env-vars-file")
    assert env_file, argv
    text = DEPLOY_MD.read_text()
    assert env_file == "docflow-env.yaml" or re.search(
        rf"(?:>|cp \S+) {re.escape(env_file)}\n", text
    ), f"docs/deploy.md never writes {env_file}"
    assert ("--allow-unauthenticated" in argv) != ("--no-allow-unauthenticated" in argv)


@pytest.mark.parametrize("name", sorted(deploys()))
def test_functions_framework_loads_each_documented_entry_point(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_point = option(deployed(name), "--entry-point")
    assert entry_point is not None
    app = load(entry_point, monkeypatch)
    response = app.test_client().get("/__no_such_route__")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "route_not_found"
    assert getattr(sys.modules["main"], entry_point) is functions.targets()[name]


def test_budgets_fit_within_the_timeouts() -> None:
    text = DEPLOY_MD.read_text()
    process_timeout = seconds(option(deployed("process_jobs"), "--timeout"))
    assert Settings.model_fields["process_max_seconds"].default < process_timeout
    match = re.search(r'^RETENTION_MAX_SECONDS: "(\d+)"$', text, flags=re.MULTILINE)
    assert match, "the retention env file sets no RETENTION_MAX_SECONDS"
    retention_timeout = seconds(option(deployed("retention"), "--timeout"))
    assert retention_timeout == 540
    assert int(match.group(1)) < retention_timeout


# --- the gateway -----------------------------------------------------------------------------


def test_the_guide_shows_the_shipped_gateway_config() -> None:
    (shown,) = [json.loads(b) for b in blocks("json") if '"rewrites"' in b]
    assert shown == json.loads(FIREBASE_JSON.read_text())


def test_every_rewrite_goes_to_a_documented_public_function() -> None:
    assert rewrites()
    for rewrite in rewrites():
        service = rewrite["run"]["serviceId"]
        assert service in deploys(), f"{rewrite['source']} goes to undocumented {service}"
        assert "--allow-unauthenticated" in deployed(service), service
        assert functions.ROUTES[first_segment(rewrite["source"])] == service, rewrite


def test_every_user_facing_route_is_behind_the_gateway() -> None:
    scheduled = private_functions()
    assert scheduled, "no function is deployed private"
    user_facing = {seg for seg, target in functions.ROUTES.items() if target not in scheduled}
    assert {first_segment(r["source"]) for r in rewrites()} == user_facing
    assert not {r["run"]["serviceId"] for r in rewrites()} & scheduled


# --- the schedules ---------------------------------------------------------------------------


def test_every_private_function_is_scheduled_once() -> None:
    assert set(scheduler_jobs()) == private_functions() == {*SCHEDULES, "retention"}


@pytest.mark.parametrize("name", sorted(scheduler_jobs()))
def test_each_schedule_calls_its_scheduled_route(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = scheduler_jobs()[name]
    path = option(argv, "--x-path")
    assert path == f"/{name}" and functions.ROUTES[name] == name
    schedule = option(argv, "--schedule")
    assert schedule is not None
    if name in SCHEDULES:
        assert schedule == SCHEDULES[name]
    else:
        assert DAILY.fullmatch(schedule), f"{name} is not daily: {schedule!r}"
    assert option(argv, "--http-method") == "POST"
    headers = option(argv, "--headers") or ""
    assert re.search(r"(?:^|,)X-Scheduler-Secret=\$SCHEDULER_SECRET(?:,|$)", headers), headers
    assert "Content-Type=application/json" in headers
    assert option(argv, "--oidc-service-account-email"), argv
    body = json.loads(option(argv, "--message-body") or "")
    assert isinstance(body, dict)
    if name == "retention":
        assert body == {"dry_run": False}
    # The scheduler waits at least as long as the function may run.
    timeout = seconds(option(deployed(name), "--timeout"))
    assert seconds(option(argv, "--attempt-deadline")) >= timeout

    # The route exists and is a scheduled one: without the secret it answers 401.
    client = load(name, monkeypatch).test_client()
    for headers_sent in ({}, {"X-Scheduler-Secret": "wrong-secret"}):
        response = client.post(path, json=body, headers=headers_sent)
        assert response.status_code == 401, (path, response.get_data(as_text=True))
        assert response.get_json()["error"]["code"] == "invalid_scheduler_secret"
