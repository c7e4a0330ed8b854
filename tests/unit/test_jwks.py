"""shared.platform.auth with asymmetric keys: ES256/RS256 access tokens verified against the
project's
JWKS (fetched with httpx, mocked here with respx), the key cache, and the settings behind it."""

from __future__ import annotations

import json
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from shared.platform import auth
from shared.platform import clock as clock_module
from shared.platform.auth import (
    JwksCache,
    authenticate,
    jwks_cache,
    mint_token,
    reset_jwks_caches,
    verify_token,
)
from shared.platform.config import Settings, get_settings, load_settings
from shared.platform.errors import ConfigError, Unavailable
from tests.support.env import config_error, configure
from tests.support.tokens import b64url, hand_signed, rejected, token_claims

JWKS_URL = "https://proj.supabase.test/auth/v1/.well-known/jwks.json"
HS_SECRET = "test-jwt-secret-that-is-long-enough-0123456789"  # the conftest's
ISSUER = "https://proj.supabase.test/auth/v1"
EC_KID = "ec-key-1"
RSA_KID = "rsa-key-1"

# --- keys and tokens ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "ES256", "use": "sig", **extra}


def _rsa_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig", **extra}


def _jwks(*keys: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"keys": list(keys)})


def _sign(key: Any, alg: str, kid: str | None, **overrides: Any) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(token_claims(**overrides), key, algorithm=alg, headers=headers)


# --- environment, clock, mocked JWKS endpoint -----------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:  # only the monotonic clock is fake here
        return datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with clock_module.use(FakeClock()) as fake:
        yield fake


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    # assert_all_mocked: any request other than the JWKS URL fails the test.
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


@pytest.fixture
def jwks_only(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Settings:
    """JWKS_URL set, no SUPABASE_JWT_SECRET: only ES256/RS256 tokens."""
    settings = configure(monkeypatch, SUPABASE_JWT_SECRET=None, JWKS_URL=JWKS_URL)
    assert settings.supabase_jwt_secret is None
    return settings


@pytest.fixture
def both(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Settings:
    """The secret and the JWKS: HS256, ES256 and RS256 tokens."""
    return configure(monkeypatch, JWKS_URL=JWKS_URL)


@pytest.fixture
def jwks_route(
    router: respx.MockRouter, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> respx.Route:
    """The JWKS endpoint publishing the EC and the RSA key."""
    return router.get(JWKS_URL).mock(
        return_value=_jwks(_ec_jwk(ec_key, EC_KID), _rsa_jwk(rsa_key, RSA_KID))
    )


# --- settings -------------------------------------------------------------------------------


def test_neither_secret_nor_jwks_is_a_config_error_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SUPABASE_JWT_SECRET", raising=False)
    monkeypatch.delenv("JWKS_URL", raising=False)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "SUPABASE_JWT_SECRET" in str(info.value)
    assert "JWKS_URL" in str(info.value)


def test_missing_keys_are_reported_with_other_bad_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SUPABASE_JWT_SECRET", raising=False)
    monkeypatch.delenv("SCHEDULER_SECRET", raising=False)
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "lots")
    message = str(config_error())
    for name in ("SUPABASE_JWT_SECRET", "JWKS_URL", "SCHEDULER_SECRET", "MAX_UPLOAD_BYTES"):
        assert name in message


def test_a_short_secret_is_reported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "too-short")
    message = str(config_error())
    assert "SUPABASE_JWT_SECRET: Value error, must be at least 32 characters" in message
    assert "JWKS_URL" not in message


def test_empty_secret_and_empty_jwks_url_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "")
    monkeypatch.setenv("JWKS_URL", "")
    with pytest.raises(ConfigError, match="JWKS_URL"):
        load_settings()


def test_jwks_url_alone_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPABASE_JWT_SECRET", raising=False)
    monkeypatch.setenv("JWKS_URL", JWKS_URL)
    s = load_settings()
    assert s.supabase_jwt_secret is None
    assert s.jwks_url == JWKS_URL
    assert s.jwks_cache_seconds == 600


