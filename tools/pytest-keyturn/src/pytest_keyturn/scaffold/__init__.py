"""A new provider plugin distribution, ready to build: what ``keyturn new-provider`` writes.

:func:`generate` renders the templates shipped in ``pytest_keyturn/scaffold/templates``
(plain text with ``${name}`` fields, read with :mod:`importlib.resources`, so they work from
a wheel) into a folder::

    keyturn-NAME/
      pyproject.toml            hatchling; entry point keyturn/NAME; extra "test"
      README.md
      .gitignore
      src/keyturn_NAME/__init__.py   the ProviderSpec (placeholder endpoints) and its hook
      src/keyturn_NAME/py.typed
      tests/test_conformance.py      keyturn's conformance suite over cassettes/
      cassettes/README.md            provenance: generated starters, not recordings
      cassettes/<scenario>.yaml      exchange_code, refresh_ok, refresh_invalid_grant,
                                     refresh_transient (and refresh_rotated if rotating)

The starter cassettes follow RFC 6749 (§4.1.3, §5.1, §5.2, §6) for the placeholder endpoints
and are already in the scrubbed form keyturn's recorder writes, so the conformance suite
passes before a single real request is made. They are to be replaced by recordings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from urllib.parse import urlencode

from keyturn import __version__
from keyturn.errors import KeyturnError
from pytest_keyturn.scenarios import STANDARD_SCENARIOS

__all__ = [
    "PROVIDER_ID",
    "STANDARD_SCENARIOS",
    "ScaffoldError",
    "Starter",
    "check_display_name",
    "check_provider_id",
    "generate",
    "starters",
]

#: What a provider id may look like (the same rule as :class:`keyturn.ProviderSpec`).
PROVIDER_ID = re.compile(r"^[a-z][a-z0-9_-]*$")
#: The client id and redirect URI the starter cassettes were "sent" with.
CLIENT_ID = "example-client-id"
_JSON_HEADERS = (
    ("cache-control", "no-store"),
    ("content-type", "application/json;charset=UTF-8"),
    ("pragma", "no-cache"),
)
_TRANSIENT_PAGE = (
    "<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>"
    "<h1>Service Unavailable</h1></body></html>"
)


class ScaffoldError(KeyturnError):
    """The plugin cannot be generated (bad name, or the target folder is in use)."""


@dataclass(frozen=True)
class Starter:
    """One starter cassette.

    :ivar scenario: its scenario name (and file name without ``.yaml``).
    :ivar summary: what it shows, for ``cassettes/README.md``.
    :ivar text: the YAML.
    :ivar recordable: whether ``keyturn record`` can replace it with a recording; a passing
        failure (``refresh_transient``) cannot be provoked on demand and is written by hand.
    """

    scenario: str
    summary: str
    text: str
    recordable: bool = True


def _template(name: str) -> Template:
    source = resources.files(__name__).joinpath("templates", name)
    return Template(source.read_text(encoding="utf-8"))


def _placeholder(label: str) -> str:
    """A token placeholder in the scrubber's own form, from a descriptive label."""
    from pytest_keyturn.cassettes import redact

    return str(redact("token", label))


def _json(fields: dict[str, object]) -> str:
    import json

    return json.dumps(fields, separators=(",", ":"))


def _headers(pairs: tuple[tuple[str, str], ...]) -> str:
    return "\n".join(f"      {name}:\n      - {value}" for name, value in pairs)


