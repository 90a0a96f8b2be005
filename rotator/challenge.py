"""``WWW-Authenticate`` parsing (RFC 7235 §2.1, §4.1) and the token-realm safety rules.

Pure: no I/O and no HTTP library, so every edge case is unit-tested without a server. The
verifier turns the ``ChallengeError`` raised here into a ``VerificationError``.

A header holds one or more challenges separated by commas, and commas also separate the
parameters of one challenge, so splitting on commas is wrong (a quoted ``scope`` holds commas:
``scope="repository:a:pull,push"``). This is a small scanner over the RFC grammar::

    challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param = token BWS "=" BWS ( token / quoted-string )
    token68    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
"""

from __future__ import annotations

import ipaddress
import re
import socket
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_TCHAR = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
_TOKEN68 = frozenset("-._~+/" + string.ascii_letters + string.digits)
_OWS = " \t"
# What inet_aton accepts besides dotted decimal (2852039166, 0xa9fea9fe, 0251.0376.43518): the
# OS resolver reads these as IPv4 addresses too, so they are checked like literal IPs.
_LEGACY_IPV4 = re.compile(r"^[0-9][0-9a-fA-FxX.]*$")
# The schemes the verifier can answer, most preferred first: a token proves more than Basic.
SUPPORTED_SCHEMES = ("bearer", "basic")


class ChallengeError(ValueError):
    """The header is malformed or offers nothing the rotator can use."""


class UnsafeRealmError(ChallengeError):
    """The token realm is a place credentials must never be sent to."""


@dataclass(frozen=True, kw_only=True)
class Challenge:
    scheme: str  # lower-case: schemes are case-insensitive (RFC 7235 §2.1)
    params: Mapping[str, str] = field(default_factory=dict)  # names lower-cased
    token68: str | None = None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while not self.at_end() and self.text[self.pos] in chars:
            self.pos += 1

    def take(self, allowed: frozenset[str]) -> str:
        start = self.pos
        while not self.at_end() and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start : self.pos]

    def fail(self, what: str) -> ChallengeError:
        return ChallengeError(f"{what} at position {self.pos}")

    def quoted_string(self) -> str:
        self.pos += 1  # the opening quote
        out: list[str] = []
        while not self.at_end():
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(out)
            if char == "\\":  # quoted-pair: the next character stands for itself
                if self.pos + 1 >= len(self.text):
                    break
                char = self.text[self.pos + 1]
                self.pos += 1
            if (ord(char) < 0x20 and char != "\t") or char == "\x7f":
                raise self.fail("control character in a quoted string")
            out.append(char)
            self.pos += 1
        raise self.fail("unterminated quoted string")

    def token68(self) -> str | None:
        """A token68 if one stands here alone (up to a comma or the end); else rewind."""
        start = self.pos
        value = self.take(_TOKEN68)
        if value:
            value += self.take(frozenset("="))
            end = self.pos
            self.skip(_OWS)
            if self.at_end() or self.peek() == ",":
                self.pos = end
                return value
        self.pos = start
        return None

    def param_follows(self) -> bool:
        """Does ``token BWS "="`` start here? (Else a new challenge does.)"""
        start = self.pos
        name = self.take(_TCHAR)
        self.skip(_OWS)
        found = bool(name) and self.peek() == "="
        self.pos = start
        return found

    def params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        while True:
            name = self.take(_TCHAR).lower()
            self.skip(_OWS)
            if not name or self.peek() != "=":
                raise self.fail("expected name=value")
            self.pos += 1
            self.skip(_OWS)
            quoted = self.peek() == '"'
            value = self.quoted_string() if quoted else self.take(_TCHAR)
            if not value and not quoted:
                raise self.fail(f"parameter {name!r} has no value")
            if name in params:  # RFC 7235 §2.1: each name at most once per challenge
                raise self.fail(f"parameter {name!r} repeated")
            params[name] = value
            self.skip(_OWS)
            if self.at_end():
                return params
            if self.peek() != ",":
                raise self.fail("expected ',' after a parameter")
            after_comma = self.pos
            self.skip(_OWS + ",")  # empty list elements are allowed (RFC 7230 §7)
            if self.at_end():
                return params
            if not self.param_follows():
                self.pos = after_comma  # the next challenge starts here
                return params


def parse_challenges(header: str) -> tuple[Challenge, ...]:
    """Every challenge of a ``WWW-Authenticate`` value (several header lines joined by ", ")."""
    scanner = _Scanner(header)
    challenges: list[Challenge] = []
    while True:
        scanner.skip(_OWS + ",")
        if scanner.at_end():
            break
        scheme = scanner.take(_TCHAR)
        if not scheme:
            raise scanner.fail("expected an auth scheme")
        params: dict[str, str] = {}
        token68 = None
        if scanner.peek() in (" ", "\t"):
            scanner.skip(_OWS)
            if not scanner.at_end() and scanner.peek() != ",":
                token68 = scanner.token68()
                if token68 is None:
                    params = scanner.params()
        elif not scanner.at_end() and scanner.peek() != ",":
            raise scanner.fail("expected a space after the auth scheme")
        challenges.append(Challenge(scheme=scheme.lower(), params=params, token68=token68))
    if not challenges:
        raise ChallengeError("empty WWW-Authenticate header")
    return tuple(challenges)


def pick_challenge(challenges: Sequence[Challenge]) -> Challenge:
    """The challenge to answer: Bearer over Basic; nothing else is supported."""
    for scheme in SUPPORTED_SCHEMES:
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    offered = ", ".join(sorted({c.scheme for c in challenges}))
    raise ChallengeError(f"the registry offers only {offered}; the rotator speaks Basic and Bearer")


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = host.removesuffix(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _LEGACY_IPV4.match(host):
            return None
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))  # parsing only, no lookup
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def check_realm(realm: str) -> str:
    """Return ``realm`` if the verifier may send credentials there; raise UnsafeRealmError.

    The realm comes from the registry's answer, so a hostile or compromised registry could name
    any URL. Refused: anything but https (the password would cross the wire in clear), userinfo
    in the URL, and literal link-local addresses (169.254.0.0/16, fe80::/10: cloud metadata
    services, which would then hold the credential). Names are not resolved (no DNS here).
    """
    try:
        parts = urlsplit(realm.strip())
        host = parts.hostname
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError as exc:
        raise UnsafeRealmError(f"realm {realm!r} is not a valid URL") from exc
    if parts.scheme.lower() != "https":
        raise UnsafeRealmError(f"realm {realm!r} is not https; credentials would travel in clear")
    if parts.username is not None or parts.password is not None:
        raise UnsafeRealmError(f"realm {realm!r} carries user information")
    if not host:
        raise UnsafeRealmError(f"realm {realm!r} names no host")
    address = _literal_ip(host)
    if address is not None and (
        address.is_link_local or address.is_unspecified or address.is_multicast
    ):
        raise UnsafeRealmError(
            f"realm {realm!r} is a link-local, unspecified or multicast address "
            "(e.g. a cloud metadata service)"
        )
    return realm.strip()
