"""Cloud Functions entry point: every deployable target, importable from the repo root.

Deploy one target with `gcloud functions deploy NAME --gen2 --runtime python311
--entry-point NAME --source .` (see docs/deploy.md); run one locally with
`functions-framework --target NAME`; run all on one port with `docflow serve`.
"""

from shared import log as _log
from shared.config import get_settings as _get_settings

_settings = _get_settings()  # a wrong or missing setting stops start-up here, naming it
_log.configure(_settings.log_level)

from functions.admin import admin  # noqa: E402
from functions.jobs import jobs  # noqa: E402
from functions.probe_health import probe_health  # noqa: E402
from functions.process_jobs import process_jobs  # noqa: E402
from functions.retention import retention  # noqa: E402
from functions.uploads import uploads  # noqa: E402

__all__ = ["admin", "jobs", "probe_health", "process_jobs", "retention", "uploads"]
