"""The conformance suite every provider plugin runs against its own cassettes.

Subclass :class:`ProviderConformance` in a test module, name the provider and its cassette
folder, and pytest runs every check below for that provider::

    from pathlib import Path

    from pytest_keyturn import ProviderConformance


    class TestConformance(ProviderConformance):
        provider = "gitlab"
        cassettes = Path(__file__).parent.parent / "cassettes"

The suite reads the standard cassettes of the folder (``exchange_code``, ``refresh_ok``,
``refresh_rotated`` when the spec says refresh tokens rotate, ``refresh_invalid_grant``,
``refresh_transient``), replays each through :class:`~keyturn.Keyturn` and
:class:`~keyturn.AsyncKeyturn` with ``record_mode="none"``, and checks what keyturn makes of
the answers against what the cassette itself says. Values the request carried (client id,
redirect URI, the refresh token sent) are read from the cassette, so nothing is repeated in
the test. A missing standard cassette fails, with the command that records it.

Each failure says what to change: the spec, a hook, or the cassette. The suite needs the
fixtures of :mod:`pytest_keyturn.plugin`, which pytest loads wherever pytest-keyturn is
installed (pass ``-p pytest_keyturn.plugin`` if plugin autoloading is off).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NoReturn
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest

from keyturn import pkce
from keyturn.client import AsyncKeyturn, Keyturn
from keyturn.errors import ProviderError
from keyturn.flows import parse_expires_in
from keyturn.http import HttpResponse
from keyturn.idtoken import IdTokenError, unverified_claims
from keyturn.models import (
    JWT,
    REFRESH_ACCESS_TOKEN_ERROR,
    ClientCredentials,
    ProviderSpec,
    TokenSet,
)
from keyturn.plugins import (
    KeyturnPluginManager,
    RegisteredProvider,
    collect_providers,
    get_plugin_manager,
)

from .cassettes import find_secrets
from .clock import FakeClock
from .plugin import VcrFactory
from .scenarios import STANDARD_SCENARIOS

__all__ = ["STANDARD_SCENARIOS", "ProviderConformance", "RecordedInteraction", "record_command"]

#: Placeholder values the suite sends where the cassette only checks that a field is present.
FAKE_CLIENT_SECRET = "fake-client-secret"
FAKE_CODE = "fake-authorization-code"
FAKE_CODE_VERIFIER = "fake-code-verifier-for-the-conformance-suite"
OLD_ACCESS_TOKEN = "fake-access-token-from-sign-in"

_MODES = ("sync", "async")
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})


def _fail(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


def _require(condition: object, message: str) -> None:
    if not condition:
        _fail(message)


def _report(problems: list[str], heading: str) -> None:
    if problems:
        _fail(heading + "\n  - " + "\n  - ".join(problems))


def _first(headers: Mapping[str, Any], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) and value else value)
    return ""


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _body_fields(body: str, content_type: str) -> dict[str, str]:
    """The fields of a recorded request body, form-encoded or JSON."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.endswith("json") or body.lstrip().startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, str)}
    return dict(parse_qsl(body, keep_blank_values=True))


