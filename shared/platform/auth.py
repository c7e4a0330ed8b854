"""Supabase access-token verification and local token minting.

Tokens are verified locally with PyJWT, against a fixed list of algorithms (never `none`):
HS256 with the project's JWT secret (SUPABASE_JWT_SECRET), and ES256/RS256 with the public keys
of the project's JWKS (JWKS_URL), found by the token's `kid`. Audience `authenticated`, expiry
with a small leeway, and the issuer when JWT_ISSUER is set. Admin means
`app_metadata.role == "admin"`.

The JWKS is fetched with httpx on first use and kept at most JWKS_CACHE_SECONDS (<= 600 s); a
token with an unknown `kid` (a rotated key) refetches it, at most once per 30 s, so that garbage
key ids cannot make us hammer the endpoint. When a refresh fails the keys already held stay in
use; with none held, verification answers 503 (`Unavailable`) with `retry_after`.
"""

from __future__ import annotations

import hmac
import math
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jwt

from shared.platform import clock as clock_module
from shared.platform import safejson
from shared.platform.client import UserContext
from shared.platform.config import Settings
from shared.platform.errors import ConfigError, Forbidden, Unauthorized, Unavailable
from shared.platform.log import get_logger

if TYPE_CHECKING:  # httpx is imported only where a JWKS is configured (`load_jwks_client`)
    import httpx

log = get_logger("auth")

HMAC_ALGORITHMS = frozenset({"HS256"})
JWKS_ALGORITHMS = frozenset({"ES256", "RS256"})
# Every algorithm a token may name; which of them are accepted depends on the configuration.
ALGORITHMS = sorted(HMAC_ALGORITHMS | JWKS_ALGORITHMS)

JWKS_TIMEOUT_SECONDS = 5.0
JWKS_CONNECT_TIMEOUT_SECONDS = 3.0
# An unknown `kid` refetches the JWKS at most this often.
JWKS_MIN_REFETCH_SECONDS = 30.0
# After a failed fetch, wait this long before the next attempt (requests meanwhile use the keys
# held, or get 503 when there are none).
JWKS_FAILURE_BACKOFF_SECONDS = 5.0


class JwksCache:
    """The public signing keys of one JWKS URL, by (`kid`, algorithm); thread-safe.

    Fetched lazily, refetched when older than `max_age` seconds, and refetched when asked for an
    unknown key, but no sooner than `min_refetch_seconds` after the previous fetch. A failed
    fetch keeps the keys already held (stale beats none) and is not retried for
    `failure_backoff_seconds`; with no keys held it raises `Unavailable`. Ages are measured on
    `clock` (the process's clock from `shared.platform.clock` unless one is given).
    """

    def __init__(
        self,
        url: str,
        max_age: float = 600.0,
        http_client: httpx.Client | None = None,
        *,
        clock: clock_module.Clock | None = None,
        min_refetch_seconds: float = JWKS_MIN_REFETCH_SECONDS,
        failure_backoff_seconds: float = JWKS_FAILURE_BACKOFF_SECONDS,
    ) -> None:
        self.url = url
        self.max_age = max_age
        self.min_refetch_seconds = min_refetch_seconds
        self.failure_backoff_seconds = failure_backoff_seconds
        self._http = http_client
        self._owns_http = http_client is None
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], jwt.PyJWK] | None = None
        self._fetched_at = 0.0  # last successful fetch
        self._attempted_at: float | None = None  # last fetch attempt, successful or not
        self._retry_at = 0.0  # no attempt before this (after a failure)

    def _now(self) -> float:
        return (self._clock or clock_module.get_clock()).monotonic()

    def get_key(self, kid: str, alg: str) -> jwt.PyJWK | None:
        """The key with this id for this algorithm, or None when the JWKS has none."""
        with self._lock:
            now = self._now()
            if self._keys is None or now - self._fetched_at >= self.max_age:
                self._refresh(now)
            assert self._keys is not None
            key = self._keys.get((kid, alg))
            if key is None and (
                self._attempted_at is None or now - self._attempted_at >= self.min_refetch_seconds
            ):
                log.info("unknown signing key id, refetching the JWKS", extra={"kid": kid[:64]})
                self._refresh(now)
                key = self._keys.get((kid, alg))
            return key

    def _refresh(self, now: float) -> None:
        """Fetch the key set; on failure keep the keys held, or raise when there are none."""
        if now < self._retry_at:
            if self._keys is None:
                raise self._unavailable(now)
            return
        import httpx

        self._attempted_at = now
        try:
            keys = self._fetch()
        except (httpx.HTTPError, ValueError) as exc:
            self._retry_at = now + self.failure_backoff_seconds
            log.warning(
                "JWKS fetch failed",
                extra={"url": self.url, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )
            if self._keys is None:
                raise self._unavailable(now) from None
            return
        self._keys = keys
        self._fetched_at = now
        self._retry_at = 0.0

    def _unavailable(self, now: float) -> Unavailable:
        return Unavailable(
            "token signing keys unavailable, try again",
            code="jwks_unavailable",
            retry_after=max(1, math.ceil(self._retry_at - now)),
        )

    def open(self) -> None:
        """Make the HTTP client now (the wiring does it at start-up); no request is sent."""
        with self._lock:
            if self._http is None:
                self._http = load_jwks_client()

    def _fetch(self) -> dict[tuple[str, str], jwt.PyJWK]:
        if self._http is None:
            self._http = load_jwks_client()
        response = self._http.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = safejson.loads(response.content)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK set (no 'keys' list)")
        keys: dict[tuple[str, str], jwt.PyJWK] = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict):
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") not in ("EC", "RSA"):
                continue  # never a symmetric ("oct") key from a URL
            try:
                key = jwt.PyJWK(entry)
            except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
                log.warning("skipping unusable JWK", extra={"kid": kid[:64], "error": str(exc)})
                continue
            if key.algorithm_name in JWKS_ALGORITHMS:
                keys.setdefault((kid, key.algorithm_name), key)
        return keys

    def close(self) -> None:
        with self._lock:
            if self._owns_http and self._http is not None:
                self._http.close()
                self._http = None


