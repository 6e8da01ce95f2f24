"""Recording a cassette against a real provider: the logic behind ``keyturn record``.

:func:`record` runs one scenario with the app's real credentials and writes
``<cassette_dir>/<provider>/<scenario>.yaml`` through
:func:`pytest_keyturn.cassettes.make_vcr` in ``record_mode="all"``, so the file is scrubbed
exactly as the shipped scrubber scrubs (tokens, secrets and personal data). The scenario's
name says what is done:

* ``exchange_*``: a sign-in. The authorize URL is shown (and handed to ``browser``), a
  loopback server on ``127.0.0.1`` waits for the redirect, the state is checked and the code
  exchanged. A name containing ``userinfo`` also fetches the profile.
* ``refresh_*``: a refresh with the given refresh token.
* ``userinfo*``: a profile request with the given access token.
* ``revoke*``: a revocation of the given access token (and refresh token, if given).
* ``discovery``: a GET of the provider's discovery document: its ``discovery_url``, else
  its issuer's ``/.well-known/openid-configuration``. No credentials are needed. The
  conformance suite compares the spec with it, and replays it for a spec that reads its
  endpoints from it.

For a spec with a ``discovery_url``, the document is read before the scenario starts, so a
scenario's cassette holds only the scenario's requests (``keyturn record <id> discovery``
records the document itself). For a spec (or a document) with a ``jwks_uri``, keyturn reads
the key set before it sends a code or a refresh token, and that GET is recorded with the
scenario; an ID token that comes back is signed again with a key made for the cassette,
whose public key joins the recorded key set (see :mod:`pytest_keyturn.signing`), so that
replay verifies its signature as a live sign-in does.

An error answer from the provider is recorded like any other (``refresh_invalid_grant`` is
recorded with a dead refresh token); only a request that got no answer fails the recording.
The written file is read back before it is kept: if it still looks like it holds a live
secret, or a personal value the provider sent, it is deleted and :class:`RecordingError`
says why (naming the kind of value, never the value).

Only the standard library and vcrpy are needed.
"""

from __future__ import annotations

import datetime
import inspect
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from keyturn.client import Keyturn
from keyturn.errors import ConfigurationError, KeyturnError, ProviderError, TransportError
from keyturn.idtoken import IdTokenError, unverified_claims
from keyturn.models import REVEAL, Profile, ProviderSpec, TokenSet

from .signing import CassetteSigner

__all__ = [
    "ACCESS_TOKEN_ENV",
    "CALLBACK_PATH",
    "DEFAULT_PORT",
    "REFRESH_TOKEN_ENV",
    "CallbackServer",
    "Recording",
    "RecordingError",
    "Scenario",
    "cassette_path",
    "discovery_url",
    "record",
    "save_tokens",
]

#: The default loopback port: a fixed port keeps the redirect URI the same on every run, so
#: it is registered with the provider once.
DEFAULT_PORT = 8765
#: The path of the loopback redirect URI: ``http://127.0.0.1:<port>/callback``.
CALLBACK_PATH = "/callback"
#: Environment variables that may hold the tokens a scenario needs (never a command argument).
REFRESH_TOKEN_ENV = "KEYTURN_RECORD_REFRESH_TOKEN"
ACCESS_TOKEN_ENV = "KEYTURN_RECORD_ACCESS_TOKEN"

ScenarioKind = Literal["exchange", "refresh", "userinfo", "revoke", "discovery"]
_SCENARIO_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Stands in for an access token a refresh does not send (TokenSet needs one).
_UNUSED = "unused-access-token"


class RecordingError(KeyturnError):
    """A recording could not be made or was refused; the message says why, in one line."""


