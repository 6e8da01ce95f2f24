"""The conformance suite every provider plugin runs against its own cassettes.

Subclass :class:`ProviderConformance` in a test module, name the provider and its cassette
folder, and pytest runs every check below for that provider::

    from pathlib import Path

    from pytest_keyturn import ProviderConformance


    class TestConformance(ProviderConformance):
        provider = "gitlab"
        cassettes = Path(__file__).parent.parent / "cassettes"

The suite reads the standard cassettes of the folder (``exchange_code``, ``refresh_ok``,
``refresh_rotated`` when the spec's ``rotation`` is not ``none`` or a tenant may choose
rotation, ``refresh_invalid_grant``, ``refresh_transient``), replays each through
:class:`~keyturn.Keyturn` and
:class:`~keyturn.AsyncKeyturn` with ``record_mode="none"``, and checks what keyturn makes of
the answers against what the cassette itself says. Values the request carried (client id,
redirect URI, the refresh token sent) are read from the cassette, so nothing is repeated in
the test. A missing standard cassette fails, with the command that records it.

Two more cassettes serve OpenID Connect providers, replayed alongside each scenario's:

* ``discovery.yaml``: a GET of the provider's ``/.well-known/openid-configuration``. A spec
  with a ``discovery_url`` needs it (its endpoints come from it); for any spec with an
  ``issuer``, the suite compares the spec with it (:meth:`ProviderConformance.
  test_spec_agrees_with_its_discovery_document`).
* ``jwks.yaml``: a GET of the spec's ``jwks_uri``, for the scenarios whose own cassette does
  not hold one. keyturn reads the key set before it sends a code or a refresh token, so
  with a ``jwks_uri`` every exchange and refresh needs it from one of the two.

The sign-in replay (:meth:`ProviderConformance.test_sign_in_checks_the_id_token`) runs the
ID-token checks of a real sign-in on ``exchange_code.yaml``: the signature against the key
set, ``iss`` against the spec's issuer, ``aud`` against the client id, the nonce, and the
times on the clock of the recording.

Rotation is checked against the kind the spec declares (:meth:`ProviderConformance.
test_refresh_token_rotation_matches_the_spec`, :meth:`ProviderConformance.
test_spec_rotation_is_complete`); a spec whose tenant chooses (a ``rotation`` setting) is
checked against every kind the setting accepts. A spec with deployment settings is deployed
with the class attribute ``settings``.

Secrets come first: :meth:`ProviderConformance.test_cassettes_hold_no_secrets` fails for a
file that holds a live-looking credential (the rules are those of
:func:`pytest_keyturn.cassettes.scan_cassette`), and every other test that would read that
file skips it, pointing at the secret check: vcrpy scrubs tokens again as it loads a cassette,
so a replay of an unscrubbed file would blame the spec for what is wrong with the file.

Each failure says what to change: the spec, a hook, or the cassette. The suite needs the
fixtures of :mod:`pytest_keyturn.plugin`, which pytest loads wherever pytest-keyturn is
installed (pass ``-p pytest_keyturn.plugin`` if plugin autoloading is off).
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NoReturn, get_args
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest

from keyturn import pkce
from keyturn.client import AsyncKeyturn, Keyturn
from keyturn.discovery import (
    WELL_KNOWN,
    ProviderMetadata,
    check_issuer,
    parse_metadata,
    resolve_spec,
)
from keyturn.documents import DocumentProblem
from keyturn.effects import arun, run
from keyturn.errors import (
    ConfigurationError,
    KeyturnError,
    ProviderError,
    RefreshIdTokenError,
)
from keyturn.flows import parse_expires_in
from keyturn.http import HttpResponse
from keyturn.idtoken import IdTokenError, unverified_claims
from keyturn.jwks import SIGNING_ALGORITHMS
from keyturn.models import (
    JWT,
    REFRESH_ACCESS_TOKEN_ERROR,
    AuthorizationRequest,
    ClientCredentials,
    ProviderSpec,
    RefreshRotation,
    TokenSet,
)
from keyturn.plugins import (
    KeyturnPluginManager,
    RegisteredProvider,
    collect_providers,
    get_plugin_manager,
)

from .cassettes import SecretFinding, scan_cassette
from .clock import FakeClock
from .plugin import VcrFactory
from .scenarios import STANDARD_SCENARIOS

__all__ = [
    "DISCOVERY_SCENARIO",
    "JWKS_SCENARIO",
    "STANDARD_SCENARIOS",
    "ProviderConformance",
    "RecordedInteraction",
    "record_command",
]

#: The cassette holding the provider's discovery document (a GET of its
#: ``/.well-known/openid-configuration``), replayed alongside every scenario of a spec with a
#: ``discovery_url`` and compared with any spec that names an issuer.
DISCOVERY_SCENARIO = "discovery"
#: The cassette holding the provider's key set (a GET of the spec's ``jwks_uri``), replayed
#: alongside every scenario whose own cassette holds none.
JWKS_SCENARIO = "jwks"

#: Placeholder values the suite sends where the cassette only checks that a field is present.
FAKE_CLIENT_SECRET = "fake-client-secret"
FAKE_CODE = "fake-authorization-code"
FAKE_CODE_VERIFIER = "fake-code-verifier-for-the-conformance-suite"
OLD_ACCESS_TOKEN = "fake-access-token-from-sign-in"

_MODES = ("sync", "async")


def _unscrubbed(path: Path) -> list[SecretFinding]:
    """What :func:`~pytest_keyturn.cassettes.scan_cassette` finds in ``path``, read once per
    version of the file."""
    stat = path.stat()
    key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
    found = _SCANNED.get(key)
    if found is None:
        found = _SCANNED[key] = scan_cassette(path.read_text(encoding="utf-8"))
    return found


_SCANNED: dict[tuple[Path, int, int], list[SecretFinding]] = {}


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


def _read_interactions(path: Path) -> list[Any]:
    """The interactions of a vcrpy cassette, as its YAML holds them.

    :raises pytest.fail.Exception: the file is not YAML or holds no interactions.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        _fail(f"{path.name} is not valid YAML: {exc}")
    interactions = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(interactions, list) or not interactions:
        _fail(f"{path.name} holds no interactions; it is not a vcrpy cassette")
    return interactions


