"""Cloud Functions entry point: every deployable target, importable from the repo root.

Deploy one target with `gcloud functions deploy NAME --gen2 --runtime python311
--entry-point NAME --source .` (see docs/deploy.md); run one locally with
`functions-framework --target NAME`; run all on one port with `docflow serve`.
"""

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

from functions.admin import admin  # noqa: E402
from functions.jobs import jobs  # noqa: E402
from functions.probe_health import probe_health  # noqa: E402
from functions.process_jobs import process_jobs  # noqa: E402
from functions.retention import retention  # noqa: E402
from functions.uploads import uploads  # noqa: E402

__all__ = ["admin", "jobs", "probe_health", "process_jobs", "retention", "uploads"]