@dataclass(frozen=True)
class Scenario:
    """What a scenario name asks for.

    :ivar name: the scenario, also the cassette's file name without ``.yaml``.
    :ivar kind: ``exchange``, ``refresh``, ``userinfo`` or ``revoke``.
    :ivar fetch_profile: an exchange that also fetches the profile.
    """

    name: str
    kind: ScenarioKind
    fetch_profile: bool = False

    @classmethod
    def parse(cls, name: str) -> Scenario:
        """Read a scenario name.

        :raises RecordingError: the name is not lowercase letters, digits and ``_``, or does
            not start with ``exchange_``, ``refresh_``, ``userinfo``, ``revoke`` or
            ``discovery``.
        """
        if not _SCENARIO_NAME.fullmatch(name):
            raise RecordingError(
                f"scenario {name!r} must be lowercase letters, digits and '_', e.g. refresh_ok"
            )
        if name.startswith("exchange_"):
            return cls(name, "exchange", fetch_profile="userinfo" in name)
        if name.startswith("refresh_"):
            return cls(name, "refresh")
        if name.startswith("userinfo"):
            return cls(name, "userinfo")
        if name.startswith("revoke"):
            return cls(name, "revoke")
        if name.startswith("discovery"):
            return cls(name, "discovery")
        raise RecordingError(
            f"scenario {name!r} must start with exchange_, refresh_, userinfo, revoke or discovery"
        )


@dataclass(frozen=True)
class Recording:
    """A cassette that was written.

    :ivar path: where it was written.
    :ivar interactions: how many request/response pairs it holds.
    :ivar outcome: what the provider answered, in a few words (no secret in it).
    :ivar tokens: the tokens the exchange or refresh returned, if any (secrets hidden in
        ``repr``); save them with :func:`save_tokens` to record later scenarios.
    """

    path: Path
    interactions: int
    outcome: str
    tokens: TokenSet | None = None


def cassette_path(
    cassette_dir: str | Path, provider: str, scenario: str, *, flat: bool = False
) -> Path:
    """``<cassette_dir>/<provider>/<scenario>.yaml``, or ``<cassette_dir>/<scenario>.yaml``
    when ``flat`` (a plugin's own ``cassettes/`` folder holds one provider)."""
    folder = Path(cassette_dir) if flat else Path(cassette_dir) / provider
    return folder / f"{scenario}.yaml"


# -- the loopback redirect server ------------------------------------------------------------


class CallbackServer:
    """A one-shot HTTP server on ``127.0.0.1`` that receives the provider's redirect.

    Use it as a context manager; it serves from a background thread until closed. Only the
    first request to :data:`CALLBACK_PATH` counts; its query is kept for :meth:`wait`. No
    request is logged (the query holds the authorization code).

    :param port: the port to listen on; ``0`` lets the system choose one.
    :raises RecordingError: the port is taken or cannot be used.
    """

    def __init__(self, port: int = DEFAULT_PORT) -> None:
        self._received = threading.Event()
        self._query: dict[str, str] = {}
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        except OverflowError:
            raise RecordingError(
                f"port {port} is not from 0 to 65535; choose another --port"
            ) from None
        except OSError as exc:
            raise RecordingError(
                f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); choose another --port"
            ) from None
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def redirect_uri(self) -> str:
        """``http://127.0.0.1:<port>/callback``: register this with the provider."""
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != CALLBACK_PATH:
                    self._reply(404, "Not the callback.")
                    return
                if not owner._received.is_set():
                    owner._query = dict(parse_qsl(parts.query, keep_blank_values=True))
                    owner._received.set()
                self._reply(200, "keyturn received the callback: return to the terminal.")

            def _reply(self, status: int, message: str) -> None:
                page = f"<!DOCTYPE html><title>keyturn</title><p>{message}</p>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the query carries the code: never log it

        return Handler

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def wait(self, timeout: float) -> dict[str, str]:
        """The callback's query parameters, once the browser arrives.

        :raises RecordingError: no callback within ``timeout`` seconds.
        """
        if not self._received.wait(timeout):
            raise RecordingError(f"no redirect reached {self.redirect_uri} within {timeout:g} s")
        return dict(self._query)


# -- recording ---------------------------------------------------------------------------------


def _check_credentials(client: Keyturn, spec: ProviderSpec) -> None:
    prefix = spec.env_prefix
    wanted = f"{prefix}CLIENT_ID and {prefix}CLIENT_SECRET"
    try:
        credentials = client.credentials(spec)
    except ConfigurationError:
        raise RecordingError(
            f"recording {spec.id} needs the app's real credentials: set {wanted}"
        ) from None
    uses_secret = ("client_secret_post", "client_secret_basic", "client_secret_jwt")
    if credentials.client_secret is None and spec.client_auth in uses_secret:
        raise RecordingError(f"recording {spec.id} needs {prefix}CLIENT_SECRET as well")


