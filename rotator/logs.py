"""Structured logging with redaction: JSON lines when stderr is not a terminal, readable text
when it is. Every record passes the redactor, which knows each secret value minted or read in
this process and scrubs it — and its base64 forms — from the message and the fields.

Redaction is the second line of defence: the code never logs a secret on purpose.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "[redacted]"
# Bearer tokens and ACR refresh tokens are JWTs; scrub any that slip into a message.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_AUTH_HEADER = re.compile(r"(?i)\b(authorization:\s*)(basic|bearer)\s+\S+")
# Secrets shorter than this are not scrubbed by value: replacing every "a" would make logs
# unreadable, and such values are not tokens anyway.
_MIN_SECRET_LENGTH = 4


class Redactor:
    """A process-wide set of secret values to scrub, safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None

    def add(self, *secrets: str, username: str | None = None) -> None:
        """Register secret values; with a username, also the ``auth`` field base64 forms."""
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) < _MIN_SECRET_LENGTH:
                continue
            forms.add(secret)
            forms.add(base64.b64encode(secret.encode()).decode())
            if username is not None:
                forms.add(base64.b64encode(f"{username}:{secret}".encode()).decode())
        with self._lock:
            if forms <= self._values:
                return
            self._values = self._values | forms
            # Longest first, so a value that contains another is scrubbed whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)} {REDACTED}", text)
        return _JWT.sub(REDACTED, text)

    def redact_value(self, value: object) -> object:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(v) for v in value]
        return value


REDACTOR = Redactor()


def fields(**values: object) -> dict[str, Any]:
    """``logger.info("msg", extra=fields(target=..., reason=...))``: structured fields."""
    return {"fields": values}


class _RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redactor.redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are rendered by the formatter; scrub the rendered text there.
            record.exc_text = self._redactor.redact(
                logging.Formatter().formatException(record.exc_info)
            )
            record.exc_info = None
        extra = getattr(record, "fields", None)
        if isinstance(extra, Mapping):
            record.fields = self._redactor.redact_value(extra)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, Mapping):
            document.update({k: _jsonable(v) for k, v in extra.items()})
        if record.exc_text:
            document["exception"] = record.exc_text
        return json.dumps(document, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = getattr(record, "fields", None)
        pairs = (
            "".join(f" {k}={_jsonable(v)}" for k, v in extra.items())
            if isinstance(extra, Mapping)
            else ""
        )
        line = f"{record.levelname.lower():<7} {record.getMessage()}{pairs}"
        return f"{line}\n{record.exc_text}" if record.exc_text else line


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        return [_jsonable(v) for v in value]
    return str(value)


def setup_logging(
    *, level: str = "info", json_output: bool | None = None, stream: TextIO | None = None
) -> None:
    """Configure the root logger once: JSON unless the stream is a terminal."""
    stream = stream or sys.stderr
    if json_output is None:
        json_output = not stream.isatty()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RedactingFilter(REDACTOR))
    handler.setFormatter(JsonFormatter() if json_output else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The kubernetes client and urllib3 log request details at debug; keep them quiet.
    for noisy in ("urllib3", "kubernetes", "httpx", "httpcore", "botocore", "azure"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
