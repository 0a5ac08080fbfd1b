"""What a failed Hyperliquid request means: transient (retry) or final, and how long to wait.

Transport failures (timeouts, dropped connections, HTTP 5xx, an HTTP 200 whose body was not JSON) leave a
request's outcome unknown and are retried; HTTP 429 (rate limited) is retried after its Retry-After; other
HTTP 4xx are final. The SDK and ``requests`` are imported inside the functions, so importing this module
stays cheap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_RETRY_AFTER"]


class _GarbledResponse(Exception):
    """HTTP 200 whose body was not JSON (the SDK answers ``{"error": "Could not parse JSON: ..."}``)."""


def _transport_errors() -> tuple[type[BaseException], ...]:
    import requests
    from hyperliquid.utils.error import ServerError

    return (
        requests.exceptions.Timeout,
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        ServerError,
        _GarbledResponse,
    )


def _rate_limited(exc: BaseException) -> bool:
    """HTTP 429 (too many requests): the SDK raises it as a ClientError, but it is transient."""
    return getattr(exc, "status_code", None) == 429


MAX_RETRY_AFTER = 60.0
"""The longest Retry-After (seconds) honoured in one wait; a longer one is waited in several steps by the
caller (the live loop retries a pass within its period)."""


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds an HTTP 429 asked to wait (its Retry-After header: seconds or an HTTP date), else None.

    The SDK puts the headers in ``header`` for a JSON body and in ``error_data`` otherwise."""
    if exc is None or getattr(exc, "status_code", None) != 429:
        return None
    for headers in (getattr(exc, "header", None), getattr(exc, "error_data", None)):
        if not isinstance(headers, Mapping) and not hasattr(headers, "get"):
            continue
        try:
            raw = headers.get("Retry-After")
        except Exception:
            continue
        if raw is None:
            continue
        text = str(raw).strip()
        try:
            seconds = float(text)
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                seconds = parsedate_to_datetime(text).timestamp() - time.time()
            except (TypeError, ValueError):
                continue
        if math.isfinite(seconds):
            return min(max(seconds, 0.0), MAX_RETRY_AFTER)
    return None


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown failure"
    import requests

    if isinstance(exc, requests.exceptions.Timeout):
        return "request timed out"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection failed ({type(exc).__name__})"
    status = getattr(exc, "status_code", None)
    if status is not None:
        text = str(getattr(exc, "message", None) or getattr(exc, "error_message", None) or "")
        return f"HTTP {status} {text[:200]}".rstrip()
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _raise_for_status(response: Any) -> None:
    """The SDK's ``API._handle_exception``, for any error body: HTTP 4xx -> ``ClientError`` (its ``code``, ``msg``
    and ``data`` when the body is a JSON object that has them, else None and the raw text), HTTP 5xx ->
    ``ServerError``. The SDK's own version indexes ``err["code"]`` and ``err["msg"]``, so an HTTP 429 whose JSON body
    lacks them (``{"error": "..."}``, a list, a string) escaped the retry path as a ``KeyError``. The response
    headers are in ``header`` (where :func:`_retry_after` finds Retry-After)."""
    import json

    from hyperliquid.utils.error import ClientError, ServerError

    status = response.status_code
    if status < 400:
        return
    if status >= 500:
        raise ServerError(status, response.text)
    try:
        body = json.loads(response.text)
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("msg") if isinstance(body, dict) else None
    data = body.get("data") if isinstance(body, dict) else None
    raise ClientError(status, code, message if message is not None else response.text, response.headers, data)


def _harden(api: Any) -> Any:
    """``api`` (an SDK ``API``: Info, Exchange, or the bare API) with :func:`_raise_for_status` in place of its
    ``_handle_exception``, so that every HTTP error body is classified (transient or final), never a KeyError."""
    api._handle_exception = _raise_for_status
    return api


def _check_garbled(response: Any) -> Any:
    if (
        isinstance(response, dict)
        and set(response) == {"error"}
        and str(response["error"]).startswith("Could not parse JSON")
    ):
        raise _GarbledResponse(str(response["error"])[:200])
    return response
