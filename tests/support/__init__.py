"""Test support shared by every tier: import it from here, never from another test module.

- `data`: the repository's paths and small documents (`TEXT`, `PNG`, `zip_bytes`).
- `times`: the fixed `T0` and `at(seconds)` for SQL functions that take `now`.
- `env`: `configure()` settings through the environment, `database_down()`, `config_error()`.
- `tokens`: claims, hand-made JWTs, verified user contexts, `bearer()` and `scheduler_headers()`.
- `users`: `create_user()`, a real row in `auth.users` (behind the `make_user` fixture).
- `factories`: uploads and jobs through the real `create_upload` SQL function.
- `queue`: the queue's SQL transitions, each under its SQL name (`claim_jobs`, `fail_job`, ...).
- `rows`: independent reads through the superuser `sql` connection, and `as_role`/`as_user`.
- `http`: functions-framework test clients, upload and JSON requests, `assert_error()`.
- `net`, `waiting`, `cli`, `browser`: a free port, polling with a bound, the CLI, Chromium.
- `sandbox_targets`: functions a sandbox child imports by name.

Fixtures live in tests/conftest.py (every tier) and tests/acceptance/conftest.py.
tests/unit/test_test_support.py keeps test modules from importing each other.
"""