def _check_tokens(scenario: Scenario, access_token: str | None, refresh_token: str | None) -> None:
    if scenario.kind == "refresh" and not refresh_token:
        raise RecordingError(
            f"{scenario.name} needs a refresh token: --refresh-token - (stdin) "
            f"or {REFRESH_TOKEN_ENV}"
        )
    if scenario.kind in ("userinfo", "revoke") and not access_token:
        raise RecordingError(
            f"{scenario.name} needs an access token: --access-token - (stdin) or {ACCESS_TOKEN_ENV}"
        )


@dataclass
class _Results:
    tokens: TokenSet | None = None
    profile: Profile | None = None
    outcome: str = ""


def _describe(error: ProviderError) -> str:
    status = f"HTTP {error.status}, " if error.status is not None else ""
    kind = "permanent" if error.permanent else "transient"
    return f"the provider answered {error.error} ({status}{kind})"


def _run(
    client: Keyturn,
    spec: ProviderSpec,
    scenario: Scenario,
    results: _Results,
    exchange: Callable[[], TokenSet] | None,
    access_token: str | None,
    refresh_token: str | None,
) -> None:
    """Send the scenario's requests; a provider's error answer is an outcome, not a failure."""
    try:
        if scenario.kind == "discovery":
            results.outcome = _fetch_discovery(client, spec)
        elif exchange is not None:
            results.tokens = exchange()
            results.outcome = "tokens received"
            if scenario.fetch_profile:
                results.profile = client.userinfo(results.tokens)
                results.outcome = "tokens and profile received"
        elif scenario.kind == "refresh":
            held = TokenSet(provider=spec.id, access_token=_UNUSED, refresh_token=refresh_token)
            results.tokens = client.refresh(held)
            rotated = results.tokens.refresh_token is not None and (
                results.tokens.refresh_token.get_secret_value() != refresh_token
            )
            results.outcome = "refreshed" + (", refresh token rotated" if rotated else "")
        else:
            assert access_token is not None, "checked before recording"
            held = TokenSet(
                provider=spec.id, access_token=access_token, refresh_token=refresh_token
            )
            if scenario.kind == "userinfo":
                results.profile = client.userinfo(held)
                results.outcome = "profile received"
            else:
                client.revoke(held)
                results.outcome = "revoked"
    except TransportError:
        raise
    except ProviderError as exc:
        results.outcome = _describe(exc)


def discovery_url(spec: ProviderSpec) -> str:
    """Where the spec's discovery document is: its ``discovery_url``, else its issuer's
    ``/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 section 4).

    :raises RecordingError: the spec names neither, or only a multi-tenant issuer template.
    """
    from keyturn.discovery import WELL_KNOWN

    if spec.discovery_url is not None:
        return spec.discovery_url
    if spec.issuer is None or spec.issuer_claims:
        raise RecordingError(
            f"{spec.id} has no discovery_url and no issuer to find its discovery document at"
        )
    return spec.issuer.rstrip("/") + WELL_KNOWN


def _fetch_discovery(client: Keyturn, spec: ProviderSpec) -> str:
    """GET the discovery document as the clients do; what it names, in a few words.

    A readable document is recorded whatever it says: the conformance suite then tells
    where it disagrees with the spec.
    """
    from keyturn.discovery import DISCOVERY, parse_metadata
    from keyturn.effects import run

    url = discovery_url(spec)
    try:
        document = run(
            client.documents.get_op(url, DISCOVERY, spec.id, parse_metadata, refetch=True),
            client.http_client,
        )
    except ConfigurationError as exc:
        return f"a document keyturn refuses ({exc})"
    return f"document received (issuer {document.value.issuer})"


def _resolved(client: Keyturn, spec: ProviderSpec) -> ProviderSpec:
    """``spec`` completed from its discovery document (read now, before any cassette)."""
    if spec.discovery_url is None:
        return spec
    from keyturn.effects import run

    return run(client.resolve_op(spec.id), client.http_client)


