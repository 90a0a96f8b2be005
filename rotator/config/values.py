"""Scalar values of the config: durations, Kubernetes names, globs, hosts, label selectors."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

# Kubernetes object names: DNS-1123 labels for namespaces and clusters, subdomains for Secrets.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# fnmatch globs over namespace names: name characters, * and ?, and [...] / [!...] classes.
GLOB = re.compile(r"^(?:[a-z0-9*?-]|\[!?[a-z0-9-]+\])+$")
# host[:port] as written in .dockerconfigjson; no scheme, no path.
HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$"
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# The label selector grammar of Kubernetes (equality- and set-based), checked before use so a
# typo is a config error rather than a 400 from every API server.
_LABEL_KEY = r"(?:[a-z0-9A-Z.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_LABEL_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
SELECTOR_TERM = re.compile(
    rf"^\s*(?:!?{_LABEL_KEY}|{_LABEL_KEY}\s*(?:=|==|!=)\s*{_LABEL_VALUE}"
    # The lookahead refuses an empty set, "in ()", which Kubernetes rejects as well.
    rf"|{_LABEL_KEY}\s+(?:in|notin)\s+\((?!\s*\))\s*{_LABEL_VALUE}(?:\s*,\s*{_LABEL_VALUE})*\s*\))"
    r"\s*$"
)
# A key of a Secret's data, as the API server accepts it.
DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# OCI distribution spec: repository name components and a tag or digest reference.
REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
REFERENCE = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|sha256:[a-f0-9]{64})$")
ENDPOINT = re.compile(r"^https://[^/\s]+/?$")
_DURATION_HINT = "write e.g. 90s, 5m or 1h30m"


class KeyProblem(ValueError):
    """A model-level check that is about one key: reported at ``<model path>.<key>`` rather
    than at the model, so the message points at the line to change."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def parse_duration(value: object) -> timedelta:
    """``90``, ``"90"``, ``"90s"``, ``"500ms"``, ``"1h30m"`` → timedelta. Bare numbers are
    seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got true/false; {_DURATION_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        seconds = _duration_text(value.strip())
    else:
        raise ValueError(f"expected a duration; {_DURATION_HINT}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite; {_DURATION_HINT}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is too long for a duration") from None


def _duration_text(text: str) -> float:
    if text.startswith("-"):
        raise ValueError("a duration cannot be negative")
    if _NUMBER.match(text):
        return float(text)
    pos, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"{text!r} is not a duration; {_DURATION_HINT} (units: ms, s, m, h, d)")
    return seconds


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use at most 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


DnsLabel = Annotated[str, BeforeValidator(lambda v: _dns_label(v) if isinstance(v, str) else v)]


def split_selector(selector: str) -> list[str]:
    """Split on the commas that separate terms, not those inside ``in (a, b)``."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()] if depth == 0 else []