@dataclass(frozen=True)
class RecordedInteraction:
    """One interaction of a cassette, as the file states it: by default the main one.

    The main interaction is the first that is not a GET (the token request of an exchange
    or a refresh), else the first: a cassette may also hold the GET of the key set (or of
    the discovery document) that keyturn sends before the token request.

    :ivar path: the cassette file.
    :ivar method: the request's HTTP method.
    :ivar uri: the request's URI.
    :ivar fields: the request body's fields (form or JSON), placeholders included.
    :ivar response: the recorded response.
    :ivar count: how many interactions the cassette holds.
    :ivar requests: the method and URI of every interaction, in the file's order.
    """

    path: Path
    method: str
    uri: str
    fields: dict[str, str]
    response: HttpResponse
    count: int
    requests: tuple[tuple[str, str], ...] = ()

    @classmethod
    def load(
        cls, path: Path, *, method: str | None = None, uri: str | None = None
    ) -> RecordedInteraction:
        """Read ``path`` (vcrpy's YAML format).

        :param method: pick the first interaction with this method (and ``uri``, if given)
            instead of the main one.
        :param uri: pick the first interaction with this request URI.
        :raises pytest.fail.Exception: the file is not a cassette with interactions, or
            holds no interaction with that method and URI.
        """
        interactions = _read_interactions(path)
        try:
            requests = tuple(
                (str(item["request"]["method"]).upper(), str(item["request"]["uri"]))
                for item in interactions
            )
        except (KeyError, TypeError) as exc:
            _fail(f"{path.name}: an interaction is incomplete ({type(exc).__name__}: {exc})")
        if method is None and uri is None:
            index = next((i for i, (verb, _) in enumerate(requests) if verb != "GET"), 0)
        else:
            found = [
                i
                for i, (verb, target) in enumerate(requests)
                if (method is None or verb == method.upper()) and (uri is None or target == uri)
            ]
            if not found:
                _fail(f"{path.name} holds no {method or 'request'} of {uri or 'any URI'}")
            index = found[0]
        try:
            request = interactions[index]["request"]
            response = interactions[index]["response"]
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
                requests=requests,
            )
        except (KeyError, TypeError, ValueError) as exc:
            _fail(f"{path.name}: interaction {index} is incomplete ({type(exc).__name__}: {exc})")

    def holds(self, method: str, uri: str) -> bool:
        """Whether the cassette holds a request with this method and URI."""
        return (method.upper(), uri) in self.requests

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
    settings: Mapping[str, Mapping[str, str]] | None = None,
) -> Any:
    """Run ``action(client)`` with a fresh Keyturn (``sync``) or AsyncKeyturn (``async``).

    :param settings: the client's ``settings=`` (deployment values by provider id).
    """
    options: dict[str, Any] = {"clock": clock, "plugin_manager": pm, "environ": {}}
    if settings:
        options["settings"] = dict(settings)
    if mode == "sync":
        with httpx.Client(trust_env=False) as http:
            return action(Keyturn(dict(credentials), http_client=http, **options))

    async def main() -> Any:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await action(AsyncKeyturn(dict(credentials), http_client=http, **options))

    return asyncio.run(main())


class _WithSupport:
    """A vcrpy persister: a scenario's cassette, then the cassettes that support it.

    The scenario's interactions come first, so vcrpy plays them before an equal request of a
    supporting cassette (a key set both hold), and their indices tell whether each played.
    Replay only: nothing is ever saved.
    """

    def __init__(self, extras: list[Path]) -> None:
        self.extras = extras

    def load_cassette(self, cassette_path: Any, serializer: Any) -> tuple[list[Any], list[Any]]:
        from vcr.persisters.filesystem import FilesystemPersister

        requests, responses = FilesystemPersister.load_cassette(cassette_path, serializer)
        requests, responses = list(requests), list(responses)
        for extra in self.extras:
            more, answers = FilesystemPersister.load_cassette(extra, serializer)
            requests.extend(more)
            responses.extend(answers)
        return requests, responses

    @staticmethod
    def save_cassette(cassette_path: Any, cassette_dict: Any, serializer: Any) -> None:
        raise RuntimeError("the conformance suite replays cassettes; it never writes them")


def _segment_json(segment: str) -> dict[str, Any] | None:
    """A base64url JSON object segment of a compact JWS, or ``None``."""
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _unverified_header(id_token: str) -> dict[str, Any]:
    """The JOSE header of an ID token, unverified; empty when it cannot be read."""
    return _segment_json(id_token.split(".", 1)[0]) or {}


def _signature_scrubbed(id_token: str) -> bool:
    """Whether the scrubber took the token's header and signature away (``REDACTED``)."""
    parts = id_token.split(".")
    return len(parts) == 3 and (parts[0].startswith("REDACTED") or parts[2] == "REDACTED")


