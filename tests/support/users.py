"""Users: a row in `auth.users` (what Supabase Auth does on sign-up) and a token for it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from shared.dev import localdb
from shared.platform.client import UserContext
from tests.support.tokens import user_context

# The `make_user` fixture (tests/conftest.py): `make_user()`, `make_user(admin=True)`.
MakeUser = Callable[..., UserContext]


def create_user(database_url: str, *, admin: bool = False) -> UserContext:
    """A new user in this database's auth.users, with a verified access token."""
    user_id = str(uuid.uuid4())
    localdb.ensure_auth_user(database_url, user_id, None, admin)
    return user_context(user_id=user_id, admin=admin)