def starters(
    name: str,
    display_name: str,
    token_endpoint: str,
    redirect_uri: str,
    *,
    rotating: bool = False,
    scope: str = "profile email",
) -> list[Starter]:
    """The starter cassettes for a provider, as RFC 6749 describes its token endpoint.

    :param name: the provider id.
    :param display_name: the provider's display name, for the header comments.
    :param token_endpoint: where the requests go.
    :param redirect_uri: the redirect URI the exchange sends.
    :param rotating: whether refreshes return a new refresh token; adds ``refresh_rotated``.
    :param scope: the scope the token responses report.
    :return: one :class:`Starter` per standard scenario that applies.
    """
    issued = _placeholder(f"{name} access token from the exchange")
    refresh = _placeholder(f"{name} refresh token from the exchange")
    refreshed = _placeholder(f"{name} access token from a refresh")
    rotated = _placeholder(f"{name} refresh token from a refresh")
    refreshed_again = _placeholder(f"{name} access token from the next refresh")
    rotated_again = _placeholder(f"{name} refresh token from the next refresh")
    secret = {"client_id": CLIENT_ID, "client_secret": "REDACTED"}
    exchange_form = {
        "grant_type": "authorization_code",
        "code": _placeholder(f"{name} authorization code"),
        "redirect_uri": redirect_uri,
        "code_verifier": _placeholder(f"{name} PKCE code verifier"),
        **secret,
    }
    refresh_form = {"grant_type": "refresh_token", "refresh_token": refresh, **secret}
    bearer = {"token_type": "Bearer", "expires_in": 3600}
    refresh_body = {"access_token": refreshed, **bearer, "scope": scope}
    if rotating:
        refresh_body["refresh_token"] = rotated
    rotation = "a new `refresh_token` (the spec rotates)" if rotating else "no `refresh_token`"
    cases = [
        (
            "exchange_code",
            "`authorization_code` grant with PKCE verifier; 200 with `access_token`, "
            "`token_type`, `expires_in`, `refresh_token`, `scope` (RFC 6749 §4.1.3, §5.1)",
            exchange_form,
            200,
            {"access_token": issued, **bearer, "refresh_token": refresh, "scope": scope},
        ),
        (
            "refresh_ok",
            f"`refresh_token` grant; 200 with a new `access_token` and {rotation} (§6)",
            refresh_form,
            200,
            refresh_body,
        ),
    ]
    if rotating:
        # The next refresh of the chain: it spends the refresh token refresh_ok returned and
        # gets one of its own, as a rotating provider answers it.
        cases.append(
            (
                "refresh_rotated",
                "the next `refresh_token` grant, spending the refresh token `refresh_ok` "
                "returned; 200 with a new `access_token` and another new `refresh_token` (§6)",
                {**refresh_form, "refresh_token": rotated},
                200,
                {
                    "access_token": refreshed_again,
                    **bearer,
                    "scope": scope,
                    "refresh_token": rotated_again,
                },
            )
        )
    cases.append(
        (
            "refresh_invalid_grant",
            "`refresh_token` grant with a dead refresh token (with rotation, the one "
            "`refresh_ok` spent); 400 `invalid_grant` (§5.2): permanent",
            refresh_form,
            400,
            {
                "error": "invalid_grant",
                "error_description": "The refresh token is invalid, expired or revoked.",
            },
        )
    )
    template = _template("cassettes/token_request.yaml.tmpl")
    result = []
    for scenario, summary, form, status, body in cases:
        text = template.substitute(
            display_name=display_name,
            name=name,
            scenario=scenario,
            replace=f"Replace it with `keyturn record {name} {scenario}`",
            request_body=urlencode(form),
            token_endpoint=token_endpoint,
            response_body=_json(body),
            response_headers=_headers(_JSON_HEADERS),
            status=status,
            message="OK" if status == 200 else "Bad Request",
        )
        result.append(Starter(scenario, summary, text))
    transient = template.substitute(
        display_name=display_name,
        name=name,
        scenario="refresh_transient",
        replace="A passing failure cannot be provoked on demand: keep it or write the "
        "provider's own 5xx page by hand",
        request_body=urlencode(refresh_form),
        token_endpoint=token_endpoint,
        response_body=_TRANSIENT_PAGE,
        response_headers=_headers((("content-type", "text/html; charset=UTF-8"),)),
        status=503,
        message="Service Unavailable",
    )
    result.append(
        Starter(
            "refresh_transient",
            "`refresh_token` grant answered 503 with an HTML page: transient, retried later",
            transient,
            recordable=False,
        )
    )
    return result


