"""vcrpy settings for keyturn cassettes: where they live, how they match, how they are scrubbed.

Scrubbing happens on record, so a cassette file never holds a live secret, while the test
that records still sees the real values:

* request headers: ``authorization`` (and cookies) are dropped;
* request form bodies: ``client_secret``, ``code``, ``code_verifier``, ``refresh_token``,
  ``token`` and ``access_token`` are redacted;
* response bodies (JSON or form-encoded): ``access_token``, ``refresh_token`` and
  ``id_token`` are redacted;
* ``content-length`` is dropped from both sides, since the scrubbed body has another length.

A redacted token reads ``REDACTED-<8 hex>``, the start of its SHA-256: the value is gone, but
a cassette still shows that a refresh sent the refresh token the exchange returned, and that
a rotating provider returned a different one. Client secrets read plain ``REDACTED``. Values
that already start with ``REDACTED`` are left alone, so scrubbing twice changes nothing.

Bodies match by their fields: secret fields must be present on both sides, whatever their
values; every other field must be equal. Hand-written cassettes can therefore use any
placeholder, and tests may send any token.

An ID token keeps its claims segment (``REDACTED-<8 hex>.<claims>.REDACTED``): keyturn checks
its nonce, audience and issuer on exchange, and vcrpy runs the response filter again when it
loads a cassette. Claims are personal data: check a new recording by eye before committing it.

Needs the ``testing`` extra: ``pip install keyturn[testing]``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "REDACTED",
    "REQUEST_SECRET_FIELDS",
    "RESPONSE_SECRET_FIELDS",
    "SECRET_PATTERNS",
    "body_matcher",
    "find_secrets",
    "make_vcr",
    "redact",
    "scrub_request",
    "scrub_response",
    "vcr_config",
]

REDACTED = "REDACTED"
REQUEST_SECRET_FIELDS = (
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
    "access_token",
)
RESPONSE_SECRET_FIELDS = ("access_token", "refresh_token", "id_token")
_DROPPED_REQUEST_HEADERS = ("authorization", "cookie", "proxy-authorization")
_DROPPED_RESPONSE_HEADERS = ("content-length", "set-cookie")

#: What live provider secrets look like. A cassette matching one of these is not scrubbed.
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "Google access token": re.compile(r"ya29\.[A-Za-z0-9_\-]{20,}"),
    "Google refresh token": re.compile(r"1//0[A-Za-z0-9_\-]{20,}"),
    "GitHub token": re.compile(r"gh[opsur]_[A-Za-z0-9]{30,}"),
    "GitHub fine-grained token": re.compile(r"github_pat_[A-Za-z0-9_]{30,}"),
    "client secret": re.compile(
        r"client_secret[\"']?\s*[:=]\s*[\"']?(?!REDACTED)[A-Za-z0-9_\-]{8,}"
    ),
    "bearer credential": re.compile(r"Bearer\s+(?!REDACTED)[A-Za-z0-9_\-.]{20,}"),
    "basic credential": re.compile(r"Basic\s+[A-Za-z0-9+/=]{16,}"),
}


def find_secrets(text: str) -> list[str]:
    """The names of :data:`SECRET_PATTERNS` that match ``text`` (empty when clean)."""
    return [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]


def redact(name: str, value: Any) -> Any:
    """The placeholder for one secret value (see the module docs)."""
    if not isinstance(value, str) or not value or value.startswith(REDACTED):
        return value
    if name == "client_secret":
        return REDACTED
    digest = f"{REDACTED}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"
    parts = value.split(".")
    if name == "id_token" and len(parts) == 3:
        # Keep the claims readable (nonce, aud, iss are checked on exchange); drop the
        # header and the signature, which are what make the token usable elsewhere.
        return f"{digest}.{parts[1]}.{REDACTED}"
    return digest


def _scrub_form(body: str, fields: Iterable[str]) -> str:
    pairs = parse_qsl(body, keep_blank_values=True)
    wanted = set(fields)
    return urlencode([(k, redact(k, v) if k in wanted else v) for k, v in pairs])


def _scrub_json(value: Any, fields: Iterable[str]) -> Any:
    wanted = set(fields)
    if isinstance(value, dict):
        return {
            k: (redact(k, v) if k in wanted else _scrub_json(v, wanted)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub_json(item, wanted) for item in value]
    return value


def scrub_body(body: bytes | str | None, content_type: str, fields: Iterable[str]) -> bytes | None:
    """Replace ``fields`` in a JSON or form-encoded body; other bodies pass unchanged."""
    if body is None:
        return None
    raw = body.encode() if isinstance(body, str) else body
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    if kind == "application/x-www-form-urlencoded":
        return _scrub_form(text, fields).encode()
    if kind.endswith("json") or (not kind and text.lstrip().startswith(("{", "["))):
        try:
            data = json.loads(text)
        except ValueError:
            return raw
        return json.dumps(_scrub_json(data, fields), separators=(",", ":")).encode()
    return raw


def _header(headers: Mapping[str, Any], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return ""


def scrub_request(request: Any) -> Any:
    """vcrpy ``before_record_request``: drop credential headers, redact secret form fields."""
    for name in list(request.headers):
        if name.lower() in _DROPPED_REQUEST_HEADERS or name.lower() == "content-length":
            del request.headers[name]
    content_type = _header(request.headers, "content-type")
    request.body = scrub_body(request.body, content_type, REQUEST_SECRET_FIELDS)
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy ``before_record_response``: redact tokens in the body, drop stale lengths."""
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in _DROPPED_RESPONSE_HEADERS:
            del headers[name]
    content_type = _header(headers, "content-type")
    body = response.get("body", {})
    if isinstance(body, dict) and body.get("string") is not None:
        scrubbed = scrub_body(body["string"], content_type, RESPONSE_SECRET_FIELDS)
        body["string"] = scrubbed
    return response