def _sign_in_hint(
    error: KeyturnError,
    spec: ProviderSpec,
    claims: Mapping[str, Any],
    header: Mapping[str, Any],
    client_id: str,
    client_id_source: str,
    scenario: str,
) -> str:
    """What to change after the sign-in replay refused the recorded ID token.

    Every value shown is public: issuers, the client id, key ids and algorithms.
    """
    text = str(error)
    folder_hint = (
        f"put the provider's key set in {scenario} (or jwks.yaml): the GET of the spec's "
        "jwks_uri, holding the public key that signed the ID token"
    )
    if "(iss)" in text:
        aliases = ", ".join(sorted(spec.issuer_aliases)) or "none"
        return (
            f"The ID token's iss is {claims.get('iss')!r}, but the spec's issuer is "
            f"{spec.issuer!r} (issuer_aliases: {aliases}). Set the spec's issuer to the "
            "issuer the provider's ID tokens carry (its discovery document's issuer); list "
            "another spelling the provider uses in issuer_aliases; declare a multi-tenant "
            "issuer as a template with issuer_claims. With this spec, every real sign-in fails"
        )
    if "(aud)" in text or "(azp)" in text:
        return (
            f"The ID token's aud is {claims.get('aud')!r} (azp {claims.get('azp')!r}); the "
            f"suite signed in with the client id {client_id!r} ({client_id_source}). If the "
            "recorded request does not carry the client id (client_secret_basic sends it in "
            "the scrubbed Authorization header), set the class attribute client_id to the one "
            "the cassette was recorded with; an audience of the app's own belongs in the "
            "spec's trusted_audiences"
        )
    if "(kid)" in text:
        return (
            f"The ID token's header names kid {header.get('kid')!r} (alg "
            f"{header.get('alg')!r}), and the key set the cassette holds has no key that "
            f"fits it: {folder_hint}"
        )
    if "signature does not verify" in text:
        return (
            "The key set the cassette holds has a key with the token's kid, but the signature "
            f"does not verify with it: the token was signed with another key. {folder_hint}"
        )
    if "(alg" in text:
        allowed = ", ".join(sorted(spec.id_token_signing_algs))
        return (
            f"The ID token is signed with {header.get('alg')!r}; the spec allows {allowed} "
            "(id_token_signing_algs). Set id_token_signing_algs to the algorithms of the "
            "provider's id_token_signing_alg_values_supported; none and HMAC algorithms are "
            "never accepted with a key set"
        )
    if "nonce" in text:
        return (
            "The suite sent the nonce the recorded ID token carries; a token without one "
            "fails, as keyturn sends a nonce with every sign-in that asks for openid and the "
            "provider must return it (OpenID Connect Core 3.1.3.7). Record the exchange again "
            "from an authorize URL keyturn made"
        )
    if "(exp)" in text or "(iat)" in text:
        return (
            f"The suite's clock stood at the ID token's iat ({claims.get('iat')!r}), as a "
            "provider's token is fresh when sent; its exp is "
            f"{claims.get('exp')!r}. Fix the cassette's iat and exp"
        )
    if "at_hash" in text or "c_hash" in text:
        return (
            "at_hash and c_hash must be the hashes of the access token and the code as the "
            "cassette holds them (their placeholders): keyturn record computes them so when "
            "it signs the ID token again; compute them so in a hand-written cassette"
        )
    return "Fix the cassette's ID token or the spec"


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
    :cvar settings: for a spec with deployment ``settings`` (tenant, domain, realm...), the
        values the cassettes were recorded with, as an app passes them
        (``{"domain": "acme.example.okta.com"}``); the suite deploys the spec with them, as
        ``Keyturn(settings={provider: settings})`` does. A ``rotation`` or
        ``refresh_reuse_grace`` setting left out takes its default, else the template's own
        ``rotation`` or ``refresh_reuse_grace``; the rotation check tries every value.
    :cvar private_key: a PEM private key the clients' credentials carry instead of a
        secret, with ``private_key_id``: for a plugin that mints its client secret.
    """

    provider: ClassVar[str]
    cassettes: ClassVar[Path]
    plugin_manager_factory: ClassVar[Callable[[], KeyturnPluginManager]] = staticmethod(
        get_plugin_manager
    )
    client_id: ClassVar[str] = "example-client-id"
    redirect_uri: ClassVar[str] = "https://app.example.com/auth/callback"
    settings: ClassVar[Mapping[str, str]] = {}
    #: A private key (PEM) for the clients' credentials instead of a client secret, for a
    #: provider whose secret the plugin mints (``keyturn_client_secret``), and its key id.
    private_key: ClassVar[str | None] = None
    private_key_id: ClassVar[str | None] = None

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
        """The spec the cassettes were recorded with: deployed with :attr:`settings` when
        it has deployment settings, as registered otherwise."""
        template = self._registered()[1].spec
        if not template.settings:
            return template
        try:
            return self._deployed(self._values())
        except ConfigurationError as exc:
            names = ", ".join(setting.name for setting in template.settings)
            _fail(
                f"{template.id}: the spec is a template with deployment settings ({names}), "
                f"and keyturn refuses the values the suite deploys it with: {exc}. Set the "
                "class attribute settings = {...} to the values the cassettes were recorded "
                "with (the tenant, domain or realm their URLs hold)"
            )

    def _values(self, rotation: str | None = None) -> dict[str, str]:
        """The deployment values of :attr:`settings`, completed for ``rotation`` and the
        grace (see :attr:`settings`); empty for a spec without settings.

        :param rotation: the value of the spec's ``rotation`` setting, if it has one.
        """
        template = self._registered()[1].spec
        declared = {setting.name: setting for setting in template.settings}
        values = {str(k): str(v) for k, v in dict(self.settings).items()}
        fallbacks = {
            "rotation": template.rotation,
            "refresh_reuse_grace": f"{template.refresh_reuse_grace:g}",
        }
        for name, fallback in fallbacks.items():
            setting = declared.get(name)
            if setting is not None and name not in values and setting.default is None:
                values[name] = fallback
        if rotation is not None and "rotation" in declared:
            values["rotation"] = rotation
        return values if declared else {}

    def _deployed(self, values: Mapping[str, str]) -> ProviderSpec:
        """The spec as ``Keyturn(settings={provider: values})`` deploys it.

        :raises ConfigurationError: keyturn (or the plugin's ``keyturn_deploy``) refuses
            the values.
        """
        pm, registered = self._registered()
        spec = registered.spec
        if not spec.settings:
            return spec
        with Keyturn(
            {spec.id: ClientCredentials(client_id=self.client_id)},
            plugin_manager=pm,
            environ={},
            clock=FakeClock(),
            settings={spec.id: dict(values)},
        ) as kt:
            return kt.provider(spec.id)

    def _client_settings(self, values: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``settings=`` of the clients the suite makes: empty for a spec without
        deployment settings."""
        values = self._values() if values is None else values
        return {self.provider: dict(values)} if values else {}

    def _rotation_kinds(self) -> list[tuple[str, dict[str, str]]]:
        """The rotation kinds the spec must be checked against, each with the deployment
        values that select it: the spec's own kind, or, when the app's tenant chooses
        (a ``rotation`` setting), every kind keyturn and the plugin accept for it.

        :raises pytest.fail.Exception: a ``rotation`` setting that accepts no kind.
        """
        template = self._registered()[1].spec
        if not any(setting.name == "rotation" for setting in template.settings):
            return [(self._spec().rotation, self._values())]
        kinds: list[tuple[str, dict[str, str]]] = []
        refusals: list[str] = []
        for kind in get_args(RefreshRotation):
            values = self._values(kind)
            try:
                deployed = self._deployed(values)
            except ConfigurationError as exc:
                refusals.append(f"{kind}: {exc}")
                continue
            kinds.append((deployed.rotation, values))
        _require(
            kinds,
            f"{template.id}: the spec's rotation setting accepts none of "
            f"{', '.join(get_args(RefreshRotation))}: " + "; ".join(refusals),
        )
        return kinds

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
        self._skip_unscrubbed(path)
        return RecordedInteraction.load(path)

    def _optional(self, scenario: str) -> Path | None:
        """``<scenario>.yaml`` of the folder, or ``None`` when there is none."""
        path = self._folder() / f"{scenario}.yaml"
        if not path.is_file():
            return None
        self._skip_unscrubbed(path)
        return path

    def _skip_unscrubbed(self, path: Path) -> None:
        """Skip the running test when ``path`` holds a live-looking secret.

        vcrpy scrubs tokens again as it loads a cassette, so a replay of an unscrubbed file
        would show keyturn a value other than the file's, and the test would blame the spec
        or the hook. ``test_cassettes_hold_no_secrets`` fails for the file instead, naming
        each value; every test that reads the file runs once it is scrubbed.
        """
        found = _unscrubbed(path)
        if found:
            pytest.skip(
                f"{path.name} is not scrubbed ({found[0]}"
                f"{f', and {len(found) - 1} more' if len(found) > 1 else ''}): "
                "test_cassettes_hold_no_secrets fails for it; this test replays it once it "
                "holds placeholders"
            )

    # -- discovery and keys ---------------------------------------------------------------------

    @staticmethod
    def _discovery_url(spec: ProviderSpec) -> str | None:
        """Where the spec's discovery document is: its ``discovery_url``, else its issuer's
        ``/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 section 4); none
        for a spec without issuer, or with a multi-tenant template and no ``discovery_url``."""
        if spec.discovery_url is not None:
            return spec.discovery_url
        if spec.issuer is not None and not spec.issuer_claims:
            return spec.issuer.rstrip("/") + WELL_KNOWN
        return None

    def _discovery(self, spec: ProviderSpec) -> tuple[RecordedInteraction, ProviderMetadata] | None:
        """The discovery cassette's document, read and checked as keyturn reads it.

        :return: ``None`` when the folder has no ``discovery.yaml`` and the spec can do
            without it (no ``discovery_url``).
        :raises pytest.fail.Exception: a spec with a ``discovery_url`` and no cassette; a
            cassette without the GET of the document; a document keyturn refuses.
        """
        path = self._optional(DISCOVERY_SCENARIO)
        url = self._discovery_url(spec)
        if path is None:
            if spec.discovery_url is not None:
                self._cassette(
                    DISCOVERY_SCENARIO,
                    f" (the spec reads its endpoints from {spec.discovery_url}, so every "
                    "scenario replays its document)",
                )
            return None
        recorded = RecordedInteraction.load(path, method="GET", uri=url)
        name = path.name
        if not recorded.response.ok:
            _fail(f"{name}: the recorded answer is HTTP {recorded.response.status}, not a document")
        try:
            data = json.loads(recorded.response.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            _fail(f"{name}: the recorded answer is not JSON")
        try:
            metadata = parse_metadata(data)
        except DocumentProblem as problem:
            _fail(
                f"{name}: keyturn refuses the discovery document: it {problem.reason}. Record "
                "it again, or fix the hand-written copy"
            )
        return recorded, metadata

    def _resolved_spec(self, spec: ProviderSpec) -> ProviderSpec:
        """``spec`` completed from its discovery cassette as the clients complete it; the
        spec itself when it has no ``discovery_url``."""
        if spec.discovery_url is None:
            return spec
        found = self._discovery(spec)
        assert found is not None, "a spec with a discovery_url fails without its cassette"
        try:
            check_issuer(spec, found[1])
        except ConfigurationError as exc:
            _fail(f"{found[0].path.name}: {exc}")
        return resolve_spec(spec, found[1])

    def _support(
        self, spec: ProviderSpec, resolved: ProviderSpec, recorded: RecordedInteraction
    ) -> list[Path]:
        """The cassettes replayed alongside ``recorded``: the discovery document of a spec
        with a ``discovery_url``, and ``jwks.yaml`` when ``recorded`` lacks the key set.

        :raises pytest.fail.Exception: the resolved spec has a ``jwks_uri`` and no cassette
            holds its GET (keyturn reads the key set before each exchange and refresh).
        """
        extras: list[Path] = []
        sources = [recorded]
        if spec.discovery_url is not None:
            found = self._discovery(spec)
            assert found is not None
            extras.append(found[0].path)
            sources.append(RecordedInteraction.load(found[0].path))
        uri = resolved.jwks_uri
        if uri is None or any(source.holds("GET", uri) for source in sources):
            return extras
        keys = self._optional(JWKS_SCENARIO)
        if keys is not None and RecordedInteraction.load(keys).holds("GET", uri):
            return [*extras, keys]
        scenario = recorded.path.stem
        sent = "the code" if scenario.startswith("exchange") else "the refresh token"
        _fail(
            f"{recorded.path.name}: the spec's jwks_uri is {uri}, and keyturn reads that key "
            f"set before it sends {sent} (to verify the ID token that comes back); neither "
            f"{recorded.path.name} nor {JWKS_SCENARIO}.yaml holds a GET of it. Record the "
            f"scenario again with {record_command(self.provider, scenario, self._folder())} "
            "(the key set's GET is recorded with it), or add "
            f"{JWKS_SCENARIO}.yaml: a GET of {uri} answered with the key set that verifies "
            "the cassettes' ID tokens"
        )

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
        if self.private_key is not None:
            keyed = ClientCredentials(
                client_id=client_id,
                private_key=self.private_key,
                private_key_id=self.private_key_id,
            )
            return {spec.id: keyed}
        return {spec.id: ClientCredentials(client_id=client_id, client_secret=secret)}

    def _play(
        self,
        vcr_factory: VcrFactory,
        clock: FakeClock,
        mode: str,
        recorded: RecordedInteraction,
        action: Callable[[Any], Any],
        catch: type[KeyturnError] = ProviderError,
        values: Mapping[str, str] | None = None,
    ) -> tuple[Any, KeyturnError | None]:
        """Replay one cassette around ``action``; every interaction must play.

        The supporting cassettes (:meth:`_support`) are replayed with it; their
        interactions may play or not.

        :param catch: the errors returned rather than raised.
        :param values: the deployment values of the clients (default: :meth:`_values`).
        """
        from vcr.errors import CannotOverwriteExistingCassetteException

        pm, _ = self._registered()
        spec = self._spec()
        resolved = self._resolved_spec(spec)
        extras = self._support(spec, resolved, recorded)
        credentials = self._credentials(resolved, recorded)
        name = recorded.path.name
        shown = " with ".join([name, *(extra.name for extra in extras)])
        result: Any = None
        error: KeyturnError | None = None
        try:
            with vcr_factory(recorded.path.parent).use_cassette(
                name, persister=_WithSupport(extras)
            ) as cassette:
                try:
                    result = _drive(
                        mode, credentials, pm, clock, action, self._client_settings(values)
                    )
                except catch as exc:
                    error = exc
        except CannotOverwriteExistingCassetteException as exc:
            _fail(
                f"{shown}: keyturn ({mode}) sent a request the cassette does not hold: the "
                "method, the URI or a body field differs from the recording. Fix the spec's "
                f"endpoints or your hook, or re-record the cassette. vcrpy says: {exc}"
            )
        unplayed = [
            " ".join(recorded.requests[index])
            for index in range(recorded.count)
            if not cassette.play_counts[index]
        ]
        _require(
            not unplayed,
            f"{name}: keyturn ({mode}) played {recorded.count - len(unplayed)} of the "
            f"{recorded.count} recorded interactions; it must send every request the cassette "
            f"holds, and did not send {', '.join(unplayed)}",
        )
        return result, error

    def _succeed(
        self,
        vcr_factory: VcrFactory,
        clock: FakeClock,
        mode: str,
        recorded: RecordedInteraction,
        action: Callable[[Any], Any],
        values: Mapping[str, str] | None = None,
    ) -> Any:
        result, error = self._play(
            vcr_factory, clock, mode, recorded, action, catch=KeyturnError, values=values
        )
        if error is not None:
            hint = self._id_token_hint(error, recorded) or (
                "Check the response parsing of your hook, or the cassette's response"
            )
            _fail(
                f"{recorded.path.name}: the recorded answer is a success, but keyturn ({mode}) "
                f"raised {type(error).__name__}: {error}. {hint}"
            )
        return result

    def _id_token_hint(self, error: KeyturnError, recorded: RecordedInteraction) -> str | None:
        """What to change when keyturn refused the ID token of ``recorded``'s answer; ``None``
        for any other error."""
        if not isinstance(error, IdTokenError | RefreshIdTokenError):
            return None
        id_token = (recorded.response.data() or {}).get("id_token")
        if not isinstance(id_token, str):
            return None
        try:
            claims = unverified_claims(id_token)
        except IdTokenError:
            claims = {}
        client_id = recorded.fields.get("client_id")
        return _sign_in_hint(
            error,
            self._resolved_spec(self._spec()),
            claims,
            _unverified_header(id_token),
            client_id or self.client_id,
            "from the recorded request" if client_id else "the class attribute client_id",
            recorded.path.name,
        )

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
        assert isinstance(error, ProviderError)  # what _play catches by default
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
        """Every URL the spec declares is an absolute https URL without a fragment.

        A spec with a ``discovery_url`` may leave its authorization and token endpoints
        empty: they come from the document.
        """
        spec = self._spec()
        problems: list[str] = []
        for name in (
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "revocation_endpoint",
            "end_session_endpoint",
            "discovery_url",
            "jwks_uri",
        ):
            value = getattr(spec, name)
            if value is None or (value == "" and spec.discovery_url is not None):
                continue
            parts = urlsplit(value)
            if parts.scheme != "https" or not parts.hostname or parts.fragment:
                problems.append(f"{name} = {value!r}")
        _report(problems, f"{spec.id}: endpoints must be absolute https URLs without a fragment:")

    def test_spec_agrees_with_its_discovery_document(self) -> None:
        """The spec's issuer, keys and endpoints are those of the provider's discovery document.

        Read from ``discovery.yaml`` (a GET of the spec's ``discovery_url``, or of its
        issuer's ``/.well-known/openid-configuration``). Must agree with the document:

        * ``issuer``: the document's issuer is the spec's, one of its ``issuer_aliases``, or
          its multi-tenant template as written (a spec with only a ``discovery_url``: the
          URL without ``/.well-known/openid-configuration``);
        * ``jwks_uri``: the document's. A spec with endpoints of its own but no
          ``jwks_uri`` fails too: keyturn would not verify ID-token signatures;
        * ``authorization_endpoint`` and ``token_endpoint``, where the spec sets them: the
          document's, exactly (Google's typed endpoints are its document's);
        * ``id_token_signing_algs``, where the spec sets it: algorithms the document lists
          in ``id_token_signing_alg_values_supported``;
        * ``client_auth``: among ``token_endpoint_auth_methods_supported`` when the document
          lists them;
        * ``authorization_response_iss``: only with the document's
          ``authorization_response_iss_parameter_supported``.

        Allowed to differ: ``userinfo_endpoint``, ``revocation_endpoint``,
        ``end_session_endpoint``, scopes and PKCE (a spec may choose among what the provider
        offers), and whatever the spec leaves out (it comes from the document).

        Skipped, with the command that records the document, for a spec with an issuer and
        no ``discovery.yaml``; skipped for a spec with neither issuer nor ``discovery_url``
        (not an OpenID Provider).
        """
        spec = self._spec()
        found = self._discovery(spec)
        if found is None:
            if self._discovery_url(spec) is None:
                pytest.skip(
                    f"{spec.id}: the spec names no issuer and no discovery_url, so there is no "
                    "discovery document to compare it with"
                )
            folder = self._folder()
            pytest.skip(
                f"{spec.id}: no {DISCOVERY_SCENARIO}.yaml to compare the spec's issuer and keys "
                f"with; record the provider's document at {self._discovery_url(spec)} with "
                f"{record_command(self.provider, DISCOVERY_SCENARIO, folder)}"
            )
        recorded, metadata = found
        explicit = spec.model_fields_set
        problems: list[str] = []
        if spec.issuer is not None:
            allowed = {spec.issuer, *spec.issuer_aliases}
            if metadata.issuer not in allowed:
                problems.append(
                    f"issuer: the document's is {metadata.issuer!r}, the spec's "
                    f"{spec.issuer!r} (issuer_aliases: "
                    f"{', '.join(sorted(spec.issuer_aliases)) or 'none'}): set the spec's "
                    "issuer to the document's; its ID tokens carry it"
                )
        elif spec.discovery_url is not None:
            try:
                check_issuer(spec, metadata)
            except ConfigurationError as exc:
                problems.append(f"issuer: {exc}")
        else:
            problems.append(
                f"issuer: the spec names none; set it to the document's, {metadata.issuer!r}"
            )
        if spec.jwks_uri is not None:
            if spec.jwks_uri != metadata.jwks_uri:
                problems.append(
                    f"jwks_uri: the document's is {metadata.jwks_uri!r}, the spec's "
                    f"{spec.jwks_uri!r}"
                )
        elif spec.discovery_url is None:
            problems.append(
                f"jwks_uri: the spec has none, so keyturn does not verify the signature of its "
                f"ID tokens; set it to the document's, {metadata.jwks_uri!r}"
            )
        for field in ("authorization_endpoint", "token_endpoint"):
            mine, theirs = getattr(spec, field), getattr(metadata, field)
            if mine and mine != theirs:
                problems.append(f"{field}: the document's is {theirs!r}, the spec's {mine!r}")
        offered = frozenset(metadata.id_token_signing_alg_values_supported) & SIGNING_ALGORITHMS
        if spec.discovery_url is None or "id_token_signing_algs" in explicit:
            extra = sorted(spec.id_token_signing_algs - offered)
            if extra:
                problems.append(
                    f"id_token_signing_algs: the spec allows {', '.join(extra)}, which the "
                    "document does not list (id_token_signing_alg_values_supported: "
                    f"{', '.join(metadata.id_token_signing_alg_values_supported)}); allow only "
                    f"what the provider signs with: {', '.join(sorted(offered))}"
                )
        methods = metadata.token_endpoint_auth_methods_supported
        if (
            methods is not None
            and (spec.discovery_url is None or "client_auth" in explicit)
            and spec.client_auth not in methods
        ):
            problems.append(
                f"client_auth: {spec.client_auth!r} is not among the document's "
                f"token_endpoint_auth_methods_supported ({', '.join(methods)})"
            )
        if (
            spec.authorization_response_iss
            and not metadata.authorization_response_iss_parameter_supported
        ):
            problems.append(
                "authorization_response_iss: the spec refuses a redirect back without iss, "
                "but the document does not set authorization_response_iss_parameter_supported, "
                "so the provider may not send it (RFC 9207)"
            )
        _report(
            problems,
            f"{spec.id}: the spec disagrees with the discovery document in "
            f"{recorded.path.name} ({recorded.uri}):",
        )

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

    def test_authorize_url(self, keyturn_vcr: VcrFactory) -> None:
        """The URL carries what RFC 6749, RFC 7636 and the spec ask for, with a fresh state.

        A spec with a ``discovery_url`` is resolved first, replaying ``discovery.yaml`` as the
        blocking client fetches it, and the URL is compared with the document's endpoint.
        """
        pm, _ = self._registered()
        deployed = self._spec()
        spec = self._resolved_spec(deployed)
        credentials = {spec.id: ClientCredentials(client_id=self.client_id)}
        options: dict[str, Any] = {"plugin_manager": pm, "environ": {}, "clock": FakeClock()}
        if self._client_settings():
            options["settings"] = self._client_settings()
        if deployed.discovery_url is None:
            with Keyturn(credentials, **options) as kt:
                first = kt.authorize_url(spec.id, self.redirect_uri)
                second = kt.authorize_url(spec.id, self.redirect_uri)
        else:
            found = self._discovery(deployed)
            assert found is not None
            path = found[0].path
            with (
                keyturn_vcr(path.parent).use_cassette(path.name),
                httpx.Client(trust_env=False) as http,
                Keyturn(credentials, http_client=http, **options) as kt,
            ):
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
        # The code as the cassette holds it: an ID token's c_hash is computed over it.
        code = fields.get("code") or FAKE_CODE
        issued = _recorded_iat(recorded)
        if issued is not None:
            keyturn_clock.set(issued)
        tokens = self._succeed(
            keyturn_vcr,
            keyturn_clock,
            mode,
            recorded,
            lambda client: client.exchange_code(
                spec.id, code, redirect_uri=redirect_uri, code_verifier=verifier
            ),
        )
        self._check_tokens(tokens, recorded, keyturn_clock, spec, mode)

    @pytest.mark.parametrize("mode", _MODES)
    def test_sign_in_checks_the_id_token(
        self, mode: str, keyturn_vcr: VcrFactory, keyturn_clock: FakeClock
    ) -> None:
        """A sign-in replayed over exchange_code.yaml passes keyturn's ID-token checks.

        The authorization request is the recorded one: its redirect URI and code, the nonce
        the ID token carries, PKCE when the request sent a verifier, a state of its own. The
        clock stands at the ID token's ``iat`` (a provider's token is fresh when sent).
        ``Keyturn.sign_in`` (``AsyncKeyturn.sign_in``) then checks the token as in every real
        sign-in: the signature against the key set when the spec has a ``jwks_uri`` (the
        cassette, or ``jwks.yaml``, must hold its GET), ``iss`` against the spec's issuer,
        ``aud`` and ``azp`` against the client id, the nonce, ``exp`` and ``iat``, and
        ``at_hash``/``c_hash``. A provider whose token response carries no ID token, for a
        spec that does not ask for ``openid``, is skipped with the reason.
        """
        spec = self._resolved_spec(self._spec())
        recorded = self._cassette("exchange_code")
        name = recorded.path.name
        id_token = recorded.response_data().get("id_token")
        if not isinstance(id_token, str) or not id_token:
            _require(
                "openid" not in spec.default_scopes,
                f"{name}: the spec's default scopes ask for openid, so the provider answers "
                "with an ID token, but the recorded answer carries no id_token. Record the "
                "exchange again with the default scopes",
            )
            pytest.skip(
                f"{spec.id}: {name}'s answer carries no id_token and the spec does not ask for "
                "openid, so there is no ID token to check: not an OpenID Connect sign-in"
            )
        try:
            claims = unverified_claims(id_token)
        except IdTokenError as exc:
            _fail(f"{name}: the recorded id_token cannot be read: {exc}")
        _require(
            spec.issuer is not None,
            f"{spec.id}: the spec names no issuer, so keyturn cannot check the iss of its ID "
            f"tokens ({claims.get('iss')!r} in {name}) nor the iss of the redirect back (RFC "
            "9207). Set the spec's issuer to the provider's issuer",
        )
        if spec.jwks_uri is not None:
            _require(
                not _signature_scrubbed(id_token),
                f"{name}: the ID token's header and signature were scrubbed away (REDACTED), "
                f"so it cannot be verified with the key set of the spec's jwks_uri "
                f"({spec.jwks_uri}). Record the cassette again with "
                f"{record_command(self.provider, 'exchange_code', self._folder())}: it signs "
                "the ID token again with a key made for the cassette and keeps that key in "
                "the recorded key set. In a hand-written cassette, sign the claims with a key "
                "of your own and put its public JWK in the key set's GET",
            )
        issued = claims.get("iat")
        if isinstance(issued, int | float) and not isinstance(issued, bool):
            keyturn_clock.set(issued)
        redirect_uri = recorded.fields.get("redirect_uri")
        _require(
            redirect_uri,
            f"{name}: the recorded exchange has no redirect_uri field; keyturn always sends "
            "the redirect URI of the authorize URL (RFC 6749 §4.1.3)",
        )
        assert redirect_uri is not None
        code = recorded.fields.get("code") or FAKE_CODE
        nonce = claims.get("nonce") if isinstance(claims.get("nonce"), str) else None
        pkce = "code_verifier" in recorded.fields

        def callback(request: AuthorizationRequest) -> dict[str, str]:
            query = {"state": request.state.get_secret_value(), "code": code}
            if request.issuer_required and request.issuer is not None:
                query["iss"] = request.issuer  # RFC 9207: as the provider's redirect names it
            return query

        def sign_in(client: Any) -> Any:
            authorize = client.authorize_url_op(spec.id, redirect_uri, nonce=nonce, pkce=pkce)
            if isinstance(client, AsyncKeyturn):

                async def signed_in() -> JWT:
                    request = await arun(authorize, client.http_client)
                    return await client.sign_in(request, callback(request), fetch_profile=False)

                return signed_in()
            request = run(authorize, client.http_client)
            return client.sign_in(request, callback(request), fetch_profile=False)

        token, error = self._play(
            keyturn_vcr, keyturn_clock, mode, recorded, sign_in, catch=KeyturnError
        )
        if error is not None:
            hint = self._id_token_hint(error, recorded) or "Fix the cassette or the spec"
            _fail(
                f"{name}: a sign-in replayed through keyturn ({mode}) was refused with "
                f"{type(error).__name__}: {error}. {hint}"
            )
        _require(
            isinstance(token, JWT) and token.error is None,
            f"{name}: keyturn ({mode}) signed in, but the jwt callback returned {token!r}",
        )
        kept = token.tokens.id_token
        _require(
            kept is not None and kept.get_secret_value() == id_token,
            f"{name}: the signed-in TokenSet does not keep the ID token the provider sent",
        )

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

    def test_spec_rotation_is_complete(self) -> None:
        """The spec says all a client needs to know about its refresh-token rotation.

        * ``detect_reuse`` (the provider revokes the grant when a rotated refresh token comes
          back) needs the grace window during which it still accepts one:
          ``refresh_reuse_grace``, or a deployment setting (``refresh_reuse_grace``, or
          ``rotation`` for a provider whose tenant chooses);
        * a ``rotation`` setting is of kind ``rotation``, a ``refresh_reuse_grace`` setting
          of kind ``seconds``;
        * a provider that never rotates (``rotation="none"``, no ``rotation`` setting) has
          no ``refresh_rotated.yaml``: such a cassette shows rotation the spec denies.
        """
        spec = self._spec()
        settings = {setting.name: setting for setting in spec.settings}
        problems: list[str] = []
        wanted = {"rotation": "rotation", "refresh_reuse_grace": "seconds"}
        for name, kind in wanted.items():
            setting = settings.get(name)
            if setting is not None and setting.kind != kind:
                problems.append(
                    f"the {name} setting is of kind {setting.kind!r}; declare it with "
                    f"kind={kind!r} so keyturn reads and checks its value"
                )
        if (
            spec.rotation == "detect_reuse"
            and not spec.refresh_reuse_grace
            and not {"rotation", "refresh_reuse_grace"} & set(settings)
        ):
            problems.append(
                "rotation='detect_reuse', but no refresh_reuse_grace: a provider that detects "
                "reuse revokes the whole grant when a rotated refresh token comes back, and "
                "the grace window is how long two refreshes may race without signing the "
                "user out. Set refresh_reuse_grace to the provider's documented window (in "
                "seconds), or, where each tenant sets it, declare a refresh_reuse_grace "
                "setting (kind='seconds')"
            )
        if spec.rotation == "none" and "rotation" not in settings:
            rotated = self._folder() / "refresh_rotated.yaml"
            if rotated.is_file():
                problems.append(
                    f"rotation='none', but the folder has {rotated.name}, which shows a "
                    "refresh that returned a new refresh token. If the provider rotates, "
                    "declare its kind (rotate, keep_old or detect_reuse); if the tenant "
                    "chooses, declare a rotation setting; otherwise remove the cassette"
                )
        _report(problems, f"{spec.id}: the spec's refresh-token rotation is incomplete:")

    @pytest.mark.parametrize("mode", _MODES)
    def test_refresh_token_rotation_matches_the_spec(
        self, mode: str, keyturn_vcr: VcrFactory, keyturn_clock: FakeClock
    ) -> None:
        """The refresh cassettes show the rotation kind the spec declares.

        * ``none``: ``refresh_ok.yaml`` keeps the refresh token that was sent, and the
          TokenSet still holds it;
        * ``rotate``, ``keep_old``, ``detect_reuse``: ``refresh_rotated.yaml`` answers with
          a new refresh token, and the TokenSet holds that one.

        A provider whose tenant chooses (a ``rotation`` setting) is checked against every
        kind the setting accepts, each replayed with the clients deployed for it: both
        cassettes are then needed, ``refresh_ok`` from a tenant that does not rotate.
        """
        for kind, values in self._rotation_kinds():
            self._check_rotation(mode, keyturn_vcr, keyturn_clock, kind, values)

    def _check_rotation(
        self,
        mode: str,
        vcr_factory: VcrFactory,
        clock: FakeClock,
        kind: str,
        values: Mapping[str, str],
    ) -> None:
        """Replay the refresh cassette of one rotation kind (see the test above)."""
        spec = self._spec()
        choice = "rotation" in values and any(s.name == "rotation" for s in spec.settings)
        declared = f"the deployment setting rotation={kind!r}" if choice else f"rotation={kind!r}"
        rotates = kind != "none"
        if rotates:
            recorded = self._cassette(
                "refresh_rotated",
                f" (the spec declares {declared}, so a refresh returns a new refresh token)",
            )
        else:
            recorded = self._cassette("refresh_ok")
        old = self._old_tokens(spec, recorded, clock)
        assert old.refresh_token is not None
        sent = old.refresh_token.get_secret_value()
        tokens = self._succeed(
            vcr_factory, clock, mode, recorded, lambda client: client.refresh(old), values
        )
        kept = tokens.refresh_token.get_secret_value() if tokens.refresh_token else None
        name = recorded.path.name
        if rotates:
            _require(
                kept is not None and kept != sent,
                f"{name}: the spec declares {declared}, so each refresh returns a new "
                "refresh token, but the refresh left the refresh token that was sent in "
                "place. If the provider does not rotate, declare rotation='none'; if it "
                "does, the cassette's response must carry the new refresh_token and your "
                "keyturn_refresh hook must return it",
            )
            returned = recorded.response_data().get("refresh_token")
            _require(
                kept == returned,
                f"{name}: the TokenSet's refresh token is not the one the response carries "
                f"(the spec declares {declared})",
            )
        else:
            _require(
                kept == sent,
                f"{name}: the spec declares {declared}, but the TokenSet's refresh token is "
                "not the one that was sent. If the provider rotates, declare its kind "
                "(rotate, keep_old or detect_reuse) and add refresh_rotated.yaml; otherwise "
                "keep tokens.refresh_token in your keyturn_refresh hook",
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
        """No YAML file in the folder holds a live-looking credential.

        What counts is listed in :mod:`pytest_keyturn.cassettes` ("What counts as a live
        secret"): a JWT that is not signed with a cassette key, a long opaque value in a
        token field, a client secret or assertion that is not a placeholder, an
        ``Authorization``, ``Cookie`` or ``Set-Cookie`` header, and the known token shapes.
        Each finding names the file, the interaction, where the value sits and its field,
        never the value. The other tests skip a file that fails here (and say so), so this
        test is the one that fails for it.
        """
        folder = self._folder()
        files = sorted(folder.rglob("*.yaml")) if folder.is_dir() else []
        _require(files, f"{folder} holds no cassettes (*.yaml)")
        problems = [
            f"{path.relative_to(folder).as_posix()}, {finding}"
            if finding.interaction is not None
            else f"{path.relative_to(folder).as_posix()}: {finding.problem}"
            for path in files
            for finding in _unscrubbed(path)
        ]
        _report(
            problems,
            f"{folder}: cassettes must be scrubbed. `keyturn record` scrubs what it records; "
            "in a hand-written cassette, write REDACTED-<8 hex> for tokens and codes, "
            "REDACTED for client secrets, REDACTED-<8 hex>.<claims>.REDACTED for an ID token "
            "keyturn does not verify (or sign it with a key whose kid starts with "
            "keyturn-cassette-), and leave out Authorization and Cookie headers:",
        )