def load_jwks_client() -> httpx.Client:
    """The HTTP client that fetches a JWKS. httpx is imported here: the wiring calls this at
    start-up when JWKS_URL is set, and a process that verifies only HS256 tokens never loads it.
    """
    import httpx

    timeout = httpx.Timeout(JWKS_TIMEOUT_SECONDS, connect=JWKS_CONNECT_TIMEOUT_SECONDS)
    return httpx.Client(timeout=timeout, follow_redirects=False)


_jwks_caches: dict[str, JwksCache] = {}
_jwks_lock = threading.Lock()


def jwks_cache(url: str, max_age: float = 600.0) -> JwksCache:
    """The process-wide cache of this JWKS URL (one per URL; created on first use)."""
    with _jwks_lock:
        cache = _jwks_caches.get(url)
        if cache is None:
            cache = _jwks_caches[url] = JwksCache(url, max_age)
        return cache


def reset_jwks_caches() -> None:
    """Forget every cached key set (tests)."""
    with _jwks_lock:
        caches = list(_jwks_caches.values())
        _jwks_caches.clear()
    for cache in caches:
        cache.close()


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization header", code="missing_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'", code="invalid_token")
    return token.strip()


def _invalid(message: str = "invalid access token") -> Unauthorized:
    return Unauthorized(message, code="invalid_token")


def _verification_key(token: str, settings: Settings) -> tuple[str, str | jwt.PyJWK]:
    """The token's algorithm (checked against the configured list) and the key to verify it."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _invalid() from None
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _invalid("access token algorithm not accepted")
    secret = settings.supabase_jwt_secret
    if alg in HMAC_ALGORITHMS and secret is not None:
        return alg, secret.get_secret_value()
    if alg in JWKS_ALGORITHMS and settings.jwks_url:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid("access token has no key id")
        key = jwks_cache(settings.jwks_url, settings.jwks_cache_seconds).get_key(kid, alg)
        if key is None:
            raise _invalid("access token signed by an unknown key")
        return alg, key
    raise _invalid("access token algorithm not accepted")


def verify_token(token: str, settings: Settings) -> UserContext:
    alg, key = _verification_key(token, settings)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            options={"require": ["exp", "sub", "aud"], "enforce_minimum_key_length": True},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("access token expired", code="token_expired") from None
    except jwt.InvalidAudienceError:
        raise _invalid("access token has the wrong audience") from None
    except jwt.PyJWTError:
        raise _invalid() from None
    try:
        uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise _invalid("access token subject is not a user id") from None
    if claims.get("role", "authenticated") != "authenticated":
        raise _invalid("access token is not a user token")
    return UserContext(token=token, claims=claims)


def authenticate(authorization: str | None, settings: Settings) -> UserContext:
    return verify_token(bearer_token(authorization), settings)


def require_admin(user: UserContext) -> None:
    if not user.is_admin:
        raise Forbidden("admin role required", code="admin_required")


def check_scheduler_secret(provided: str | None, settings: Settings) -> None:
    expected = settings.scheduler_secret.get_secret_value().encode()
    if not provided or not hmac.compare_digest(provided.encode(), expected):
        raise Unauthorized("missing or wrong X-Scheduler-Secret", code="invalid_scheduler_secret")


def mint_token(
    settings: Settings,
    user_id: str,
    *,
    admin: bool = False,
    email: str | None = None,
    ttl_seconds: int = 3600,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A Supabase-style access token signed with the local JWT secret (`docflow token`)."""
    now = int(clock_module.now().timestamp())
    claims: dict[str, Any] = {
        "sub": user_id,
        "aud": settings.jwt_audience,
        "role": "authenticated",
        "iat": now,
        "exp": now + ttl_seconds,
        "email": email or f"{user_id[:8]}@example.test",
        "app_metadata": {"provider": "email", **({"role": "admin"} if admin else {})},
        "user_metadata": {},
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    claims.update(extra or {})
    if settings.supabase_jwt_secret is None:
        raise ConfigError("SUPABASE_JWT_SECRET required to mint (HS256) tokens")
    return jwt.encode(claims, settings.supabase_jwt_secret.get_secret_value(), algorithm="HS256")
