"""Supabase access-token verification and local token minting.

Tokens are verified locally with PyJWT: HS256 with the project's JWT secret (SUPABASE_JWT_SECRET),
a fixed algorithm list (never `none`), audience `authenticated`, expiry with a small leeway, and
the issuer when JWT_ISSUER is set. Admin means `app_metadata.role == "admin"`.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from shared.client import UserContext
from shared.config import Settings
from shared.errors import Forbidden, Unauthorized

ALGORITHMS = ["HS256"]


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization header", code="missing_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'", code="invalid_token")
    return token.strip()


def verify_token(token: str, settings: Settings) -> UserContext:
    try:
        claims = jwt.decode(
            token,
            settings.supabase_jwt_secret.get_secret_value(),
            algorithms=ALGORITHMS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("access token expired", code="token_expired") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("access token has the wrong audience", code="invalid_token") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid access token", code="invalid_token") from None
    try:
        uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise Unauthorized("access token subject is not a user id", code="invalid_token") from None
    if claims.get("role", "authenticated") != "authenticated":
        raise Unauthorized("access token is not a user token", code="invalid_token")
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
    now = int(time.time())
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
    return jwt.encode(claims, settings.supabase_jwt_secret.get_secret_value(), algorithm="HS256")