@dataclass(frozen=True)
class RecordedInteraction:
    """The first interaction of one cassette, as the file states it.

    :ivar path: the cassette file.
    :ivar method: the request's HTTP method.
    :ivar uri: the request's URI.
    :ivar fields: the request body's fields (form or JSON), placeholders included.
    :ivar response: the recorded response.
    :ivar count: how many interactions the cassette holds.
    """

    path: Path
    method: str
    uri: str
    fields: dict[str, str]
    response: HttpResponse
    count: int

    @classmethod
    def load(cls, path: Path) -> RecordedInteraction:
        """Read ``path`` (vcrpy's YAML format).

        :raises pytest.fail.Exception: the file is not a cassette with interactions.
        """
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            _fail(f"{path.name} is not valid YAML: {exc}")
        interactions = data.get("interactions") if isinstance(data, dict) else None
        if not isinstance(interactions, list) or not interactions:
            _fail(f"{path.name} holds no interactions; it is not a vcrpy cassette")
        try:
            request = interactions[0]["request"]
            response = interactions[0]["response"]
            headers = request.get("headers") or {}
            response_headers = {
                str(k).lower(): _first({k: v}, str(k).lower())
                for k, v in (response.get("headers") or {}).items()
            }
            recorded = HttpResponse(
                int(response["status"]["code"]),
                response_headers,
                _as_text(response["body"]["string"]).encode("utf-8"),
            )
            return cls(
                path=path,
                method=str(request["method"]),
                uri=str(request["uri"]),
                fields=_body_fields(_as_text(request.get("body")), _first(headers, "content-type")),
                response=recorded,
                count=len(interactions),
            )
        except (KeyError, TypeError, ValueError) as exc:
            _fail(f"{path.name}: the first interaction is incomplete ({type(exc).__name__}: {exc})")

    def response_data(self) -> dict[str, Any]:
        """The recorded response body as a mapping.

        :raises pytest.fail.Exception: the body is neither JSON nor form data.
        """
        data = self.response.data()
        if data is None:
            _fail(
                f"{self.path.name}: the recorded response body is neither JSON nor form data "
                f"(content type {self.response.content_type or 'missing'})"
            )
        return data


def _recorded_iat(recorded: RecordedInteraction) -> float | None:
    """The ``iat`` of the ID token in a recorded answer, or ``None``."""
    data = recorded.response.data() or {}
    id_token = data.get("id_token")
    if not isinstance(id_token, str):
        return None
    try:
        issued = unverified_claims(id_token).get("iat")
    except IdTokenError:
        return None
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        return None
    return float(issued) if math.isfinite(issued) else None


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def record_command(provider: str, scenario: str, folder: Path) -> str:
    """The ``keyturn record`` command line that writes ``folder/<scenario>.yaml``.

    :param provider: the provider id.
    :param scenario: the scenario name.
    :param folder: the provider's cassette folder: ``<dir>/<provider>`` in a project that
        keeps several providers, or a plugin's own flat ``cassettes/``.
    :return: the command in backquotes, with how to pass a refresh token where needed.
    """
    if folder.name == provider:
        where = f"--cassette-dir {_shown(folder.parent)}"
    else:
        where = f"--cassette-dir {_shown(folder)} --flat"
    command = f"`keyturn record {provider} {scenario} {where}`"
    if scenario.startswith("refresh"):
        command += " with --refresh-token - (the refresh token on stdin)"
    return command


def _drive(
    mode: str,
    credentials: Mapping[str, ClientCredentials],
    pm: KeyturnPluginManager,
    clock: FakeClock,
    action: Callable[[Any], Any],
) -> Any:
    """Run ``action(client)`` with a fresh Keyturn (``sync``) or AsyncKeyturn (``async``)."""
    options: dict[str, Any] = {"clock": clock, "plugin_manager": pm, "environ": {}}
    if mode == "sync":
        with httpx.Client(trust_env=False) as http:
            return action(Keyturn(dict(credentials), http_client=http, **options))

    async def main() -> Any:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await action(AsyncKeyturn(dict(credentials), http_client=http, **options))

    return asyncio.run(main())


