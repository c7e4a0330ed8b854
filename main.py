"""Cloud Functions entry point: every deployable target, importable from the repo root.

Deploy one target with `gcloud functions deploy NAME --gen2 --runtime python311
--entry-point NAME --source .` (see docs/deploy.md); run one locally with
`functions-framework --target NAME`; run all on one port with `docflow serve`.

Importing this module loads and checks the settings only. Each target is imported when it is
first looked up (`main.uploads`, `from main import jobs`; PEP 562 `__getattr__`), which
functions-framework does once, when it creates the app for `--target NAME`, before any request.
So a deployed function imports its own module and what its routes need, not the other five.
"""

from typing import TYPE_CHECKING, Any

from shared.platform import log as _log
from shared.platform.config import get_settings as _get_settings
from shared.platform.errors import ConfigError as _ConfigError

try:
    _settings = _get_settings()
except _ConfigError as _error:
    # A wrong or missing setting, or a public secret in deployed mode, stops start-up here:
    # exit status 1 with one line naming the setting (never its value), not a traceback.
    raise SystemExit(f"docflow: refusing to start: {_error.message}") from None
_log.configure(_settings.log_level)

if TYPE_CHECKING:  # what `__getattr__` answers, for type checkers and linters
    from functions.admin import admin
    from functions.jobs import jobs
    from functions.probe_health import probe_health
    from functions.process_jobs import process_jobs
    from functions.retention import retention
    from functions.uploads import uploads

__all__ = ["admin", "jobs", "probe_health", "process_jobs", "retention", "uploads"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import functions

    function = functions.load(name)
    globals()[name] = function
    return function


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