def _recorder(folder: Path, signer: CassetteSigner | None) -> Any:
    """The vcrpy recorder: keyturn's scrubbing, and ``signer``'s signing when given."""
    import vcr

    from .cassettes import (
        RESPONSE_SECRET_FIELDS,
        body_matcher,
        make_vcr,
        scrub_response,
        vcr_config,
    )

    if signer is None or "before_save_interaction" not in inspect.signature(vcr.VCR).parameters:
        return make_vcr(folder, record_mode="all")
    # The ID token waits for the signer, which runs as the cassette is saved.
    fields = tuple(name for name in RESPONSE_SECRET_FIELDS if name != "id_token")

    def scrub_tokens(response: dict[str, Any]) -> dict[str, Any]:
        return scrub_response(response, fields)

    config = vcr_config(folder, record_mode="all")
    config["before_record_response"] = scrub_tokens
    config["before_save_interaction"] = signer.before_save_interaction
    recorder = vcr.VCR(**config)
    recorder.register_matcher("keyturn_body", body_matcher)
    return recorder


def _personal_values(results: _Results) -> dict[str, str]:
    """Personal values the provider really sent: the scrubbed file must hold none of them."""
    from .cassettes import EMAIL_FIELDS, PERSONAL_FIELDS

    sources: list[Mapping[str, Any]] = []
    if results.profile is not None:
        sources.append(results.profile.raw)
    if results.tokens is not None and results.tokens.id_token is not None:
        with suppress(IdTokenError):
            sources.append(unverified_claims(results.tokens.id_token.get_secret_value()))
    placeholders = set(PERSONAL_FIELDS.values())
    found: dict[str, str] = {}
    for source in sources:
        for key, value in source.items():
            if key not in PERSONAL_FIELDS and key not in EMAIL_FIELDS:
                continue
            if not isinstance(value, str) or len(value) < 3 or value in placeholders:
                continue
            if value.lower().endswith(("@example.com", "//example.com/avatar.png")):
                continue
            found[value] = key
    return found