def test_jwks_defaults() -> None:
    s = load_settings()
    assert s.jwks_url is None
    assert s.jwks_cache_seconds == 600


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JWKS_CACHE_SECONDS", "601"),
        ("JWKS_CACHE_SECONDS", "0"),
        ("JWKS_CACHE_SECONDS", "soon"),
        ("JWKS_URL", "proj.supabase.test/jwks.json"),
        ("JWKS_URL", "ftp://proj.supabase.test/jwks.json"),
    ],
)
def test_bad_jwks_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert name in str(info.value)


def test_short_secret_is_still_refused_with_a_jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWKS_URL", JWKS_URL)
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "too-short")
    with pytest.raises(ConfigError, match="SUPABASE_JWT_SECRET"):
        load_settings()


def test_mint_token_needs_the_secret(jwks_only: Settings) -> None:
    with pytest.raises(ConfigError, match="SUPABASE_JWT_SECRET"):
        mint_token(jwks_only, str(uuid.uuid4()))


# --- accepted tokens ------------------------------------------------------------------------


def test_es256_token_is_verified(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    user_id = str(uuid.uuid4())
    token = _sign(ec_key, "ES256", EC_KID, sub=user_id, app_metadata={"role": "admin"})
    user = verify_token(token, jwks_only)
    assert user.user_id == user_id
    assert user.token == token
    assert user.is_admin is True
    assert jwks_route.call_count == 1


def test_rs256_token_is_verified(
    jwks_only: Settings, jwks_route: respx.Route, rsa_key: rsa.RSAPrivateKey
) -> None:
    user_id = str(uuid.uuid4())
    user = verify_token(_sign(rsa_key, "RS256", RSA_KID, sub=user_id), jwks_only)
    assert user.user_id == user_id
    assert user.is_admin is False


def test_jwk_without_alg_or_use_is_used(
    jwks_only: Settings, router: respx.MockRouter, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    jwk = _ec_jwk(ec_key, EC_KID)
    del jwk["alg"], jwk["use"]
    router.get(JWKS_URL).mock(return_value=_jwks(jwk))
    verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)


def test_authenticate_with_an_es256_bearer_token(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    user_id = str(uuid.uuid4())
    header = f"Bearer {_sign(ec_key, 'ES256', EC_KID, sub=user_id)}"
    assert authenticate(header, jwks_only).user_id == user_id


def test_secret_and_jwks_together_accept_all_three(
    both: Settings,
    jwks_route: respx.Route,
    ec_key: ec.EllipticCurvePrivateKey,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    verify_token(mint_token(both, str(uuid.uuid4())), both)
    assert jwks_route.call_count == 0  # HS256 needs no keys from the network
    verify_token(_sign(ec_key, "ES256", EC_KID), both)
    verify_token(_sign(rsa_key, "RS256", RSA_KID), both)
    assert jwks_route.call_count == 1


def test_issuer_checked_on_jwks_tokens(
    monkeypatch: pytest.MonkeyPatch,
    jwks_only: Settings,
    jwks_route: respx.Route,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    settings = configure(monkeypatch, JWT_ISSUER=ISSUER)
    assert (
        verify_token(_sign(ec_key, "ES256", EC_KID, iss=ISSUER), settings).claims["iss"] == ISSUER
    )
    for iss in ("https://evil.test/auth/v1", "", None):
        token = _sign(ec_key, "ES256", EC_KID, iss=iss)
        assert rejected(token, settings).code == "invalid_token"


# --- refused tokens -------------------------------------------------------------------------


def test_hs256_token_refused_when_only_the_jwks_is_configured(
    jwks_only: Settings, jwks_route: respx.Route
) -> None:
    token = jwt.encode(token_claims(), HS_SECRET, algorithm="HS256", headers={"kid": EC_KID})
    assert rejected(token, jwks_only).code == "invalid_token"
    assert jwks_route.call_count == 0


def test_hs256_signed_with_the_public_key_is_refused(
    both: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    # Algorithm confusion: the public key (which anyone can fetch) used as an HMAC secret.
    pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for key in (pem, json.dumps(_ec_jwk(ec_key, EC_KID)).encode()):
        token = hand_signed({"alg": "HS256", "typ": "JWT", "kid": EC_KID}, token_claims(), key)
        assert rejected(token, both).code == "invalid_token"


def test_es256_token_refused_when_only_the_secret_is_configured(
    router: respx.MockRouter, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    settings = get_settings()
    assert settings.jwks_url is None
    assert rejected(_sign(ec_key, "ES256", EC_KID), settings).code == "invalid_token"
    assert rejected(_sign(rsa_key, "RS256", RSA_KID), settings).code == "invalid_token"
    assert router.calls.call_count == 0


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS512", "PS256", "ES384", "EdDSA", ""])
def test_algorithms_outside_the_list_are_refused(
    both: Settings, jwks_route: respx.Route, alg: str
) -> None:
    header = {"alg": alg, "typ": "JWT", "kid": EC_KID}
    for key in (None, HS_SECRET.encode()):
        assert rejected(hand_signed(header, token_claims(), key), both).code == "invalid_token"
    assert jwks_route.call_count == 0


def test_ps256_signed_with_the_published_rsa_key_is_refused(
    jwks_only: Settings, jwks_route: respx.Route, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = _sign(rsa_key, "PS256", RSA_KID)
    assert rejected(token, jwks_only).code == "invalid_token"


@pytest.mark.parametrize("header", [{"typ": "JWT", "kid": EC_KID}, {"alg": ["ES256"]}])
def test_missing_or_odd_alg_is_refused(both: Settings, header: dict[str, Any]) -> None:
    assert rejected(hand_signed(header, token_claims(), None), both).code == "invalid_token"


@pytest.mark.parametrize("kid", [None, "", 7, ["ec-key-1"]])
def test_missing_or_odd_kid_is_refused_without_a_fetch(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey, kid: object
) -> None:
    if isinstance(kid, str | None):
        token = _sign(ec_key, "ES256", kid)
    else:  # PyJWT will not sign with a non-string kid
        header = {"alg": "ES256", "typ": "JWT", "kid": kid}
        token = hand_signed(header, token_claims(), b"not-a-real-signature-key")
    assert rejected(token, jwks_only).code == "invalid_token"
    assert jwks_route.call_count == 0


def test_wrong_key_with_the_published_kid_is_refused(
    jwks_only: Settings, jwks_route: respx.Route
) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    assert rejected(_sign(impostor, "ES256", EC_KID), jwks_only).code == "invalid_token"


def test_header_alg_must_match_the_key(
    jwks_only: Settings,
    jwks_route: respx.Route,
    ec_key: ec.EllipticCurvePrivateKey,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    # An RSA signature presented under the EC key's id, and the other way round.
    assert rejected(_sign(rsa_key, "RS256", EC_KID), jwks_only).code == "invalid_token"
    assert rejected(_sign(ec_key, "ES256", RSA_KID), jwks_only).code == "invalid_token"


def test_tampered_payload_is_refused(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    header, _, signature = _sign(ec_key, "ES256", EC_KID).split(".")
    forged_claims = b64url(json.dumps(token_claims(app_metadata={"role": "admin"})).encode())
    assert rejected(f"{header}.{forged_claims}.{signature}", jwks_only).code == "invalid_token"


def test_expired_token_is_refused(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    token = _sign(ec_key, "ES256", EC_KID, exp=int(time.time()) - 120)
    assert rejected(token, jwks_only).code == "token_expired"


def test_expiry_within_leeway_is_accepted(
    jwks_only: Settings, jwks_route: respx.Route, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = _sign(rsa_key, "RS256", RSA_KID, exp=int(time.time()) - 5)
    verify_token(token, jwks_only)


@pytest.mark.parametrize("aud", ["anon", "service_role", ["anon", "other"], ""])
def test_wrong_audience_is_refused(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey, aud: object
) -> None:
    assert rejected(_sign(ec_key, "ES256", EC_KID, aud=aud), jwks_only).code == "invalid_token"


@pytest.mark.parametrize("missing", ["sub", "exp", "aud"])
def test_missing_required_claim_is_refused(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey, missing: str
) -> None:
    token = jwt.encode(
        {k: v for k, v in token_claims().items() if k != missing},
        ec_key,
        algorithm="ES256",
        headers={"kid": EC_KID},
    )
    assert rejected(token, jwks_only).code == "invalid_token"


def test_subject_and_role_rules_apply_to_jwks_tokens(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    assert rejected(_sign(ec_key, "ES256", EC_KID, sub="admin"), jwks_only).code == "invalid_token"
    token = _sign(ec_key, "ES256", EC_KID, role="service_role")
    assert rejected(token, jwks_only).code == "invalid_token"


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9..", "\u00e9.\u00e9.\u00e9"]
)
def test_malformed_tokens_are_refused(
    jwks_only: Settings, router: respx.MockRouter, token: str
) -> None:
    assert rejected(token, jwks_only).code == "invalid_token"
    assert router.calls.call_count == 0


def test_short_rsa_key_in_the_jwks_is_refused(
    jwks_only: Settings, router: respx.MockRouter
) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - on purpose
    router.get(JWKS_URL).mock(return_value=_jwks(_rsa_jwk(weak, "weak")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns when signing with a short key
        token = _sign(weak, "RS256", "weak")
    assert rejected(token, jwks_only).code == "invalid_token"


def test_unusable_jwks_entries_are_skipped(
    jwks_only: Settings, router: respx.MockRouter, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    oct_key = {"kty": "oct", "kid": "sym", "k": b64url(HS_SECRET.encode()), "alg": "HS256"}
    router.get(JWKS_URL).mock(
        return_value=_jwks(
            oct_key,
            _ec_jwk(ec_key, "enc-key", use="enc"),
            {k: v for k, v in _ec_jwk(ec_key, "x").items() if k != "kid"},
            {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AAAA"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AAAA", "y": "AAAA"},
            "not-a-key",  # type: ignore[arg-type]
            _ec_jwk(ec_key, EC_KID),
        )
    )
    verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)
    # The symmetric key from the URL is never used, not even for a token naming it.
    token = hand_signed({"alg": "HS256", "kid": "sym"}, token_claims(), HS_SECRET.encode())
    assert rejected(token, jwks_only).code == "invalid_token"
    assert rejected(_sign(ec_key, "ES256", "enc-key"), jwks_only).code == "invalid_token"


def test_empty_key_set_refuses_every_token(
    jwks_only: Settings, router: respx.MockRouter, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    router.get(JWKS_URL).mock(return_value=_jwks())
    assert rejected(_sign(ec_key, "ES256", EC_KID), jwks_only).code == "invalid_token"


# --- the key cache --------------------------------------------------------------------------


def test_keys_are_fetched_lazily_and_cached(
    jwks_only: Settings,
    jwks_route: respx.Route,
    clock: FakeClock,
    ec_key: ec.EllipticCurvePrivateKey,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    cache = jwks_cache(JWKS_URL)
    assert jwks_cache(JWKS_URL) is cache  # one per URL per process
    assert jwks_cache("https://other.supabase.test/jwks.json") is not cache
    assert jwks_route.call_count == 0
    for _ in range(5):
        verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)
        verify_token(_sign(rsa_key, "RS256", RSA_KID), jwks_only)
        clock.advance(10)
    assert jwks_route.call_count == 1
    request = jwks_route.calls.last.request
    assert request.method == "GET"
    assert "authorization" not in request.headers


def test_reset_forgets_the_cache(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    cache = jwks_cache(JWKS_URL)
    verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)
    reset_jwks_caches()
    assert jwks_cache(JWKS_URL) is not cache
    verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)
    assert jwks_route.call_count == 2


@pytest.mark.parametrize("max_age", [None, 120])
def test_cache_max_age_is_respected(
    monkeypatch: pytest.MonkeyPatch,
    jwks_only: Settings,
    jwks_route: respx.Route,
    clock: FakeClock,
    ec_key: ec.EllipticCurvePrivateKey,
    max_age: int | None,
) -> None:
    settings = jwks_only
    if max_age is not None:
        settings = configure(monkeypatch, JWKS_CACHE_SECONDS=str(max_age))
    age = max_age or 600
    token = _sign(ec_key, "ES256", EC_KID)
    verify_token(token, settings)
    clock.advance(age - 1)
    verify_token(token, settings)
    assert jwks_route.call_count == 1
    clock.advance(1)
    verify_token(token, settings)
    assert jwks_route.call_count == 2
    clock.advance(age - 1)
    verify_token(token, settings)
    assert jwks_route.call_count == 2


def test_unknown_kid_refetches_once_and_finds_a_rotated_key(
    jwks_only: Settings,
    router: respx.MockRouter,
    clock: FakeClock,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    new_key = ec.generate_private_key(ec.SECP256R1())
    route = router.get(JWKS_URL).mock(
        side_effect=[
            _jwks(_ec_jwk(ec_key, EC_KID)),
            _jwks(_ec_jwk(ec_key, EC_KID), _ec_jwk(new_key, "ec-key-2")),
        ]
    )
    verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)
    assert route.call_count == 1
    clock.advance(60)  # the project rotates its signing key
    user = verify_token(_sign(new_key, "ES256", "ec-key-2"), jwks_only)
    assert user.user_id
    assert route.call_count == 2
    # Both keys now cached: no more fetches.
    verify_token(_sign(new_key, "ES256", "ec-key-2"), jwks_only)
    verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)
    assert route.call_count == 2


def test_rotation_right_after_a_fetch_waits_for_the_throttle(
    jwks_only: Settings,
    router: respx.MockRouter,
    clock: FakeClock,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    new_key = ec.generate_private_key(ec.SECP256R1())
    route = router.get(JWKS_URL).mock(
        side_effect=[
            _jwks(_ec_jwk(ec_key, EC_KID)),
            _jwks(_ec_jwk(ec_key, EC_KID), _ec_jwk(new_key, "ec-key-2")),
        ]
    )
    verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)
    clock.advance(5)
    new_token = _sign(new_key, "ES256", "ec-key-2")
    assert rejected(new_token, jwks_only).code == "invalid_token"
    assert route.call_count == 1
    clock.advance(auth.JWKS_MIN_REFETCH_SECONDS)
    verify_token(new_token, jwks_only)
    assert route.call_count == 2


def test_unknown_kid_that_stays_unknown_is_throttled(
    jwks_only: Settings,
    jwks_route: respx.Route,
    clock: FakeClock,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)  # the first fetch
    clock.advance(auth.JWKS_MIN_REFETCH_SECONDS)
    garbage = [_sign(ec_key, "ES256", f"garbage-{i}") for i in range(20)]
    assert rejected(garbage[0], jwks_only).code == "invalid_token"
    assert jwks_route.call_count == 2  # one refetch for the unknown kid
    for token in garbage:  # many garbage kids within the window: no more fetches
        clock.advance(1)
        rejected(token, jwks_only)
    assert jwks_route.call_count == 2
    clock.advance(auth.JWKS_MIN_REFETCH_SECONDS)
    rejected(garbage[0], jwks_only)
    assert jwks_route.call_count == 3
    verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)  # known keys are unaffected
    assert jwks_route.call_count == 3


def test_unknown_kid_on_a_cold_cache_fetches_only_once(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    assert rejected(_sign(ec_key, "ES256", "garbage"), jwks_only).code == "invalid_token"
    assert jwks_route.call_count == 1


def test_concurrent_first_requests_fetch_once(
    jwks_only: Settings, jwks_route: respx.Route, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    token = _sign(ec_key, "ES256", EC_KID)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            verify_token(token, jwks_only)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert jwks_route.call_count == 1


# --- the JWKS endpoint failing --------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(500, text="oops"),
        httpx.Response(404, json={"message": "not found"}),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json={"no": "keys"}),
        httpx.Response(200, json=["not", "a", "set"]),
        httpx.Response(302, headers={"Location": "https://evil.test/jwks.json"}),
    ],
)
def test_jwks_down_with_no_cache_is_unavailable(
    jwks_only: Settings,
    router: respx.MockRouter,
    ec_key: ec.EllipticCurvePrivateKey,
    failure: Exception | httpx.Response,
) -> None:
    route = router.get(JWKS_URL)
    if isinstance(failure, Exception):
        route.mock(side_effect=failure)
    else:
        route.mock(return_value=failure)
    token = _sign(ec_key, "ES256", EC_KID)
    with pytest.raises(Unavailable) as info:
        verify_token(token, jwks_only)
    err = info.value
    assert err.status == 503
    assert err.code == "jwks_unavailable"
    assert err.retry_after is not None and err.retry_after >= 1
    assert token not in err.message


def test_failed_fetch_is_retried_after_a_backoff(
    jwks_only: Settings,
    router: respx.MockRouter,
    clock: FakeClock,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    route = router.get(JWKS_URL).mock(
        side_effect=[httpx.ConnectError("down"), _jwks(_ec_jwk(ec_key, EC_KID))]
    )
    token = _sign(ec_key, "ES256", EC_KID)
    with pytest.raises(Unavailable):
        verify_token(token, jwks_only)
    clock.advance(1)
    with pytest.raises(Unavailable) as info:  # within the backoff: no new attempt
        verify_token(token, jwks_only)
    assert route.call_count == 1
    assert info.value.retry_after == auth.JWKS_FAILURE_BACKOFF_SECONDS - 1
    clock.advance(auth.JWKS_FAILURE_BACKOFF_SECONDS)
    verify_token(token, jwks_only)  # back up
    assert route.call_count == 2


def test_stale_keys_are_used_when_a_refresh_fails(
    jwks_only: Settings,
    router: respx.MockRouter,
    clock: FakeClock,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    route = router.get(JWKS_URL).mock(
        side_effect=[
            _jwks(_ec_jwk(ec_key, EC_KID)),
            httpx.ConnectError("down"),
            httpx.Response(503),
            _jwks(_ec_jwk(ec_key, EC_KID)),
        ]
    )
    token = _sign(ec_key, "ES256", EC_KID)
    verify_token(token, jwks_only)
    clock.advance(jwks_only.jwks_cache_seconds + 1)
    verify_token(token, jwks_only)  # refresh fails: the stale keys still verify
    assert route.call_count == 2
    clock.advance(1)
    verify_token(token, jwks_only)  # within the backoff: no new attempt
    assert route.call_count == 2
    clock.advance(auth.JWKS_FAILURE_BACKOFF_SECONDS)
    verify_token(token, jwks_only)  # fails again, still verifies
    assert route.call_count == 3
    clock.advance(auth.JWKS_FAILURE_BACKOFF_SECONDS)
    verify_token(token, jwks_only)  # refreshed
    assert route.call_count == 4
    clock.advance(auth.JWKS_FAILURE_BACKOFF_SECONDS)
    verify_token(token, jwks_only)  # fresh again: cached
    assert route.call_count == 4


def test_unknown_kid_while_the_endpoint_is_down_is_401_not_503(
    jwks_only: Settings,
    router: respx.MockRouter,
    clock: FakeClock,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    router.get(JWKS_URL).mock(
        side_effect=[_jwks(_ec_jwk(ec_key, EC_KID)), httpx.ConnectError("down")]
    )
    verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)
    clock.advance(60)
    assert rejected(_sign(ec_key, "ES256", "unknown"), jwks_only).code == "invalid_token"


def test_cache_with_an_injected_client_and_clock(
    ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return _jwks(_ec_jwk(ec_key, EC_KID), _rsa_jwk(rsa_key, RSA_KID))

    now = FakeClock()
    now.seconds = 0.0
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        cache = JwksCache(JWKS_URL, 60, client, clock=now)
        ec_jwk = cache.get_key(EC_KID, "ES256")
        assert ec_jwk is not None and ec_jwk.algorithm_name == "ES256"
        assert cache.get_key(EC_KID, "RS256") is None  # the id with another algorithm
        rsa_jwk = cache.get_key(RSA_KID, "RS256")
        assert rsa_jwk is not None and rsa_jwk.algorithm_name == "RS256"
        assert len(calls) == 1
        now.seconds = 60
        assert cache.get_key(EC_KID, "ES256") is not None
        assert len(calls) == 2
        cache.close()  # an injected client belongs to the caller
        assert not client.is_closed


def test_a_deeply_nested_jwks_answer_is_a_failed_fetch_not_a_crash(
    jwks_only: Settings, router: respx.MockRouter, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    router.get(JWKS_URL).mock(
        return_value=httpx.Response(
            200, content=b'{"keys": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        )
    )
    with pytest.raises(Unavailable) as caught:
        verify_token(_sign(ec_key, "ES256", EC_KID), jwks_only)
    assert caught.value.code == "jwks_unavailable"
