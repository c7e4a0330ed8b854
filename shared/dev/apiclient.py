"""A client of docflow's own HTTP API (product.md §5), for `docflow upload` and `docflow status`;
shared/dev/batch.py drives it for a batch (threads share one client: httpx's is thread-safe).

It speaks the public contract only: a bearer token, JSON bodies, and JSON error bodies
(`{"error": {"code", "message"}}`), which it raises as `ApiError` ("415 unsupported_content:
..."). A server that cannot be reached raises `ApiUnreachable` with a one-line reason.

Uploads stream the file: the multipart body is a generator of chunks (boundary and part
headers, the file in 64 KiB chunks, the closing boundary) with its Content-Length computed up
front, so no copy of the file is held in memory and `on_progress(bytes_sent, total)` follows
the bytes as httpx hands them to the socket.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

import httpx

from shared.platform.errors import ConfigError, DocflowError

CHUNK_SIZE = 64 * 1024
# The statuses that end a job.
TERMINAL_STATUSES = ("completed", "failed", "cancelled")

ProgressCallback = Callable[[int, int], None]


class ApiError(DocflowError):
    """The API answered with an error; `str()` is `<status> <code>: <message>`."""

    default_code = "api_error"

    def __init__(
        self, http_status: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message, code=code, retry_after=retry_after)
        self.http_status = http_status

    def __str__(self) -> str:
        return f"{self.http_status} {self.code}: {self.message}"


class ApiUnreachable(DocflowError):
    """No answer from the API: refused, unresolvable, timed out, cut off."""

    default_code = "api_unreachable"


class FileUnreadable(DocflowError):
    """A local file to upload cannot be read (missing, a directory, no permission, shrank)."""

    default_code = "file_unreadable"


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote_param(value: str) -> str:
    """A multipart header parameter value, encoded as HTML5 forms do (and werkzeug reads)."""
    out = []
    for ch in value:
        if ch == '"':
            out.append("%22")
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"%{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


class MultipartUpload:
    """A `multipart/form-data` body of small text fields and one file, produced in chunks.

    The length is known before a byte is sent (`content_length`), so the request carries a
    Content-Length header instead of chunked transfer encoding.
    """

    def __init__(
        self,
        file: IO[bytes],
        *,
        filename: str,
        size: int,
        fields: Mapping[str, str] | None = None,
        field_name: str = "file",
        content_type: str = "application/octet-stream",
        chunk_size: int = CHUNK_SIZE,
        boundary: str | None = None,
    ) -> None:
        self.file = file
        self.filename = filename
        self.size = size
        self.chunk_size = chunk_size
        self.boundary = boundary or f"docflow-{secrets.token_hex(16)}"
        head = []
        for name, value in (fields or {}).items():
            head.append(
                f"--{self.boundary}\r\n"
                f'Content-Disposition: form-data; name="{_quote_param(name)}"\r\n\r\n'
                f"{value}\r\n"
            )
        head.append(
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{_quote_param(field_name)}"; '
            f'filename="{_quote_param(filename)}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        # errors="replace": a file name that is not valid Unicode (surrogate escapes) still goes.
        self.head = "".join(head).encode("utf-8", "replace")
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def chunks(self, on_progress: ProgressCallback | None = None) -> Iterator[bytes]:
        """The body. `on_progress(file_bytes_sent, file_size)` runs once before the first byte
        and again each time the consumer comes back for more, i.e. after a chunk was sent."""
        if on_progress is not None:
            on_progress(0, self.size)
        yield self.head
        sent = 0
        while sent < self.size:
            chunk = self.file.read(min(self.chunk_size, self.size - sent))
            if not chunk:
                raise FileUnreadable(
                    f"{self.filename} shrank while it was being sent", code="file_changed"
                )
            yield chunk
            sent += len(chunk)
            if on_progress is not None:
                on_progress(sent, self.size)
        yield self.tail


class ApiClient:
    """docflow's HTTP API as one user: `upload()`, `job()`."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base_url = base_url.rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"API_URL must be an http(s) URL, not {base_url!r}")
        try:
            httpx.URL(base_url)
        except httpx.InvalidURL as exc:
            raise ConfigError(f"API_URL is not a valid URL: {exc}") from None
        self.base_url = base_url
        headers = {"Accept": "application/json", "User-Agent": "docflow-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- routes ---------------------------------------------------------------------------

    def upload(
        self,
        path: str | os.PathLike[str],
        priority: str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        template: str | None = None,
    ) -> dict[str, Any]:
        """POST /uploads, streaming the file; returns `{document_id, job_id, status}`."""
        path = Path(path)
        try:
            file = path.open("rb")
        except OSError as exc:
            raise FileUnreadable(f"cannot read {path}: {exc.strerror or exc}") from None
        with file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise FileUnreadable(f"cannot read {path}: not a regular file")
            body = MultipartUpload(
                file,
                filename=path.name,
                size=info.st_size,
                fields={
                    name: value
                    for name, value in (("priority", priority), ("template", template))
                    if value
                }
                or None,
            )
            headers = {
                "Content-Type": body.content_type,
                "Content-Length": str(body.content_length),
            }
            if idempotency_key is not None:
                headers["Idempotency-Key"] = idempotency_key
            response = self._send(
                "POST", "/uploads", headers=headers, content=body.chunks(on_progress)
            )
        return self._json(response)

    def job(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/{id}: status, stage, progress, attempts, error, result."""
        return self._json(self._send("GET", f"/jobs/{quote(job_id, safe='')}"))

    def jobs(self, status: str, *, max_pages: int = 20) -> list[dict[str, Any]]:
        """GET /jobs?status=: the caller's jobs in that status, newest first, page after page
        (200 a page; at most `max_pages`)."""
        found: list[dict[str, Any]] = []
        params: dict[str, str] = {"status": status, "limit": "200"}
        for _ in range(max_pages):
            page = self._json(self._send("GET", "/jobs", params=params))
            found.extend(page.get("jobs") or [])
            cursor = page.get("next_cursor")
            if not cursor:
                break
            params["cursor"] = str(cursor)
        return found

    # --- transport ------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiUnreachable(
                f"the docflow API at {self.base_url} did not answer in time"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            reason = _one_line(str(exc)) or type(exc).__name__
            raise ApiUnreachable(
                f"cannot reach the docflow API at {self.base_url}: {reason}"
            ) from None
        if response.is_error:
            raise _api_error(response)
        return response

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_redirect:
            location = response.headers.get("Location", "?")
            raise ApiError(
                response.status_code,
                "redirected",
                f"the API redirected to {_one_line(location)}; point API_URL there",
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ApiError(
                response.status_code,
                "invalid_response",
                f"{self.base_url} did not answer with docflow's JSON; is API_URL right?",
            )
        return data


def _api_error(response: httpx.Response) -> ApiError:
    """The JSON error body as an ApiError; anything else (a proxy's HTML page) as one line."""
    code, message = "http_error", response.reason_phrase or "error"
    retry_after: int | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        raw = error.get("retry_after")
        if isinstance(raw, int) and not isinstance(raw, bool):
            retry_after = raw
    elif response.text.strip() and "html" not in response.headers.get("Content-Type", ""):
        message = response.text
    return ApiError(
        response.status_code, _one_line(code, 64), _one_line(message), retry_after=retry_after
    )
