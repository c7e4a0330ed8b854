"""shared.platform.auth: access-token verification, bearer parsing, the scheduler secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest

from shared.platform.auth import (
    authenticate,
    bearer_token,
    check_scheduler_secret,
    mint_token,
    require_admin,
    verify_token,
)
from shared.platform.client import UserContext
from shared.platform.config import Settings, get_settings
from shared.platform.errors import Forbidden, Unauthorized
from tests.support.env import configure
from tests.support.tokens import b64url, hand_signed, rejected, token_claims

OTHER_SECRET = "another-secret-that-is-also-long-enough-9876543210"


@pytest.fixture
def settings() -> Settings:
    return get_settings()


def _secret(settings: Settings) -> str:
    return settings.supabase_jwt_secret.get_secret_value()


def _encode(claims: dict[str, Any], key: str) -> str:
    return jwt.encode(claims, key, algorithm="HS256")


# --- round trip -----------------------------------------------------------------------------


def test_mint_then_verify_round_trip(settings: Settings) -> None:
    user_id = str(uuid.uuid4())
    token = mint_token(settings, user_id, email="ada@example.test")
    user = verify_token(token, settings)
    assert isinstance(user, UserContext)
    assert user.token == token
    assert user.user_id == user_id
    assert user.claims["sub"] == user_id
    assert user.claims["aud"] == "authenticated"
    assert user.claims["role"] == "authenticated"
    assert user.claims["email"] == "ada@example.test"
    assert user.claims["exp"] > user.claims["iat"]
    assert "iss" not in user.claims
    assert user.is_admin is False


def test_admin_token_is_admin(settings: Settings) -> None:
    user = verify_token(mint_token(settings, str(uuid.uuid4()), admin=True), settings)
    assert user.is_admin is True
    assert user.claims["app_metadata"]["role"] == "admin"
    require_admin(user)  # does not raise


def test_non_admin_is_refused_by_require_admin(settings: Settings) -> None:
    user = verify_token(mint_token(settings, str(uuid.uuid4())), settings)
    with pytest.raises(Forbidden) as info:
        require_admin(user)
    assert info.value.code == "admin_required"
    assert info.value.status == 403


def test_admin_role_in_user_metadata_does_not_count(settings: Settings) -> None:
    # user_metadata is writable by the user; only app_metadata is trusted.
    token = mint_token(
        settings, str(uuid.uuid4()), extra={"user_metadata": {"role": "admin"}, "is_admin": True}
    )
    user = verify_token(token, settings)
    assert user.is_admin is False


@pytest.mark.parametrize("app_metadata", [None, "admin", ["admin"], {"role": "Admin"}])
def test_odd_app_metadata_is_not_admin(settings: Settings, app_metadata: object) -> None:
    claims = token_claims()
    claims["app_metadata"] = app_metadata
    user = verify_token(_encode(claims, _secret(settings)), settings)
    assert user.is_admin is False


def test_token_without_role_claim_is_accepted(settings: Settings) -> None:
    claims = token_claims()
    del claims["role"]
    assert verify_token(_encode(claims, _secret(settings)), settings).user_id == claims["sub"]


def test_expired_within_leeway_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = configure(monkeypatch, JWT_LEEWAY_SECONDS=300)
    claims = token_claims(exp=int(time.time()) - 60)
    assert verify_token(_encode(claims, _secret(settings)), settings).user_id == claims["sub"]


# --- rejections -----------------------------------------------------------------------------


def test_alg_none_is_rejected(settings: Settings) -> None:
    token = hand_signed({"alg": "none", "typ": "JWT"}, token_claims(), None)
    assert rejected(token, settings).code == "invalid_token"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_spellings_with_a_signature_are_rejected(settings: Settings, alg: str) -> None:
    token = hand_signed({"alg": alg, "typ": "JWT"}, token_claims(), _secret(settings))
    assert rejected(token, settings).code == "invalid_token"


def test_hs512_with_the_right_secret_is_rejected(settings: Settings) -> None:
    token = hand_signed({"alg": "HS512", "typ": "JWT"}, token_claims(), _secret(settings))
    # Sanity: the token really is valid HS512 under this secret.
    secret = _secret(settings)
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha512).digest()
    assert signature == b64url(expected)
    assert rejected(token, settings).code == "invalid_token"


def test_wrong_key_is_rejected(settings: Settings) -> None:
    assert rejected(_encode(token_claims(), OTHER_SECRET), settings).code == "invalid_token"


def test_tampered_payload_is_rejected(settings: Settings) -> None:
    token = mint_token(settings, str(uuid.uuid4()))
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["app_metadata"] = {"role": "admin"}
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert rejected(forged, settings).code == "invalid_token"


def test_expired_beyond_leeway_is_rejected(settings: Settings) -> None:
    token = mint_token(
        settings, str(uuid.uuid4()), ttl_seconds=-(settings.jwt_leeway_seconds + 120)
    )
    assert rejected(token, settings).code == "token_expired"


@pytest.mark.parametrize("aud", ["anon", "service_role", ["anon", "other"], ""])
def test_wrong_audience_is_rejected(settings: Settings, aud: object) -> None:
    assert (
        rejected(_encode(token_claims(aud=aud), _secret(settings)), settings).code
        == "invalid_token"
    )


@pytest.mark.parametrize("missing", ["sub", "exp", "aud"])
def test_missing_required_claim_is_rejected(settings: Settings, missing: str) -> None:
    claims = token_claims()
    del claims[missing]
    assert rejected(_encode(claims, _secret(settings)), settings).code == "invalid_token"


@pytest.mark.parametrize("sub", ["not-a-uuid", "", "admin", "123", "00000000-0000-0000-0000"])
def test_subject_must_be_a_uuid(settings: Settings, sub: str) -> None:
    assert (
        rejected(_encode(token_claims(sub=sub), _secret(settings)), settings).code
        == "invalid_token"
    )


@pytest.mark.parametrize("role", ["service_role", "anon", "supabase_admin", "postgres"])
def test_non_user_roles_are_rejected(settings: Settings, role: str) -> None:
    token = _encode(token_claims(role=role), _secret(settings))
    assert rejected(token, settings).code == "invalid_token"


def test_a_service_role_key_is_not_a_user_token(settings: Settings) -> None:
    # Shaped like Supabase's service_role API key (signed with the same project secret).
    now = int(time.time())
    key = _encode(
        {"iss": "supabase", "ref": "proj", "role": "service_role", "iat": now, "exp": now + 600},
        _secret(settings),
    )
    assert rejected(key, settings).code == "invalid_token"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b.c",
        "a.b",
        "Bearer x",
        "....",
        "eyJhbGciOiJIUzI1NiJ9..",
        "\u00e9.\u00e9.\u00e9",
    ],
)
def test_malformed_tokens_are_rejected(settings: Settings, token: str) -> None:
    assert rejected(token, settings).code == "invalid_token"


# --- issuer ---------------------------------------------------------------------------------

ISSUER = "https://proj.supabase.test/auth/v1"


@pytest.fixture
def issuer_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    return configure(monkeypatch, JWT_ISSUER=ISSUER)


def test_issuer_is_minted_and_checked(issuer_settings: Settings) -> None:
    user = verify_token(mint_token(issuer_settings, str(uuid.uuid4())), issuer_settings)
    assert user.claims["iss"] == ISSUER


@pytest.mark.parametrize("iss", ["https://evil.test/auth/v1", "supabase", ""])
def test_wrong_issuer_is_rejected(issuer_settings: Settings, iss: str) -> None:
    token = _encode(token_claims(iss=iss), _secret(issuer_settings))
    assert rejected(token, issuer_settings).code == "invalid_token"


def test_missing_issuer_is_rejected_when_configured(issuer_settings: Settings) -> None:
    token = _encode(token_claims(), _secret(issuer_settings))
    assert rejected(token, issuer_settings).code == "invalid_token"


def test_issuer_is_ignored_when_not_configured(settings: Settings) -> None:
    assert settings.jwt_issuer is None
    token = _encode(token_claims(iss="https://anything.test/auth/v1"), _secret(settings))
    assert verify_token(token, settings).claims["iss"] == "https://anything.test/auth/v1"


def test_empty_jwt_issuer_means_no_issuer_check(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = configure(monkeypatch, JWT_ISSUER="")
    verify_token(mint_token(settings, str(uuid.uuid4())), settings)


# --- Authorization header -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER abc.def.ghi", "abc.def.ghi"),
        ("Bearer   abc.def.ghi  ", "abc.def.ghi"),
    ],
)
def test_bearer_token_parsing(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", [None, ""])
def test_missing_authorization_header(header: str | None) -> None:
    with pytest.raises(Unauthorized) as info:
        bearer_token(header)
    assert info.value.code == "missing_token"


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer    ", "abc.def.ghi", "Token x"]
)
def test_malformed_authorization_header(header: str) -> None:
    with pytest.raises(Unauthorized) as info:
        bearer_token(header)
    assert info.value.code == "invalid_token"


def test_authenticate_parses_and_verifies(settings: Settings) -> None:
    user_id = str(uuid.uuid4())
    user = authenticate(f"Bearer {mint_token(settings, user_id)}", settings)
    assert user.user_id == user_id
    with pytest.raises(Unauthorized):
        authenticate(f"Bearer {_encode(token_claims(), OTHER_SECRET)}", settings)
    with pytest.raises(Unauthorized):
        authenticate(None, settings)


# --- scheduler secret -----------------------------------------------------------------------


def test_scheduler_secret_accepted(settings: Settings) -> None:
    check_scheduler_secret(settings.scheduler_secret.get_secret_value(), settings)


@pytest.mark.parametrize(
    "provided",
    [None, "", "wrong", "test-scheduler-secret-long-enough-012345678", "x" * 44, "\u00e9" * 44],
)
def test_scheduler_secret_rejected(settings: Settings, provided: str | None) -> None:
    with pytest.raises(Unauthorized) as info:
        check_scheduler_secret(provided, settings)
    assert info.value.code == "invalid_scheduler_secret"
    assert settings.scheduler_secret.get_secret_value() not in info.value.message


def test_scheduler_secret_with_extra_suffix_rejected(settings: Settings) -> None:
    with pytest.raises(Unauthorized):
        check_scheduler_secret(settings.scheduler_secret.get_secret_value() + "x", settings)


# --- UserContext ----------------------------------------------------------------------------


def test_user_context_repr_never_contains_the_token(settings: Settings) -> None:
    user_id = str(uuid.uuid4())
    token = mint_token(settings, user_id, admin=True, email="secret-mail@example.test")
    user = verify_token(token, settings)
    for text in (repr(user), str(user), f"{user}", f"{user!r}", repr([user]), repr({"u": user})):
        assert token not in text
        for part in token.split("."):
            assert part not in text
        assert "secret-mail" not in text
    assert user_id in repr(user)