def _leaked(text: str, values: Mapping[str, str]) -> list[str]:
    """The kinds of personal value (``email``, ``name``...) that appear in ``text``."""
    kinds = set()
    for value, kind in values.items():
        for form in {value, json.dumps(value)[1:-1]}:
            if re.search(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", text):
                kinds.add(kind)
    return sorted(kinds)


def _prepare(signer: CassetteSigner | None, results: _Results) -> None:
    """Make the key that signs the scenario's ID token again, before the cassette is saved."""
    if signer is not None and results.tokens is not None and results.tokens.id_token is not None:
        signer.prepare(results.tokens.id_token.get_secret_value())


@contextmanager
def _scratch(path: Path) -> Iterator[Path]:
    """A temporary file next to ``path``, removed afterwards whatever happens."""
    scratch = path.with_name(f".{path.stem}.recording.yaml")
    scratch.unlink(missing_ok=True)
    try:
        yield scratch
    finally:
        scratch.unlink(missing_ok=True)


def record(
    client: Keyturn,
    provider: str,
    scenario: str,
    *,
    cassette_dir: str | Path = "cassettes",
    flat: bool = False,
    force: bool = False,
    port: int = DEFAULT_PORT,
    browser: Callable[[str], object] | None = None,
    access_token: str | None = None,
    refresh_token: str | None = None,
    scopes: Sequence[str] | None = None,
    params: Mapping[str, str] | None = None,
    timeout: float = 300.0,
    say: Callable[[str], object] = print,
    today: datetime.date | None = None,
) -> Recording:
    """Record one scenario against the provider and write its scrubbed cassette.

    :param client: the client to record with; its credentials must be real. Pass
        ``Keyturn(providers=[...])`` to point a provider at another server.
    :param provider: the provider id.
    :param scenario: the scenario name (see the module docs).
    :param cassette_dir: the folder holding one folder per provider.
    :param flat: write straight into ``cassette_dir``, without the provider's folder.
    :param force: replace an existing cassette.
    :param port: loopback port for the redirect URI (``exchange_*`` only); ``0`` picks one.
    :param browser: called with the authorize URL (``webbrowser.open``, or a test's fake
        browser); the URL is also passed to ``say``.
    :param access_token: for ``userinfo*`` and ``revoke*``.
    :param refresh_token: for ``refresh_*`` (and ``revoke*``, to revoke it).
    :param scopes: scopes for the authorize URL; the provider's defaults otherwise.
    :param params: provider-specific authorize parameters.
    :param timeout: seconds to wait for the redirect.
    :param say: where progress lines go.
    :param today: the date written into the cassette's header comment (default: today, UTC).
    :return: what was written.
    :raises RecordingError: bad scenario, missing credentials or tokens, an existing
        cassette without ``force``, no redirect, nothing recorded, or a written file that
        still holds a secret or personal data (the file is then deleted).
    :raises KeyturnError: the callback failed its checks, or the provider could not be
        reached.
    """
    from .cassettes import find_secrets

    plan = Scenario.parse(scenario)
    spec = client.provider(provider)
    if plan.kind == "discovery":
        discovery_url(spec)  # a spec without one fails before anything is written
    else:
        _check_credentials(client, spec)
    _check_tokens(plan, access_token, refresh_token)
    target = cassette_path(cassette_dir, spec.id, plan.name, flat=flat)
    if target.exists() and not force:
        raise RecordingError(f"{target} exists; use --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)

    results = _Results()
    signer: CassetteSigner | None = None
    if plan.kind in ("exchange", "refresh"):
        resolved = _resolved(client, spec)
        if resolved.jwks_uri is not None:
            signer = CassetteSigner(resolved.jwks_uri)
    with _scratch(target) as scratch:
        recorder = _recorder(target.parent, signer)
        if plan.kind == "exchange":
            with CallbackServer(port) as server:
                extras: dict[str, Any] = dict(params or {})
                request = client.authorize_url(
                    spec.id, server.redirect_uri, scopes=scopes, **extras
                )
                say(f"redirect URI (register it with {spec.name}): {server.redirect_uri}")
                say("sign in with this URL:")
                say(request.url)
                if browser is not None:
                    browser(request.url)
                say(f"waiting up to {timeout:g} s for the redirect...")
                code = request.verify_callback(server.wait(timeout))

            def exchange() -> TokenSet:
                return client.exchange_code(request, code)

            with recorder.use_cassette(scratch.name) as cassette:
                _run(client, spec, plan, results, exchange, None, None)
                _prepare(signer, results)
        else:
            with recorder.use_cassette(scratch.name) as cassette:
                _run(client, spec, plan, results, None, access_token, refresh_token)
                _prepare(signer, results)
        count = len(cassette.data)
        if not scratch.exists() or count == 0:
            raise RecordingError(f"nothing was recorded for {spec.id}/{plan.name}")
        text = scratch.read_text(encoding="utf-8")
        secrets = find_secrets(text)
        if secrets:
            raise RecordingError(
                f"refused {target}: it still looks like it holds a live secret "
                f"({', '.join(secrets)}); nothing was kept"
            )
        leaked = _leaked(text, _personal_values(results))
        if leaked:
            raise RecordingError(
                f"refused {target}: it still holds personal data the provider sent "
                f"({', '.join(leaked)}); nothing was kept"
            )
        date = (today or datetime.datetime.now(datetime.UTC).date()).isoformat()
        header = (
            f"# Recorded against {spec.name} on {date} with `keyturn record {spec.id} "
            f"{plan.name}`.\n"
            "# Scrubbed on record (pytest_keyturn.cassettes); read it through before "
            "committing it.\n"
        )
        scratch.write_text(header + text, encoding="utf-8")
        os.replace(scratch, target)
    return Recording(target, count, results.outcome, results.tokens)


def save_tokens(tokens: TokenSet, path: str | Path) -> None:
    """Write ``tokens`` with their secrets as JSON, readable by the owner only (mode 0600).

    Meant for recording the next scenario (a refresh needs the exchange's refresh token);
    delete the file when done.
    """
    data = json.dumps(tokens.model_dump(mode="json", context=REVEAL), indent=2) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)
