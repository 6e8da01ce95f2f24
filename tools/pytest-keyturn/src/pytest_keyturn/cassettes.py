"""vcrpy settings for keyturn cassettes: where they live, how they match, how they are scrubbed.

Scrubbing happens on record, so a cassette file never holds a live secret, while the test
that records still sees the real values:

* request headers: ``authorization`` (and cookies) are dropped;
* request form bodies: ``client_secret``, ``client_assertion`` (a signed JWT that
  authenticates the client, RFC 7523), ``code``, ``code_verifier``, ``refresh_token``,
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
loads a cassette. An ID token signed with a key made for cassettes (its ``kid`` starts with
``keyturn-cassette-``, see :mod:`pytest_keyturn.signing`) is left whole: it verifies only
against the key set of its own cassette, so it is a credential nowhere, and keyturn verifies
its signature on replay as it does at every sign-in.

Personal data (names, emails, logins, avatars: :data:`PERSONAL_FIELDS`) is replaced when a
cassette is *saved* (vcrpy's ``before_save_interaction``), in JSON response bodies at any depth
and in the claims segment of an ID token; see :func:`scrub_personal_data`. Ids, ``sub``,
booleans and the shape of the body stay, as do the claims keyturn checks (``nonce``, ``aud``,
``iss``). Replay is left alone: a hand-written cassette is played back exactly as written.

What counts as a live secret
----------------------------

:func:`scan_cassette` (the conformance suite's ``test_cassettes_hold_no_secrets`` and the
repository's hygiene test run it on every cassette) reads each interaction and reports every
value that could still be used, naming the interaction, where the value sits and its field,
never the value itself:

* a **JSON Web Token** anywhere (base64url segments joined by dots, the first decoding to a
  JSON object with ``"alg"``): a JWT access token, a client assertion, an ID token with the
  provider's signature. Not reported: a token whose header ``kid`` starts with
  ``keyturn-cassette-`` (signed with a key made for cassettes, see
  :mod:`pytest_keyturn.signing`), and the scrubber's claims-only form
  ``REDACTED-<8 hex>.<claims>.REDACTED``, whose first segment is no header;
* a **token field** (:data:`TOKEN_FIELDS`: ``access_token``, ``refresh_token``,
  ``id_token``, ``token``, ``device_code``, ``assertion``, ``subject_token``,
  ``actor_token``; in requests also ``code`` and ``code_verifier``) in a request body, a
  request URI's query or a response body (JSON at any depth, or form-encoded) holding
  :data:`LONG_TOKEN` (16) characters or more that are not a placeholder;
* ``client_secret``, ``client_assertion`` or ``password`` (:data:`SECRET_FIELDS`) holding
  anything but a placeholder, whatever its length;
* an ``Authorization`` or ``Proxy-Authorization`` request header (``Bearer``, ``Basic`` or
  another scheme; the scrubber drops the header, so even a redacted one is reported), a
  ``Cookie`` request header, a ``Set-Cookie`` response header;
* elsewhere (other headers, bodies without fields), the shapes of :data:`SECRET_PATTERNS`:
  Google's ``ya29.`` and ``1//0`` tokens, GitHub's ``gh?_`` and ``github_pat_`` tokens,
  ``Bearer`` and ``Basic`` credentials, ``client_secret=``/``client_assertion=`` pairs.

A **placeholder** (:func:`is_placeholder`) starts with ``REDACTED`` (the scrubber's
``REDACTED`` and ``REDACTED-<8 hex>``, or a hand-written ``REDACTED-refresh-2``), or is
written in words: runs of at most 15 letters and digits joined by ``-``, ``_`` or ``.``, one
of which is ``fake``, ``example``, ``dummy``, ``placeholder``, ``sample``, ``test`` or
``redacted`` (``fake-access-token``, ``example_code_1``). Shorter values are left alone in
token fields (an error code, ``abc``): no provider's token is that short.

Part of pytest-keyturn (vcrpy comes with it).
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .signing import CASSETTE_KID_PREFIX, is_cassette_signed, token_header

__all__ = [
    "CASSETTE_KID_PREFIX",
    "EMAIL_FIELDS",
    "LONG_TOKEN",
    "PERSONAL_FIELDS",
    "REDACTED",
    "REQUEST_SECRET_FIELDS",
    "RESPONSE_SECRET_FIELDS",
    "SECRET_FIELDS",
    "SECRET_PATTERNS",
    "TOKEN_FIELDS",
    "SecretFinding",
    "body_matcher",
    "find_jwt",
    "find_secrets",
    "is_placeholder",
    "make_vcr",
    "redact",
    "scan_cassette",
    "scrub_interaction",
    "scrub_personal_body",
    "scrub_personal_data",
    "scrub_personal_json",
    "scrub_request",
    "scrub_response",
    "vcr_config",
]

REDACTED = "REDACTED"
REQUEST_SECRET_FIELDS = (
    "client_secret",
    "client_assertion",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
    "access_token",
)
RESPONSE_SECRET_FIELDS = ("access_token", "refresh_token", "id_token")
_DROPPED_REQUEST_HEADERS = ("authorization", "cookie", "proxy-authorization")
_DROPPED_RESPONSE_HEADERS = ("content-length", "set-cookie")

#: What live provider secrets look like in text. A cassette matching one of these is not
#: scrubbed. (``Bearer`` followed by an auth-param, as in ``WWW-Authenticate: Bearer
#: realm="..."``, is a challenge, not a credential.)
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "Google access token": re.compile(r"ya29\.[A-Za-z0-9_\-]{20,}"),
    "Google refresh token": re.compile(r"1//0[A-Za-z0-9_\-]{20,}"),
    "GitHub token": re.compile(r"gh[opsur]_[A-Za-z0-9]{30,}"),
    "GitHub fine-grained token": re.compile(r"github_pat_[A-Za-z0-9_]{30,}"),
    "client secret": re.compile(
        r"client_secret[\"']?\s*[:=]\s*[\"']?(?!REDACTED)[A-Za-z0-9_\-]{8,}"
    ),
    "client assertion": re.compile(
        r"client_assertion[\"']?\s*[:=]\s*[\"']?(?!REDACTED)eyJ[A-Za-z0-9_\-]{10,}"
    ),
    "bearer credential": re.compile(
        r"Bearer\s+(?!REDACTED)"
        r"(?!(?:realm|scope|error|error_description|error_uri|resource_metadata)\s*=)"
        r"[A-Za-z0-9_\-.~+/]{16,}"
    ),
    "basic credential": re.compile(r"Basic\s+(?!REDACTED)[A-Za-z0-9+/=]{16,}"),
}

#: Fields that hold a token wherever they appear: a response body (JSON at any depth, or
#: form-encoded), a request body or a request URI's query. A value of :data:`LONG_TOKEN`
#: characters or more that is no placeholder is reported.
TOKEN_FIELDS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "device_code",
        "assertion",
        "subject_token",
        "actor_token",
    }
)
#: Token fields of requests: in a response, ``code`` is most often an error code.
_REQUEST_TOKEN_FIELDS = TOKEN_FIELDS | {"code", "code_verifier"}
#: Fields reported whatever their length unless they hold a placeholder.
SECRET_FIELDS = frozenset({"client_secret", "client_assertion", "password"})
#: The length from which a token field's value is taken for a live token.
LONG_TOKEN = 16

_PLACEHOLDER_WORDS = frozenset(
    {"fake", "example", "dummy", "placeholder", "sample", "test", "redacted"}
)
_WORD = re.compile(r"[A-Za-z0-9]{1,15}")
_CREDENTIAL_REQUEST_HEADERS = ("authorization", "proxy-authorization")
#: Runs of base64url segments joined by dots: where a compact JWS or JWE may sit.
_DOTTED = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]*){2,}")
_ALG = re.compile(r"[A-Za-z0-9+\-]{1,20}")


def is_placeholder(value: str) -> bool:
    """Whether ``value`` obviously stands for a secret rather than being one.

    True for a value starting with ``REDACTED`` (what the scrubber writes), and for one
    written in words: runs of at most 15 letters and digits joined by ``-``, ``_`` or ``.``,
    one of which is a placeholder word (``fake``, ``example``, ``dummy``, ``placeholder``,
    ``sample``, ``test``, ``redacted``), in any case. A live token has long random runs.
    """
    if value.startswith(REDACTED):
        return True
    words = re.split(r"[-_.]", value)
    return all(_WORD.fullmatch(word) for word in words) and any(
        word.lower() in _PLACEHOLDER_WORDS for word in words
    )


def find_jwt(text: str) -> str | None:
    """What the first live-looking JSON Web Token in ``text`` is, or ``None``.

    A run of base64url segments joined by dots holds a token where a segment with two more
    after it decodes to a JSON object with ``"alg"`` (a JOSE header). Tokens signed with a
    key made for cassettes (header ``kid`` starting with :data:`CASSETTE_KID_PREFIX`) are not
    live; neither is the scrubber's claims-only form, whose first segment
    (``REDACTED-<8 hex>``) is no header.

    :return: a description naming the algorithm, never the token.
    """
    for match in _DOTTED.finditer(text):
        segments = match.group(0).split(".")
        for start in range(len(segments) - 2):
            first = segments[start]
            if len(first) < 8 or not first.startswith("e"):
                continue  # a JSON object's base64url always starts with "e"
            header = token_header(first)
            alg = header.get("alg")
            if not isinstance(alg, str):
                continue
            kid = header.get("kid")
            if isinstance(kid, str) and kid.startswith(CASSETTE_KID_PREFIX):
                continue
            shown = alg if _ALG.fullmatch(alg) else "not readable"
            if "enc" in header:
                return f"an encrypted JWT (alg {shown})"
            if alg == "none":
                return "an unsigned JWT (alg none) with a header of its own"
            return f"a signed JWT (alg {shown})"
    return None


def find_secrets(text: str) -> list[str]:
    """The kinds of live-looking secret in ``text``: names of :data:`SECRET_PATTERNS`, and
    ``"JSON Web Token"`` for a token :func:`find_jwt` finds. Empty when clean."""
    found = [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    if find_jwt(text) is not None:
        found.append("JSON Web Token")
    return found


@dataclass(frozen=True)
class SecretFinding:
    """One live-looking secret in a cassette: where it is, never what it is.

    :ivar interaction: the index of the interaction in the file, or ``None`` for a file that
        is not a cassette (read as text).
    :ivar place: ``request URI``, ``request header``, ``request body``, ``response header``,
        ``response body`` or ``file``.
    :ivar field: the field, header or query parameter (``authed_user.access_token`` for a
        nested JSON field), or ``None`` for a body without fields.
    :ivar problem: what the value looks like: ``a signed JWT (alg RS256)``.
    """

    interaction: int | None
    place: str
    field: str | None
    problem: str

    def __str__(self) -> str:
        where = "" if self.interaction is None else f"interaction {self.interaction}, "
        if self.field is None:
            what = self.place
        elif self.place.endswith("header"):
            what = f"{self.place} {self.field}"
        elif self.place == "request URI":
            what = f"request URI parameter {self.field}"
        else:
            what = f"{self.place} field {self.field}"
        return f"{where}{what}: {self.problem}"


def _value_problem(name: str | None, value: Any, token_fields: frozenset[str]) -> str | None:
    """What is wrong with one field's value, or ``None`` when it is harmless."""
    if not isinstance(value, str) or not value:
        return None
    jwt = find_jwt(value)
    if jwt is not None:
        return jwt
    names = [kind for kind, pattern in SECRET_PATTERNS.items() if pattern.search(value)]
    if names:
        return f"what looks like a live {', '.join(names)}"
    if name in SECRET_FIELDS or name in token_fields:
        if is_placeholder(value) or is_cassette_signed(value):
            return None
        if name in SECRET_FIELDS:
            wanted = "REDACTED" if name == "client_secret" else "REDACTED-<8 hex>"
            return f"a value that is not a placeholder ({len(value)} characters); write {wanted}"
        if len(value) >= LONG_TOKEN:
            return (
                f"a long opaque value ({len(value)} characters), not a placeholder; the "
                "scrubbed form is REDACTED-<8 hex>"
            )
    return None


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """``(dotted path, key, value)`` for every scalar of decoded JSON."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(item, dict | list):
                yield from _leaves(item, where)
            else:
                yield where, str(key), item
    elif isinstance(value, list):
        for number, item in enumerate(value):
            where = f"{path}[{number}]"
            if isinstance(item, dict | list):
                yield from _leaves(item, where)
            else:
                yield where, "", item


def _scan_body(
    body: Any, content_type: str, token_fields: frozenset[str]
) -> Iterator[tuple[str | None, str]]:
    """``(field, problem)`` for each live-looking value of a stored body."""
    if isinstance(body, dict):  # a response body as vcrpy stores it: {"string": ...}
        body = body.get("string")
    if body is None:
        return
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    if not text.strip():
        return
    kind = content_type.split(";", 1)[0].strip().lower()
    if _is_json(kind, text):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict | list):
            for path, key, value in _leaves(data):
                problem = _value_problem(key, value, token_fields)
                if problem is not None:
                    yield path, problem
            return
    if kind == "application/x-www-form-urlencoded" or (
        not kind and "=" in text and not any(c.isspace() for c in text.strip())
    ):
        for key, value in parse_qsl(text, keep_blank_values=True):
            problem = _value_problem(key, value, token_fields)
            if problem is not None:
                yield key, problem
        return
    problem = _value_problem(None, text, frozenset())
    if problem is not None:
        yield None, problem


def _header_values(headers: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(headers, dict):
        return
    for key, value in headers.items():
        for item in value if isinstance(value, list) else [value]:
            yield str(key), str(item)


def _credential_header(value: str) -> str:
    scheme, _, credential = value.strip().partition(" ")
    if credential.strip().startswith(REDACTED) or scheme.startswith(REDACTED):
        return "redacted, but the scrubber drops this header: remove it"
    if scheme.lower() in ("bearer", "basic"):
        return f"a {scheme.capitalize()} credential"
    return "a credential"


def _scan_interaction(number: int, interaction: Any) -> Iterator[SecretFinding]:
    request = interaction.get("request") if isinstance(interaction, dict) else None
    response = interaction.get("response") if isinstance(interaction, dict) else None
    request = request if isinstance(request, dict) else {}
    response = response if isinstance(response, dict) else {}
    for key, value in parse_qsl(urlsplit(str(request.get("uri") or "")).query):
        problem = _value_problem(key, value, _REQUEST_TOKEN_FIELDS)
        if problem is not None:
            yield SecretFinding(number, "request URI", key, problem)
    for key, value in _header_values(request.get("headers")):
        if key.lower() in _CREDENTIAL_REQUEST_HEADERS:
            yield SecretFinding(number, "request header", key, _credential_header(value))
        elif key.lower() == "cookie":
            yield SecretFinding(number, "request header", key, "a cookie")
        elif (problem := _value_problem(None, value, frozenset())) is not None:
            yield SecretFinding(number, "request header", key, problem)
    headers = request.get("headers")
    content_type = _header(headers, "content-type") if isinstance(headers, dict) else ""
    for field, problem in _scan_body(request.get("body"), content_type, _REQUEST_TOKEN_FIELDS):
        yield SecretFinding(number, "request body", field, problem)
    for key, value in _header_values(response.get("headers")):
        if key.lower() == "set-cookie":
            yield SecretFinding(number, "response header", key, "a cookie")
        elif (problem := _value_problem(None, value, frozenset())) is not None:
            yield SecretFinding(number, "response header", key, problem)
    headers = response.get("headers")
    content_type = _header(headers, "content-type") if isinstance(headers, dict) else ""
    for field, problem in _scan_body(response.get("body"), content_type, TOKEN_FIELDS):
        yield SecretFinding(number, "response body", field, problem)


def scan_cassette(text: str) -> list[SecretFinding]:
    """Every live-looking secret in a cassette's text (see the module docs); empty when clean.

    :param text: the file's text. A file that is not a vcrpy cassette (not YAML, or without
        an ``interactions`` list) is scanned as text with :func:`find_secrets`.
    """
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    interactions = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(interactions, list):
        return [
            SecretFinding(None, "file", None, f"what looks like a live {kind}")
            for kind in find_secrets(text)
        ]
    found: list[SecretFinding] = []
    for number, interaction in enumerate(interactions):
        found.extend(_scan_interaction(number, interaction))
    return found


def redact(name: str, value: Any) -> Any:
    """The placeholder for one secret value (see the module docs)."""
    if not isinstance(value, str) or not value or value.startswith(REDACTED):
        return value
    if name == "client_secret":
        return REDACTED
    if name == "id_token" and is_cassette_signed(value):
        return value  # signed with a key made for the cassette: a credential nowhere
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


def _decode(body: bytes | str, content_type: str) -> tuple[bytes, str, str | None]:
    """Take a stored body apart for scrubbing.

    :return: the body as bytes; its media type, lower case and without parameters; and its
        text, or None when it is not UTF-8 (such a body passes unchanged).
    """
    raw = body.encode() if isinstance(body, str) else body
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        return raw, kind, raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw, kind, None


def _is_json(kind: str, text: str) -> bool:
    """Whether a body is JSON: by its media type, or by its first character when it has none."""
    return kind.endswith("json") or (not kind and text.lstrip().startswith(("{", "[")))


def scrub_body(body: bytes | str | None, content_type: str, fields: Iterable[str]) -> bytes | None:
    """Replace ``fields`` in a JSON or form-encoded body; other bodies pass unchanged."""
    if body is None:
        return None
    raw, kind, text = _decode(body, content_type)
    if text is None:
        return raw
    if kind == "application/x-www-form-urlencoded":
        return _scrub_form(text, fields).encode()
    if _is_json(kind, text):
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


def scrub_response(
    response: dict[str, Any], fields: Iterable[str] = RESPONSE_SECRET_FIELDS
) -> dict[str, Any]:
    """vcrpy ``before_record_response``: redact tokens in the body, drop stale lengths.

    :param fields: the body fields to redact; ``keyturn record`` leaves ``id_token`` to the
        signer of :mod:`pytest_keyturn.signing`, which runs when the cassette is saved.
    """
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in _DROPPED_RESPONSE_HEADERS:
            del headers[name]
    content_type = _header(headers, "content-type")
    body = response.get("body", {})
    if isinstance(body, dict) and body.get("string") is not None:
        scrubbed = scrub_body(body["string"], content_type, fields)
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
    """Keyword arguments for ``vcr.VCR(**...)``; :func:`make_vcr` adds the body matcher.

    Needs a vcrpy with ``before_save_interaction`` (which :func:`make_vcr` checks for).
    """
    return {
        "cassette_library_dir": str(cassette_dir),
        "record_mode": record_mode,
        "match_on": ["method", "uri", "keyturn_body"],
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "before_save_interaction": scrub_interaction,
        "decode_compressed_response": True,
    }


def make_vcr(cassette_dir: str | Path, *, record_mode: str = "none") -> Any:
    """A ``vcr.VCR`` with keyturn's scrubbing and matching.

    Requests match on method, full URI and body fields, so a cassette also proves what
    keyturn *sends*. ``record_mode="none"`` (the default) replays only and fails on any
    request the cassette does not hold.

    With a vcrpy too old to have ``before_save_interaction``, personal data is scrubbed by
    the response hook instead, which vcrpy also runs on replay.
    """
    import vcr

    config = vcr_config(cassette_dir, record_mode=record_mode)
    if "before_save_interaction" not in inspect.signature(vcr.VCR).parameters:
        del config["before_save_interaction"]
        config["before_record_response"] = _scrub_response_and_personal_data
    recorder = vcr.VCR(**config)
    recorder.register_matcher("keyturn_body", body_matcher)
    return recorder


def _scrub_response_and_personal_data(response: dict[str, Any]) -> dict[str, Any]:
    return scrub_personal_data(scrub_response(response))


# -- personal data ------------------------------------------------------------------------

_AVATAR = "https://example.com/avatar.png"
_HANDLE = "example-user"

#: Response fields holding personal data, and the placeholder each one gets (``name`` only in
#: an object that identifies someone: one with ``sub``, ``id``, ``login``, ``email``...). Emails
#: (``email`` and :data:`EMAIL_FIELDS`) are numbered instead: ``user@example.com``,
#: ``user2@example.com``... in the order they appear, so distinct addresses stay distinct.
PERSONAL_FIELDS: dict[str, str] = {
    "name": "Example User",
    "given_name": "Example",
    "family_name": "User",
    "middle_name": "Example",
    "nickname": _HANDLE,
    "preferred_username": _HANDLE,
    "login": _HANDLE,
    "username": _HANDLE,
    "twitter_username": _HANDLE,
    "picture": _AVATAR,
    "avatar_url": _AVATAR,
    "profile": "https://example.com/example-user",
    "website": "https://example.com/",
    "blog": "https://example.com/",
    "gravatar_id": "",
    "bio": "Example bio",
    "company": "Example Org",
    "location": "Example City",
    "phone_number": "+1 555 0100",
    "birthdate": "2000-01-01",
    "hd": "example.com",
}
#: Fields holding an email address.
EMAIL_FIELDS = ("email", "notification_email")
#: Fields whose value can also appear as a path segment of the body's URLs (GitHub's
#: ``https://api.github.com/users/<login>/repos``).
_HANDLE_FIELDS = ("login", "username", "preferred_username", "nickname")
#: ``name`` is personal only next to one of these (GitHub's ``plan.name`` is not).
_IDENTITY_FIELDS = frozenset({"sub", "id", "login", "username", "email", "given_name"})
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_TLDS = ("example", "test", "invalid", "localhost")


def _reserved(host: str) -> bool:
    """Whether ``host`` is a domain reserved for documentation (RFC 2606, RFC 6761)."""
    host = host.lower().rstrip(".")
    if host in _RESERVED_DOMAINS or any(host.endswith("." + d) for d in _RESERVED_DOMAINS):
        return True
    return host.rsplit(".", 1)[-1] in _RESERVED_TLDS


def _is_placeholder(value: str) -> bool:
    """Already harmless: an address or URL on a reserved domain."""
    if "@" in value and "://" not in value:
        return _reserved(value.rsplit("@", 1)[1])
    if "://" in value:
        return _reserved(urlsplit(value).hostname or "")
    return False


class _PersonalScrubber:
    """One body's worth of state: the emails seen so far and the handles to hide in URLs."""

    def __init__(self, handles: Iterable[str]) -> None:
        self.emails: dict[str, str] = {}
        self.handles = [h for h in handles if h and h != _HANDLE]

    def email(self, value: str) -> str:
        if _is_placeholder(value):
            return value
        if value not in self.emails:
            number = len(self.emails) + 1
            self.emails[value] = "user@example.com" if number == 1 else f"user{number}@example.com"
        return self.emails[value]

    def text(self, value: str) -> str:
        for handle in self.handles:
            value = re.sub(rf"(?<=/){re.escape(handle)}(?=[/?#{{]|$)", _HANDLE, value)
        return value

    def walk(self, value: Any) -> Any:
        if isinstance(value, dict):
            person = not _IDENTITY_FIELDS.isdisjoint(value)
            return {key: self.field(key, item, person) for key, item in value.items()}
        if isinstance(value, list):
            return [self.walk(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def field(self, key: str, value: Any, person: bool) -> Any:
        if not isinstance(value, str):
            return self.walk(value)
        if key in EMAIL_FIELDS:
            return self.email(value)
        if key == "id_token":
            return _scrub_id_token(value)
        if key in PERSONAL_FIELDS and (person or key != "name"):
            if not value or _is_placeholder(value):
                return value
            return PERSONAL_FIELDS[key]
        return self.text(value)


def _handles(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _HANDLE_FIELDS and isinstance(item, str) and item:
                found.append(item)
            else:
                found.extend(_handles(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_handles(item))
    return found


def scrub_personal_json(value: Any) -> Any:
    """Replace personal data in decoded JSON (see :data:`PERSONAL_FIELDS`).

    Keys, ids, ``sub``, numbers, booleans and ``null`` are kept; so are emails and URLs on a
    reserved example domain, which makes the function idempotent. An ``id_token`` field has
    its claims segment scrubbed the same way.

    :param value: a decoded JSON document (object, list or scalar).
    :return: a scrubbed copy; ``value`` itself is not changed.
    """
    return _PersonalScrubber(_handles(value)).walk(value)


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _scrub_id_token(value: str) -> str:
    """Scrub an ID token's claims segment; the header and signature segments are kept."""
    parts = value.split(".")
    if len(parts) != 3:
        return value
    try:
        claims = json.loads(_b64decode(parts[1]))
    except (ValueError, TypeError):
        return value
    scrubbed = scrub_personal_json(claims)
    if scrubbed == claims:
        return value  # unchanged: keep the exact bytes, so a second pass is a no-op
    payload = json.dumps(scrubbed, separators=(",", ":")).encode()
    parts[1] = base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")
    return ".".join(parts)


def scrub_personal_body(body: bytes | str | None, content_type: str) -> bytes | None:
    """Replace personal data in a JSON body; any other body passes unchanged.

    :param body: the body as stored in a cassette.
    :param content_type: the body's ``content-type`` header (may be empty).
    :return: the body, re-written compactly only when something was replaced.
    """
    if body is None:
        return None
    raw, kind, text = _decode(body, content_type)
    if text is None or not _is_json(kind, text):
        return raw
    try:
        data = json.loads(text)
    except ValueError:
        return raw
    scrubbed = scrub_personal_json(data)
    if scrubbed == data:
        return raw
    return json.dumps(scrubbed, separators=(",", ":")).encode()


def scrub_personal_data(response: dict[str, Any]) -> dict[str, Any]:
    """Replace personal data in a recorded response (a vcrpy response dict), in place.

    :param response: the response as vcrpy stores it.
    :return: the same dict.
    """
    body = response.get("body", {})
    if isinstance(body, dict) and body.get("string") is not None:
        content_type = _header(response.get("headers", {}), "content-type")
        body["string"] = scrub_personal_body(body["string"], content_type)
    return response


def scrub_interaction(request: Any, response: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """vcrpy ``before_save_interaction``: scrub personal data as a cassette is written."""
    return request, scrub_personal_data(response)
