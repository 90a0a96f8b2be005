"""Redaction and the two log formats."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest

from rotator.logs import REDACTED, REDACTOR, Redactor, fields, setup_logging

CANARY = "canary-Zq9-secret-value"


def test_registered_secret_and_its_base64_forms_are_scrubbed() -> None:
    redactor = Redactor()
    redactor.add(CANARY, username="robot")
    auth = base64.b64encode(f"robot:{CANARY}".encode()).decode()
    plain = base64.b64encode(CANARY.encode()).decode()
    text = redactor.redact(f"a {CANARY} b {auth} c {plain}")
    assert text == f"a {REDACTED} b {REDACTED} c {REDACTED}"


def test_authorization_headers_and_jwts_are_scrubbed_without_registration() -> None:
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    text = Redactor().redact(f"Authorization: Bearer abc.def sent {jwt}")
    assert text == f"Authorization: Bearer {REDACTED} sent {REDACTED}"


def test_short_values_are_not_scrubbed_so_logs_stay_readable() -> None:
    redactor = Redactor()
    redactor.add("abc")
    assert redactor.redact("abc") == "abc"


def test_longer_secret_containing_a_shorter_one_is_scrubbed_whole() -> None:
    redactor = Redactor()
    redactor.add("secret-one", "secret-one-and-more")
    assert redactor.redact("x secret-one-and-more y") == f"x {REDACTED} y"


def _logger_output(json_output: bool, redactor_value: str) -> str:
    stream = io.StringIO()
    setup_logging(level="debug", json_output=json_output, stream=stream)
    REDACTOR.add(redactor_value)
    log = logging.getLogger("rotator.test")
    log.info("minted %s", redactor_value, extra=fields(password=redactor_value, n=3))
    try:
        raise ValueError(f"boom {redactor_value}")
    except ValueError:
        log.exception("failed")
    return stream.getvalue()


def test_json_lines_carry_fields_and_never_the_secret() -> None:
    output = _logger_output(True, CANARY)
    assert CANARY not in output
    first, second = (json.loads(line) for line in output.strip().splitlines()[:2])
    assert first["msg"] == f"minted {REDACTED}"
    assert first["password"] == REDACTED
    assert first["n"] == 3
    assert first["level"] == "info"
    assert second["msg"] == "failed"
    assert "ValueError: boom [redacted]" in second["exception"]


@pytest.mark.parametrize("json_output", [True, False])
def test_tracebacks_are_redacted_in_both_formats(json_output: bool) -> None:
    output = _logger_output(json_output, CANARY + "-2")
    assert CANARY not in output
    assert "Traceback" in output