class ProviderConformance:
    """The checks every keyturn provider plugin must pass. Subclass it in a ``Test*`` class.

    Required class attributes:

    :cvar provider: the provider id the plugin registers, e.g. ``"gitlab"``.
    :cvar cassettes: the folder holding this provider's cassettes.

    Optional class attributes:

    :cvar plugin_manager_factory: returns the plugin manager to test; by default
        :func:`keyturn.get_plugin_manager`, which loads installed entry points, and the
        provider must then come from an installed distribution. To test a plugin object
        directly, use ``staticmethod(lambda: keyturn.get_plugin_manager(entry_points=False,
        plugins=[module]))``; registration by that manager is then enough.
    :cvar client_id: the client id to use when a cassette's request does not show one
        (``client_secret_basic`` sends it in the scrubbed ``Authorization`` header).
    :cvar redirect_uri: the redirect URI for the authorize-URL checks.
    """

    provider: ClassVar[str]
    cassettes: ClassVar[Path]
    plugin_manager_factory: ClassVar[Callable[[], KeyturnPluginManager]] = staticmethod(
        get_plugin_manager
    )
    client_id: ClassVar[str] = "example-client-id"
    redirect_uri: ClassVar[str] = "https://app.example.com/auth/callback"

    # -- plumbing ---------------------------------------------------------------------------

    def _plugin_manager(self) -> KeyturnPluginManager:
        factory = inspect.getattr_static(type(self), "plugin_manager_factory")
        if isinstance(factory, staticmethod | classmethod):
            factory = factory.__get__(None, type(self))
        pm = factory()
        _require(
            isinstance(pm, KeyturnPluginManager),
            f"plugin_manager_factory returned {type(pm).__name__}; it must return a manager "
            "from keyturn.get_plugin_manager()",
        )
        return pm  # type: ignore[no-any-return]

    def _uses_entry_points(self) -> bool:
        mine = inspect.getattr_static(type(self), "plugin_manager_factory")
        return mine is inspect.getattr_static(ProviderConformance, "plugin_manager_factory")

    def _registered(self) -> tuple[KeyturnPluginManager, RegisteredProvider]:
        provider = getattr(self, "provider", None)
        _require(
            isinstance(provider, str) and provider,
            f"{type(self).__name__} must set the class attribute provider = '<provider id>'",
        )
        pm = self._plugin_manager()
        registered = collect_providers(pm)
        if provider not in registered:
            known = ", ".join(sorted(registered)) or "none"
            _fail(
                f"no plugin registers the provider {provider!r} (registered: {known}). "
                "Check that your pyproject.toml declares the entry point "
                f"[project.entry-points.keyturn] {provider} = '<your module>', that the "
                "distribution is installed (pip install -e .), and that your "
                "keyturn_register_providers hook calls register(spec)"
            )
        return pm, registered[provider]

    def _spec(self) -> ProviderSpec:
        return self._registered()[1].spec

    def _folder(self) -> Path:
        folder = getattr(self, "cassettes", None)
        _require(
            isinstance(folder, Path),
            f"{type(self).__name__} must set the class attribute cassettes = Path(...) "
            "(the folder of this provider's cassettes)",
        )
        assert isinstance(folder, Path)
        return folder

    def _cassette(self, scenario: str, why: str = "") -> RecordedInteraction:
        folder = self._folder()
        path = folder / f"{scenario}.yaml"
        if not path.is_file():
            _fail(
                f"{path} is missing{why}. Record it against the real provider with "
                f"{record_command(self.provider, scenario, folder)}, or write it by hand from "
                "the provider's documentation and say so in the folder's README.md"
            )
        return RecordedInteraction.load(path)

    def _credentials(
        self, spec: ProviderSpec, recorded: RecordedInteraction
    ) -> dict[str, ClientCredentials]:
        fields = recorded.fields
        secret: str | None = FAKE_CLIENT_SECRET
        if spec.client_auth == "none" or (
            spec.client_auth == "client_secret_post" and "client_secret" not in fields
        ):
            secret = None
        client_id = fields.get("client_id") or self.client_id
        return {spec.id: ClientCredentials(client_id=client_id, client_secret=secret)}

    def _play(
        self,
        vcr_factory: VcrFactory,
        clock: FakeClock,
        mode: str,
        recorded: RecordedInteraction,
        action: Callable[[Any], Any],
    ) -> tuple[Any, ProviderError | None]:
        """Replay one cassette around ``action``; every interaction must play."""
        from vcr.errors import CannotOverwriteExistingCassetteException

        pm, registered = self._registered()
        credentials = self._credentials(registered.spec, recorded)
        name = recorded.path.name
        result: Any = None
        error: ProviderError | None = None
        try:
            with vcr_factory(recorded.path.parent).use_cassette(name) as cassette:
                try:
                    result = _drive(mode, credentials, pm, clock, action)
                except ProviderError as exc:
                    error = exc
        except CannotOverwriteExistingCassetteException as exc:
            _fail(
                f"{name}: keyturn ({mode}) sent a request the cassette does not hold: the "
                "method, the URI or a body field differs from the recording. Fix the spec's "
                f"endpoints or your hook, or re-record the cassette. vcrpy says: {exc}"
            )
        _require(
            cassette.all_played,
            f"{name}: keyturn ({mode}) played {cassette.play_count} of the "
            f"{len(cassette.data)} recorded interactions; it must send every request the "
            "cassette holds",
        )
        return result, error

    def _succeed(
        self,
        vcr_factory: VcrFactory,
        clock: FakeClock,
        mode: str,
        recorded: RecordedInteraction,
        action: Callable[[Any], Any],
    ) -> Any:
        result, error = self._play(vcr_factory, clock, mode, recorded, action)
        if error is not None:
            _fail(
                f"{recorded.path.name}: the recorded answer is a success, but keyturn ({mode}) "
                f"raised {type(error).__name__}: {error}. Check the response parsing of your "
                "hook, or the cassette's response"
            )
        return result

    def _check_tokens(
        self,
        tokens: Any,
        recorded: RecordedInteraction,
        clock: FakeClock,
        spec: ProviderSpec,
        mode: str,
    ) -> None:
        name = recorded.path.name
        _require(
            isinstance(tokens, TokenSet),
            f"{name}: keyturn ({mode}) returned {type(tokens).__name__}, not a TokenSet",
        )
        data = recorded.response_data()
        problems: list[str] = []
        if tokens.provider != spec.id:
            problems.append(f"TokenSet.provider is {tokens.provider!r}, not {spec.id!r}")
        sent_access = data.get("access_token")
        if not isinstance(sent_access, str) or not sent_access:
            problems.append("the recorded response has no access_token")
        elif tokens.access_token.get_secret_value() != sent_access:
            problems.append("TokenSet.access_token is not the access_token of the response")
        raw_expires = data.get("expires_in")
        try:
            lifetime = parse_expires_in(raw_expires)
        except ValueError:
            lifetime = 0  # keyturn treats an unreadable lifetime as "due now"
        expected = None if lifetime is None else int(clock.now) + lifetime
        if tokens.expires_at != expected:
            problems.append(
                f"expires_at is {tokens.expires_at}, expected {expected}: the fake clock's "
                f"now ({int(clock.now)}) plus the recorded expires_in ({raw_expires!r}); "
                "compute it from clock() when the response arrives"
            )
        raw_scope = data.get("scope")
        if isinstance(raw_scope, str):
            separator = spec.scope_separator
            wanted = tuple(s.strip() for s in raw_scope.split(separator) if s.strip())
            if tokens.scope != wanted:
                problems.append(
                    f"scope is {tokens.scope!r}, but the response's scope {raw_scope!r} split "
                    f"on the spec's scope_separator {separator!r} gives {wanted!r}"
                )
        _report(problems, f"{name}: keyturn ({mode}) read the token response wrongly:")

    def _old_tokens(
        self, spec: ProviderSpec, recorded: RecordedInteraction, clock: FakeClock
    ) -> TokenSet:
        """Tokens due for a refresh, holding the refresh token the cassette's request sent.

        When the recorded answer carries an ID token, the fake clock is first set to its
        ``iat``: keyturn checks a refreshed ID token's ``exp`` and ``iat`` on the client's
        clock, and a provider's ID token is fresh when it is sent, whenever it was recorded.
        """
        issued = _recorded_iat(recorded)
        if issued is not None:
            clock.set(issued)
        sent = recorded.fields.get("refresh_token")
        _require(
            sent,
            f"{recorded.path.name}: the recorded request carries no refresh_token field; a "
            "refresh cassette must hold the refresh_token grant request",
        )
        return TokenSet.model_validate(
            {
                "provider": spec.id,
                "access_token": OLD_ACCESS_TOKEN,
                "expires_at": int(clock.now) - 1,
                "refresh_token": sent,
            }
        )

    def _refresh_fails(
        self,
        vcr_factory: VcrFactory,
        clock: FakeClock,
        mode: str,
        spec: ProviderSpec,
        scenario: str,
        answer: str,
    ) -> tuple[RecordedInteraction, TokenSet, ProviderError]:
        """Replay ``<scenario>.yaml`` around a refresh that must raise a ProviderError.

        :param answer: what the cassette must hold, named in the failure when the refresh
            succeeds.
        :return: the cassette, the tokens whose refresh failed, and the error keyturn raised.
        """
        recorded = self._cassette(scenario)
        old = self._old_tokens(spec, recorded, clock)
        _, error = self._play(
            vcr_factory, clock, mode, recorded, lambda client: client.refresh(old)
        )
        if error is None:
            _fail(f"{recorded.path.name}: the refresh succeeded; this cassette must hold {answer}")
        return recorded, old, error

    def _jwt_after_failure(
        self,
        vcr_factory: VcrFactory,
        clock: FakeClock,
        mode: str,
        recorded: RecordedInteraction,
        old: TokenSet,
    ) -> Any:
        """Replay the failing cassette again, through the jwt callback with ``old`` due."""
        token, _ = self._play(
            vcr_factory, clock, mode, recorded, lambda client: client.jwt(JWT(tokens=old))
        )
        return token

    # -- the spec -----------------------------------------------------------------------------

    def test_spec_is_registered(self) -> None:
        """The provider is registered, by an installed distribution's entry point by default."""
        _, registered = self._registered()
        if self._uses_entry_points():
            _require(
                registered.distribution is not None,
                f"provider {self.provider!r} is registered by plugin {registered.plugin!r}, "
                "which no installed distribution publishes: declare "
                f"[project.entry-points.keyturn] {self.provider} = '<your module>' in "
                "pyproject.toml and reinstall the distribution",
            )

    def test_spec_endpoints_are_absolute_https_urls(self) -> None:
        """Every endpoint the spec declares is an absolute https URL without a fragment."""
        spec = self._spec()
        problems: list[str] = []
        for name in (
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "revocation_endpoint",
        ):
            value = getattr(spec, name)
            if value is None:
                continue
            parts = urlsplit(value)
            if parts.scheme != "https" or not parts.hostname or parts.fragment:
                problems.append(f"{name} = {value!r}")
        _report(problems, f"{spec.id}: endpoints must be absolute https URLs without a fragment:")

    def test_spec_scopes_params_and_pkce_are_well_formed(self) -> None:
        """Default scopes and authorize parameters are strings; PKCE is S256, plain or None."""
        spec = self._spec()
        problems: list[str] = []
        for scope in spec.default_scopes:
            if not isinstance(scope, str) or not scope or any(c.isspace() for c in scope):
                problems.append(f"default scope {scope!r} is not one non-empty word")
        for key, value in spec.authorize_params.items():
            if not isinstance(key, str) or not isinstance(value, str):
                problems.append(f"authorize_params[{key!r}] = {value!r} is not str -> str")
        for key in spec.extra_authorize_params:
            if not isinstance(key, str) or not key:
                problems.append(f"extra_authorize_params holds {key!r}, not a parameter name")
        if spec.pkce_method not in (None, "S256", "plain"):
            problems.append(f"pkce_method {spec.pkce_method!r} is not 'S256', 'plain' or None")
        _report(problems, f"{spec.id}: the spec is malformed:")

    def test_hooks_are_plain_functions(self) -> None:
        """No hook of the plugin is ``async def`` or a generator function (pluggy trap)."""
        pm, registered = self._registered()
        plugin = pm.get_plugin(registered.plugin)
        problems: list[str] = []
        for caller in pm.get_hookcallers(plugin) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin or impl.wrapper or impl.hookwrapper:
                    continue
                function = inspect.unwrap(impl.function)
                if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
                    problems.append(f"{caller.name} is async def")
                elif inspect.isgeneratorfunction(function):
                    problems.append(f"{caller.name} is a generator function")
        _report(
            problems,
            f"plugin {registered.plugin!r}: hooks must be plain functions that return a flow "
            "(a generator object) or None, else pluggy never falls through to keyturn's "
            "defaults:",
        )

    # -- the authorize URL ----------------------------------------------------------------------

    def test_authorize_url(self) -> None:
        """The URL carries what RFC 6749, RFC 7636 and the spec ask for, with a fresh state."""
        pm, registered = self._registered()
        spec = registered.spec
        credentials = {spec.id: ClientCredentials(client_id=self.client_id)}
        with Keyturn(credentials, plugin_manager=pm, environ={}, clock=FakeClock()) as kt:
            first = kt.authorize_url(spec.id, self.redirect_uri)
            second = kt.authorize_url(spec.id, self.redirect_uri)
        query = parse_qs(urlsplit(first.url).query, keep_blank_values=True)
        problems: list[str] = []

        def one(name: str) -> str | None:
            values = query.get(name)
            if values is None:
                return None
            if len(values) != 1:
                problems.append(f"{name} appears {len(values)} times")
            return values[0]

        if not first.url.startswith(spec.authorization_endpoint):
            problems.append(f"the URL does not start with {spec.authorization_endpoint}")
        expected = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
        }
        for name, value in expected.items():
            if one(name) != value:
                problems.append(f"{name} is {one(name)!r}, expected {value!r}")
        state = one("state")
        if not state or state != first.state.get_secret_value():
            problems.append("state is missing or is not the AuthorizationRequest's state")
        if first.state == second.state:
            problems.append("two authorize URLs carry the same state; it must be fresh each time")
        challenge, method = one("code_challenge"), one("code_challenge_method")
        if spec.pkce_method is None:
            if challenge is not None or method is not None:
                problems.append("the spec declares no PKCE, yet the URL has a code_challenge")
        elif first.code_verifier is None or challenge is None:
            problems.append(f"the spec declares PKCE {spec.pkce_method}, but there is no challenge")
        else:
            if method != spec.pkce_method:
                problems.append(f"code_challenge_method is {method!r}, not {spec.pkce_method!r}")
            verifier = first.code_verifier.get_secret_value()
            if challenge != pkce.code_challenge(verifier, spec.pkce_method):
                problems.append("code_challenge does not match the code verifier")
        if "openid" in first.scopes:
            nonce = one("nonce")
            if not nonce or first.nonce is None or nonce != first.nonce.get_secret_value():
                problems.append("openid is requested but the URL has no matching nonce")
        scope = one("scope")
        if spec.default_scopes and (scope is None or scope.split(" ") != list(spec.default_scopes)):
            problems.append(
                f"scope is {scope!r}; expected the default scopes, space-delimited "
                f"(RFC 6749 §3.3): {' '.join(spec.default_scopes)!r}"
            )
        for name, value in spec.authorize_params.items():
            if one(name) != value:
                problems.append(f"authorize_params[{name!r}] = {value!r} is not in the URL")
        _report(problems, f"{spec.id}: the authorize URL is wrong:")

    # -- the code exchange ------------------------------------------------------------------------

    @pytest.mark.parametrize("mode", _MODES)
    def test_exchange_code(
        self, mode: str, keyturn_vcr: VcrFactory, keyturn_clock: FakeClock
    ) -> None:
        """exchange_code.yaml replays and reads into a TokenSet (sync and async)."""
        spec = self._spec()
        recorded = self._cassette("exchange_code")
        fields = recorded.fields
        _require(
            spec.pkce_method is not None or "code_verifier" not in fields,
            f"{recorded.path.name}: the recorded exchange sent a code_verifier, but the spec "
            "declares pkce_method=None; declare the PKCE method the provider supports",
        )
        redirect_uri = fields.get("redirect_uri")
        _require(
            redirect_uri,
            f"{recorded.path.name}: the recorded exchange has no redirect_uri field; keyturn "
            "always sends the redirect URI of the authorize URL (RFC 6749 §4.1.3)",
        )
        verifier = FAKE_CODE_VERIFIER if "code_verifier" in fields else None
        tokens = self._succeed(
            keyturn_vcr,
            keyturn_clock,
            mode,
            recorded,
            lambda client: client.exchange_code(
                spec.id, FAKE_CODE, redirect_uri=redirect_uri, code_verifier=verifier
            ),
        )
        self._check_tokens(tokens, recorded, keyturn_clock, spec, mode)

    # -- refresh ------------------------------------------------------------------------------

    @pytest.mark.parametrize("mode", _MODES)
    def test_refresh_ok(self, mode: str, keyturn_vcr: VcrFactory, keyturn_clock: FakeClock) -> None:
        """refresh_ok.yaml replays and gives the new access token (sync and async)."""
        spec = self._spec()
        recorded = self._cassette("refresh_ok")
        old = self._old_tokens(spec, recorded, keyturn_clock)
        tokens = self._succeed(
            keyturn_vcr, keyturn_clock, mode, recorded, lambda client: client.refresh(old)
        )
        self._check_tokens(tokens, recorded, keyturn_clock, spec, mode)

    @pytest.mark.parametrize("mode", _MODES)
    def test_refresh_token_rotation_matches_the_spec(
        self, mode: str, keyturn_vcr: VcrFactory, keyturn_clock: FakeClock
    ) -> None:
        """A rotating provider returns a new refresh token; another keeps the one sent."""
        spec = self._spec()
        if spec.rotates_refresh_tokens:
            recorded = self._cassette(
                "refresh_rotated", " (the spec says rotates_refresh_tokens=True)"
            )
        else:
            recorded = self._cassette("refresh_ok")
        old = self._old_tokens(spec, recorded, keyturn_clock)
        assert old.refresh_token is not None
        sent = old.refresh_token.get_secret_value()
        tokens = self._succeed(
            keyturn_vcr, keyturn_clock, mode, recorded, lambda client: client.refresh(old)
        )
        kept = tokens.refresh_token.get_secret_value() if tokens.refresh_token else None
        name = recorded.path.name
        if spec.rotates_refresh_tokens:
            _require(
                kept is not None and kept != sent,
                f"{name}: the spec says rotates_refresh_tokens=True, but the refresh left the "
                "refresh token that was sent in place. If the provider does not rotate, set "
                "rotates_refresh_tokens=False; if it does, the cassette's response must carry "
                "the new refresh_token and your hook must return it",
            )
            returned = recorded.response_data().get("refresh_token")
            _require(
                kept == returned,
                f"{name}: the TokenSet's refresh token is not the one the response carries",
            )
        else:
            _require(
                kept == sent,
                f"{name}: the spec says rotates_refresh_tokens=False, but the TokenSet's "
                "refresh token is not the one that was sent. If the provider rotates, set "
                "rotates_refresh_tokens=True and add refresh_rotated.yaml; otherwise keep "
                "tokens.refresh_token in your keyturn_refresh hook",
            )

    @pytest.mark.parametrize("mode", _MODES)
    def test_refresh_invalid_grant_is_permanent(
        self, mode: str, keyturn_vcr: VcrFactory, keyturn_clock: FakeClock
    ) -> None:
        """A rejected refresh token is a permanent failure and ends the session's refreshes."""
        spec = self._spec()
        recorded, old, error = self._refresh_fails(
            keyturn_vcr,
            keyturn_clock,
            mode,
            spec,
            "refresh_invalid_grant",
            "the provider's answer to a refresh token it rejects",
        )
        name = recorded.path.name
        _require(
            error.permanent,
            f"{name}: keyturn ({mode}) classified the failure as transient (error "
            f"{error.error!r}, HTTP {error.status}), but a refresh token the provider rejects "
            "is permanent: the user must sign in again. Remove the code from the spec's "
            "transient_errors, list it in permanent_errors, or fix your keyturn_refresh hook",
        )
        _require(
            (error.provider, error.operation) == (spec.id, "refresh"),
            f"{name}: the error names provider {error.provider!r} and operation "
            f"{error.operation!r}; expected {spec.id!r} and 'refresh'",
        )
        token = self._jwt_after_failure(keyturn_vcr, keyturn_clock, mode, recorded, old)
        _require(
            token.error == REFRESH_ACCESS_TOKEN_ERROR,
            f"{name}: after a permanent failure Keyturn.jwt must set error = "
            f"{REFRESH_ACCESS_TOKEN_ERROR!r}, not {token.error!r}",
        )
        _require(
            token.tokens == old,
            f"{name}: Keyturn.jwt must keep every old token after a failed refresh",
        )

    @pytest.mark.parametrize("mode", _MODES)
    def test_refresh_transient_keeps_the_session(
        self, mode: str, keyturn_vcr: VcrFactory, keyturn_clock: FakeClock
    ) -> None:
        """A passing failure raises a transient error; the session stays usable."""
        recorded, old, error = self._refresh_fails(
            keyturn_vcr,
            keyturn_clock,
            mode,
            self._spec(),
            "refresh_transient",
            "a passing failure (a 5xx, a 429, temporarily_unavailable)",
        )
        name = recorded.path.name
        _require(
            not error.permanent,
            f"{name}: keyturn ({mode}) classified the failure as permanent (error "
            f"{error.error!r}, HTTP {error.status}), which would sign the user out over a "
            "passing hiccup. List the code in the spec's transient_errors, or fix your "
            "keyturn_refresh hook",
        )
        token = self._jwt_after_failure(keyturn_vcr, keyturn_clock, mode, recorded, old)
        _require(
            token.error is None,
            f"{name}: after a transient failure Keyturn.jwt must leave error unset, "
            f"not {token.error!r}",
        )
        _require(
            token.tokens == old,
            f"{name}: Keyturn.jwt must keep every old token after a failed refresh",
        )
        failure = token.refresh_failure
        _require(
            failure is not None and not failure.permanent,
            f"{name}: Keyturn.jwt must record the transient failure in refresh_failure",
        )

    # -- the cassettes themselves -----------------------------------------------------------------

    def test_cassettes_hold_no_secrets(self) -> None:
        """No cassette in the folder holds a live-looking secret or an Authorization header."""
        import yaml

        folder = self._folder()
        files = sorted(folder.rglob("*.yaml")) if folder.is_dir() else []
        _require(files, f"{folder} holds no cassettes (*.yaml)")
        problems: list[str] = []
        for path in files:
            where = path.relative_to(folder).as_posix()
            text = path.read_text(encoding="utf-8")
            for kind in find_secrets(text):
                problems.append(f"{where} holds what looks like a live {kind}")
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                problems.append(f"{where} is not valid YAML")
                continue
            interactions = data.get("interactions") if isinstance(data, dict) else None
            for number, interaction in enumerate(interactions or []):
                request = interaction.get("request") if isinstance(interaction, dict) else None
                headers = (request or {}).get("headers") or {}
                found = sorted({str(k).lower() for k in headers} & _CREDENTIAL_HEADERS)
                if found:
                    problems.append(f"{where}, interaction {number}: {', '.join(found)} header")
        _report(
            problems,
            f"{folder}: cassettes must be scrubbed. `keyturn record` scrubs what it "
            "records; in a hand-written cassette, use REDACTED placeholders:",
        )
