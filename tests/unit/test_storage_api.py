"""shared/dev/storage_api.py without building or starting anything: where the source comes
from, the cache key, the reuse of a finished build, the API keys, and the test fixture's skip
(a failure under CI=true)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import jwt
import pytest

from shared.dev import storage_api
from shared.platform.errors import ConfigError
from tests.support import storage_api as support

SECRET = "test-jwt-secret-that-is-long-enough-0123456789"


def _tarball(path: Path, files: dict[str, str], prefix: str = "") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


SOURCE = {"package.json": "{}", "migrations/tenant/0001-initialmigration.sql": "select 1"}


@pytest.fixture
def no_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No bundled tarball and no STORAGE_API_SRC."""
    tools = tmp_path / "tools"
    tools.mkdir()
    monkeypatch.setattr(storage_api, "default_source_dir", lambda: tools)
    monkeypatch.delenv(storage_api.SOURCE_ENV, raising=False)
    return tools


def test_the_source_is_the_bundled_tarball_by_default(no_default: Path) -> None:
    assert storage_api.find_source() is None
    tarball = _tarball(no_default / "supabase-storage-abc1234.tar.gz", SOURCE)
    assert storage_api.find_source() == tarball


def test_storage_api_src_names_a_directory_or_a_tarball(
    no_default: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(storage_api.SOURCE_ENV, str(tmp_path))
    assert storage_api.find_source() == tmp_path
    monkeypatch.setenv(storage_api.SOURCE_ENV, str(tmp_path / "missing.tar.gz"))
    with pytest.raises(ConfigError, match="STORAGE_API_SRC"):
        storage_api.find_source()


def test_the_cache_key_follows_the_contents(tmp_path: Path) -> None:
    one = _tarball(tmp_path / "one.tar.gz", SOURCE)
    same = tmp_path / "same.tar.gz"
    same.write_bytes(one.read_bytes())
    other = _tarball(tmp_path / "other.tar.gz", {**SOURCE, "package.json": '{"v": 2}'})
    assert storage_api.source_key(one) == storage_api.source_key(same)
    assert storage_api.source_key(one) != storage_api.source_key(other)

    tree = tmp_path / "tree"
    (tree / "node_modules").mkdir(parents=True)
    (tree / "package.json").write_text("{}")
    key = storage_api.source_key(tree)
    (tree / "node_modules" / "x.js").write_text("ignored")  # a build in place changes nothing
    assert storage_api.source_key(tree) == key
    (tree / "package.json").write_text('{"v": 2}')
    assert storage_api.source_key(tree) != key


@pytest.mark.parametrize("prefix", ["", "storage-4fa61fb/"])
def test_a_tarball_is_extracted_with_or_without_a_top_directory(
    tmp_path: Path, prefix: str
) -> None:
    tarball = _tarball(tmp_path / "src.tar.gz", SOURCE, prefix)
    storage_api._extract(tarball, tmp_path / "out")
    assert (tmp_path / "out" / "package.json").read_text() == "{}"
    assert (tmp_path / "out" / "migrations" / "tenant").is_dir()


def test_a_tarball_of_something_else_is_refused(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "src.tar.gz", {"README": "hello"})
    with pytest.raises(ConfigError, match="not the source of supabase/storage"):
        storage_api._extract(tarball, tmp_path / "out")


def test_a_finished_build_is_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = _tarball(tmp_path / "src.tar.gz", SOURCE)
    cache = tmp_path / "cache"
    monkeypatch.setattr(storage_api, "cache_root", lambda: cache)
    root = cache / storage_api.source_key(source)
    root.mkdir(parents=True)
    node = tmp_path / "node"
    node.write_text("")
    (root / storage_api.MARKER).write_text(json.dumps({"node": str(node)}))

    def no_build(cache: Path) -> Path:
        raise AssertionError("a finished build must not be built again")

    monkeypatch.setattr(storage_api, "find_node", no_build)
    built = storage_api.build(source)
    assert (built.root, built.node, built.src) == (root, node, root / "src")


def test_api_keys_are_hs256_jwts_of_the_role() -> None:
    for role in ("anon", "service_role"):
        claims = jwt.decode(storage_api.api_key(SECRET, role), SECRET, algorithms=["HS256"])
        assert claims["role"] == role
        assert claims["exp"] > claims["iat"]


def test_the_storage_admin_url_is_a_url_for_node() -> None:
    admin = "postgresql://supabase_admin:postgres@127.0.0.1:54329/postgres"
    assert storage_api.storage_admin_url(admin, "storage_x") == (
        "postgresql://supabase_storage_admin:postgres@127.0.0.1:54329/storage_x"
    )


@pytest.mark.parametrize(("ci", "outcome"), [(None, "skipped"), ("true", "failed")])
def test_without_the_source_the_fixture_skips_but_fails_under_ci(
    no_default: Path, monkeypatch: pytest.MonkeyPatch, ci: str | None, outcome: str
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    expected = pytest.skip.Exception if outcome == "skipped" else pytest.fail.Exception
    with pytest.raises(expected, match="no Storage API source"):
        next(support.start_storage_api("postgresql://unused", Path("/nonexistent"), SECRET))
