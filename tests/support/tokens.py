"""Access tokens: claims, hand-made JWTs, verified user contexts and request headers."""

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

from shared.platform.auth import mint_token, verify_token
from shared.platform.client import UserContext
from shared.platform.config import Settings, get_settings
from shared.platform.errors import Unauthorized

# A secret that is long enough but not the test environment's: what it signs is forged.
OTHER_SECRET = "another-secret-that-is-long-enough-0123456789"


def b64url(data: bytes) -> str:
    """Base64url without padding, as in a JWT."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_claims(**overrides: Any) -> dict[str, Any]:
    """A user's access-token claims, valid for ten minutes; an override of None drops a claim."""
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
        "app_metadata": {"provider": "email"},
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def hand_signed(header: dict[str, Any], body: dict[str, Any], key: str | bytes | None) -> str:
    """A JWT assembled by hand, for algorithms or keys PyJWT itself refuses to sign with.

    Signed with HMAC (SHA-512 for HS512, else SHA-256) under `key`; no key, no signature.
    """
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"
    if key is None:
        return f"{signing_input}."
    secret = key.encode() if isinstance(key, str) else key
    digest = hashlib.sha512 if header.get("alg") == "HS512" else hashlib.sha256
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), digest).digest())}"


def forged(body: dict[str, Any]) -> str:
    """An HS256 token of these claims signed with OTHER_SECRET: well formed, not ours."""
    return jwt.encode(body, OTHER_SECRET, algorithm="HS256")


def rejected(token: str, settings: Settings) -> Unauthorized:
    """verify_token refuses the token: 401, with a code, and without echoing the token."""
    with pytest.raises(Unauthorized) as info:
        verify_token(token, settings)
    err = info.value
    assert err.status == 401
    assert err.code
    assert not token or token not in err.message
    return err


def user_context(
    settings: Settings | None = None, user_id: str | None = None, *, admin: bool = False
) -> UserContext:
    """A verified caller with a minted token (no row in auth.users: see `users.create_user`)."""
    settings = settings or get_settings()
    token = mint_token(settings, user_id or str(uuid.uuid4()), admin=admin)
    return verify_token(token, settings)


def api_key(role: str) -> str:
    """A key shaped like Supabase's API keys (three base64url segments); never verified here."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = {"iss": "supabase", "ref": "proj", "role": role, "iat": 1, "exp": 2**31}
    return f"{header}.{b64url(json.dumps(body).encode())}.{b64url(f'signature-of-{role}'.encode())}"


def bearer(user: UserContext | str) -> dict[str, str]:
    """The Authorization header of a user (or of a raw token)."""
    token = user if isinstance(user, str) else user.token
    return {"Authorization": f"Bearer {token}"}


def scheduler_headers() -> dict[str, str]:
    """The header Cloud Scheduler sends: the scheduler secret of the current settings."""
    return {"X-Scheduler-Secret": get_settings().scheduler_secret.get_secret_value()}