def _display_name(name: str) -> str:
    return " ".join(part.capitalize() for part in re.split(r"[-_]+", name) if part)


def check_display_name(text: str) -> None:
    """Check that ``text`` can stand as the provider's display name in every written file.

    It is written into Python strings and docstrings, TOML, YAML comments and Markdown
    as it is, so it may not hold a quote, a backslash or a control character (a newline).

    :raises ScaffoldError: it holds one.
    """
    if any(char in '"\\' or not char.isprintable() for char in text):
        raise ScaffoldError(
            f"display name {text!r} holds a quote, a backslash or a control character"
        )


def check_provider_id(name: str) -> None:
    """Check that ``name`` can be a provider id (:data:`PROVIDER_ID`).

    :raises ScaffoldError: it cannot, with the rule in the message.
    """
    if not PROVIDER_ID.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a provider id: use lowercase letters, digits, '-' and '_', "
            "starting with a letter"
        )


def generate(
    name: str,
    output: str | Path | None = None,
    *,
    display_name: str | None = None,
    rotating: bool = False,
) -> list[Path]:
    """Write a new provider plugin distribution.

    :param name: the provider id: lowercase letters, digits, ``-`` and ``_``, starting with
        a letter. The package is ``keyturn_<name>`` with ``-`` turned into ``_``.
    :param output: the folder to write; ``./keyturn-<name>`` by default. It must not exist
        or be empty.
    :param display_name: the provider's name as people write it (default: from ``name``).
    :param rotating: the provider rotates refresh tokens (the spec says so, and a
        ``refresh_rotated`` starter is written).
    :return: the files written, relative to the output folder.
    :raises ScaffoldError: the name is not a provider id, the display name cannot be written
        as it is, or the folder is not empty.
    """
    check_provider_id(name)
    if display_name is not None:
        check_display_name(display_name)
    target = Path(output) if output is not None else Path(f"keyturn-{name}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} exists and is not an empty folder")
    package = "keyturn_" + name.replace("-", "_")
    shown = display_name or _display_name(name)
    host = name.replace("_", "-") + ".example.com"
    fields = {
        "name": name,
        "display_name": shown,
        "distribution": "keyturn-" + name.replace("_", "-"),
        "package": package,
        "constant": name.replace("-", "_").upper(),
        "host": host,
        "rotating": str(rotating),
        "env_prefix": "KEYTURN_" + name.upper().replace("-", "_") + "_",
        "keyturn_version": ".".join(__version__.split(".")[:2]),
    }
    made = starters(
        name,
        shown,
        f"https://{host}/oauth/token",
        f"https://app.example.com/auth/callback/{name}",
        rotating=rotating,
    )
    rows = "\n".join(
        f"| `{s.scenario}.yaml` | {s.summary} | Generated starter written from RFC 6749, "
        + (
            f"not recorded; replace with `keyturn record {name} {s.scenario}` |"
            if s.recordable
            else "not recorded; cannot be provoked on demand, so kept or written by hand |"
        )
        for s in made
    )
    files: dict[str, str] = {
        "pyproject.toml": _template("pyproject.toml.tmpl").substitute(fields),
        "README.md": _template("README.md.tmpl").substitute(fields),
        ".gitignore": _template("gitignore.tmpl").substitute(fields),
        f"src/{package}/__init__.py": _template("package_init.py.tmpl").substitute(fields),
        f"src/{package}/py.typed": "",
        "tests/test_conformance.py": _template("test_conformance.py.tmpl").substitute(fields),
        "cassettes/README.md": _template("cassettes_README.md.tmpl").substitute(fields, rows=rows),
    }
    files.update({f"cassettes/{s.scenario}.yaml": s.text for s in made})
    written = []
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(Path(relative))
    return written