def _fields(body: bytes | str | None, content_type: str) -> Any:
    raw = body.encode() if isinstance(body, str) else (body or b"")
    kind = content_type.split(";", 1)[0].strip().lower()
    text = raw.decode("utf-8", "replace")
    if not kind and text:  # a hand-written request without a content type: guess
        stripped = text.lstrip()
        kind = (
            "application/json"
            if stripped.startswith(("{", "["))
            else ("application/x-www-form-urlencoded" if "=" in text else "")
        )
    if kind == "application/x-www-form-urlencoded":
        pairs = sorted(parse_qsl(text, keep_blank_values=True))
        return [(k, "<secret>" if k in REQUEST_SECRET_FIELDS else v) for k, v in pairs]
    if kind.endswith("json"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if isinstance(data, dict):
            return {k: ("<secret>" if k in REQUEST_SECRET_FIELDS else v) for k, v in data.items()}
        return data
    return text


def body_matcher(r1: Any, r2: Any) -> None:
    """vcrpy matcher: bodies carry the same fields; secret fields only need to be present."""
    a = _fields(r1.body, _header(r1.headers, "content-type"))
    b = _fields(r2.body, _header(r2.headers, "content-type"))
    if a != b:
        raise AssertionError(f"request bodies differ: {a!r} != {b!r}")


def vcr_config(cassette_dir: str | Path, *, record_mode: str = "none") -> dict[str, Any]:
    """Keyword arguments for ``vcr.VCR(**...)``; :func:`make_vcr` adds the body matcher."""
    return {
        "cassette_library_dir": str(cassette_dir),
        "record_mode": record_mode,
        "match_on": ["method", "uri", "keyturn_body"],
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
    }


def make_vcr(cassette_dir: str | Path, *, record_mode: str = "none") -> Any:
    """A ``vcr.VCR`` with keyturn's scrubbing and matching.

    Requests match on method, full URI and body fields, so a cassette also proves what
    keyturn *sends*. ``record_mode="none"`` (the default) replays only and fails on any
    request the cassette does not hold.
    """
    import vcr

    recorder = vcr.VCR(**vcr_config(cassette_dir, record_mode=record_mode))
    recorder.register_matcher("keyturn_body", body_matcher)
    return recorder
