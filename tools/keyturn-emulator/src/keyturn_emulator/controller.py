"""``Emulator``: start the provider emulator, point specs at it, and steer it from a test."""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

from keyturn.errors import ConfigurationError, KeyturnError
from keyturn.models import ClientCredentials, ProviderSpec

from .app import EmulatorApp
from .faults import Consent, Dice, Knobs
from .gate import Gate
from .idtoken import signing_alg
from .keys import ALGORITHMS, KeyRing
from .profiles import PROFILES, Algorithm, Behaviour
from .registration import Registration
from .routes.discovery import document
from .server import ServerThread
from .state import Store, User

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "AuthorizeRefused", "Emulator"]

#: The client the emulator accepts unless told otherwise. Not a secret: nothing real uses it.
DEFAULT_CLIENT_ID = "keyturn-emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-secret-example"

#: Spec fields a profile may lack; :meth:`Emulator.point` clears those it does not serve.
_OPTIONAL_ENDPOINTS = ("jwks_uri", "discovery_url", "end_session_endpoint", "userinfo_endpoint")

_TICKET = re.compile(r"name='ticket' value='([^']+)'")
_ERROR = re.compile(r"data-error='([^']+)'")
_POSTED_FORM = re.compile(r"<form method='post' action='[^']*'><input type='hidden'")
_HIDDEN_FIELD = re.compile(r"<input type='hidden' name='([^']*)' value='([^']*)'>")


class AuthorizeRefused(KeyturnError):
    """The authorize endpoint answered with an error page instead of a redirect.

    That happens when the client id or the redirect URI is wrong (RFC 6749 §4.1.2.1 forbids
    redirecting then). Other problems come back as ``error=...`` in the callback's query.

    :ivar status: the HTTP status of the page.
    :ivar error: the OAuth error the page names, when it names one.
    """

    def __init__(self, status: int, error: str | None) -> None:
        self.status = status
        self.error = error
        super().__init__(f"the emulator's authorize endpoint refused (HTTP {status}): {error}")


class Emulator:
    """A local OAuth 2.0 provider with ``google``, ``github``, ``strict`` and ``oidc`` profiles.

    :param access_token_lifetime: seconds access tokens live; ``None``: never expire.
    :param refresh_token_lifetime: seconds refresh tokens live; ``None``: no expiry.
    :param fault_rate: fraction of token requests answered 503.
    :param latency: seconds added to every provider request.
    :param drop_rate: fraction of token requests whose connection is closed unprocessed.
    :param seed: seed for the fault decisions (reproducible runs).
    :param lost_answer_rate: fraction of token requests processed, then closed without an
        answer (the provider's state changed; the client never learns how).
    :param clock: returns epoch seconds; drives every expiry (inject a fake one in tests).
    :param code_lifetime: seconds an authorization code stays usable.
    :param consent: ``auto`` approves at once; ``page`` shows Allow/Deny (for a browser).
    :param port: the port to listen on; 0 picks a free one.
    :param client_id: the client id the emulator accepts.
    :param client_secret: its secret.
    :param redirect_uris: redirect URIs accepted besides any loopback http(s) URI.
    :param post_logout_redirect_uris: URIs the end-session endpoint may send the browser
        back to (exact matches only; more with :meth:`register_post_logout_redirect_uris`).
    :param client_jwks: the client's public keys for ``private_key_jwt``, a JWK Set or one
        JWK (see :meth:`register_client_keys`).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Its signing keys
    (:mod:`keyturn_emulator.keys`) live as long as the object, across restarts.

    :raises ValueError: a knob or the port out of range, a post-logout redirect URI that is
        not an absolute http(s) URL, or client keys that are not public keys.
    """

    def __init__(
        self,
        access_token_lifetime: int | None = 3600,
        refresh_token_lifetime: int | None = None,
        fault_rate: float = 0.0,
        latency: float = 0.0,
        drop_rate: float = 0.0,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        *,
        lost_answer_rate: float = 0.0,
        code_lifetime: int = 600,
        consent: Consent = "auto",
        port: int = 0,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        redirect_uris: Iterable[str] = (),
        post_logout_redirect_uris: Iterable[str] = (),
        client_jwks: Mapping[str, Any] | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be from 0 to 65535, got {port!r}")
        self._knobs = Knobs(
            access_token_lifetime=access_token_lifetime,
            refresh_token_lifetime=refresh_token_lifetime,
            code_lifetime=code_lifetime,
            fault_rate=fault_rate,
            drop_rate=drop_rate,
            lost_answer_rate=lost_answer_rate,
            latency=latency,
            seed=seed,
            consent=consent,
        )
        self._dice = Dice(seed)
        self.store = Store(clock)
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uris = frozenset(redirect_uris)
        self.keys = KeyRing()
        self.registration = Registration(post_logout_redirect_uris)
        if client_jwks is not None:
            self.registration.register_keys(client_jwks)
        self._port = port
        self._lock = threading.Lock()
        self._server: ServerThread | None = None
        self._app: EmulatorApp | None = None

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start serving on 127.0.0.1 (no-op if running); returns ``self``.

        :raises OSError: the port cannot be bound.
        """
        with self._lock:
            if self._server is not None:
                return self
            server = ServerThread("127.0.0.1", self._port)
            server.start(self._make_app)
            self._server = server
        return self

    def _make_app(self, port: int) -> Gate:
        app = EmulatorApp(
            self.store,
            f"http://127.0.0.1:{port}",
            self._client_id,
            self._client_secret,
            self._current_knobs,
            self.configure,
            self._redirect_uris,
            self.keys,
            self.registration,
        )
        self._app = app
        return Gate(app.build(), app.token_paths(), self._current_knobs, self._dice, self.store)

    def _current_knobs(self) -> Knobs:
        return self._knobs

    def stop(self) -> None:
        """Stop serving and join the server thread. Safe to call twice."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is up."""
        server = self._server
        return server is not None and server.running

    def _running_app(self) -> EmulatorApp:
        app = self._app
        if app is None or self._server is None:
            raise ConfigurationError("the emulator is not running: call start() or use 'with'")
        return app

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``.

        :raises ConfigurationError: the emulator is not running.
        """
        return self._running_app().base_url

    @property
    def credentials(self) -> ClientCredentials:
        """The client credentials the emulator accepts (for every profile)."""
        return ClientCredentials(client_id=self._client_id, client_secret=self._client_secret)

    @property
    def profiles(self) -> tuple[str, ...]:
        """The profile names: ``google``, ``github``, ``strict``, ``oidc``."""
        return tuple(PROFILES)

    def _behaviour(self, profile: str) -> Behaviour:
        behaviour = PROFILES.get(profile)
        if behaviour is None:
            raise ConfigurationError(
                f"the emulator has no profile {profile!r} "
                f"(profiles: {', '.join(PROFILES)}; pass profile= to choose one)"
            )
        return behaviour

    def endpoints(self, profile: str) -> dict[str, str]:
        """The profile's endpoint URLs, keyed by :class:`~keyturn.ProviderSpec` field name.

        ``authorization_endpoint``, ``token_endpoint``, ``userinfo_endpoint`` and
        ``revocation_endpoint`` always; ``jwks_uri`` where the profile issues ID tokens,
        ``discovery_url`` where it has an issuer, ``end_session_endpoint`` where it has
        RP-Initiated Logout (``oidc``). GitHub's revocation endpoint keeps its
        ``{client_id}`` placeholder, as the plugin's spec does.

        :raises ConfigurationError: no such profile, or the emulator is not running.
        """
        return self._running_app().endpoints(self._behaviour(profile))

    def issuer(self, profile: str) -> str | None:
        """The profile's issuer URL (``iss`` on callbacks and in ID tokens), if it has one."""
        return self._running_app().issuer(self._behaviour(profile))

    def discovery_url(self, profile: str) -> str | None:
        """The profile's discovery document, ``<issuer>/.well-known/openid-configuration``,
        if it has an issuer."""
        return self.endpoints(profile).get("discovery_url")

    def jwks_uri(self, profile: str) -> str | None:
        """Where the profile serves its public keys, if it issues ID tokens."""
        return self.endpoints(profile).get("jwks_uri")

    def discovery_document(self, profile: str) -> dict[str, Any]:
        """The discovery document the profile serves (without a fault), read without a request
        and without counting one.

        :raises ConfigurationError: no such profile, one without an issuer, or the emulator is
            not running.
        """
        behaviour = self._behaviour(profile)
        if not behaviour.has_issuer:
            raise ConfigurationError(f"the {profile} profile has no issuer, so no discovery")
        return document(self._running_app(), behaviour)

    def spec(self, profile: str = "strict", *, id: str | None = None) -> ProviderSpec:
        """A plain :class:`~keyturn.ProviderSpec` for a profile, served by keyturn's defaults.

        Meant for ``strict`` and ``oidc``, which need no plugin. ``google`` works too;
        ``github`` does not (its revocation and profile need the keyturn-github plugin: use
        :meth:`point`). The spec carries every endpoint of :meth:`endpoints` (``jwks_uri``,
        ``discovery_url`` and ``end_session_endpoint`` included), the algorithms the profile
        advertises as ``id_token_signing_algs``, and ``authorization_response_iss`` for
        profiles with an issuer, which send ``iss`` on every redirect.

        :param profile: the profile.
        :param id: the provider id; the profile name by default.
        :raises ConfigurationError: unknown profile, or ``github``.
        """
        behaviour = self._behaviour(profile)
        if behaviour.form_unless_json:
            raise ConfigurationError(
                "the github profile needs the keyturn-github plugin's hooks: use "
                "emu.point(kt.provider('github'))"
            )
        authorize_params = {"access_type": "offline"} if behaviour.offline_param else {}
        return ProviderSpec(
            id=id or profile,
            name=f"{behaviour.display_name} (keyturn emulator)",
            issuer=self.issuer(profile),
            authorization_response_iss=behaviour.has_issuer,
            id_token_signing_algs=frozenset(behaviour.id_token_algs),
            default_scopes=("openid", "email", "profile"),
            authorize_params=authorize_params,
            extra_authorize_params=frozenset({behaviour.login_param, "prompt"}),
            client_auth="client_secret_basic"
            if behaviour.single_auth_method
            else ("client_secret_post"),
            pkce_method="S256",
            rotates_refresh_tokens=behaviour.rotation != "none",
            scope_separator=behaviour.scope_separator,
            **self.endpoints(profile),
        )

    def point(self, spec: ProviderSpec, profile: str | None = None) -> ProviderSpec:
        """A copy of ``spec`` with every endpoint, and the issuer, at the emulator.

        Give the copy to ``Keyturn(providers=[...])``: a spec whose id is installed keeps its
        plugin's hooks, so the shipped plugin runs unchanged against the emulator. Nothing
        is left pointing at the real provider: ``jwks_uri`` is the profile's (or ``None``),
        and ``discovery_url`` and ``end_session_endpoint`` are the profile's where the spec
        has one and ``None`` otherwise (a spec that types its endpoints keeps doing so, and
        a provider that has no logout endpoint does not gain one). For profiles that issue ID
        tokens, ``id_token_signing_algs`` becomes the algorithms the profile advertises, so a
        pointed spec verifies ID tokens against the emulator's keys.

        :param spec: usually an installed plugin's spec, ``kt.provider("google")``.
        :param profile: the profile to answer as; the one named like ``spec.id`` by default.
        :raises ConfigurationError: no such profile.
        """
        name = profile or spec.id
        behaviour = self._behaviour(name)
        update: dict[str, Any] = dict.fromkeys(_OPTIONAL_ENDPOINTS)
        update.update(self.endpoints(name))
        for field in ("discovery_url", "end_session_endpoint"):
            if getattr(spec, field) is None:
                update[field] = None
        update["issuer"] = self.issuer(name)
        update["issuer_aliases"] = frozenset()
        if spec.issuer_claims:  # the profile has one issuer: no template left to fill
            update["issuer_claims"] = {}
            update["issuer_claim_values"] = {}
        if behaviour.id_tokens:
            update["id_token_signing_algs"] = frozenset(behaviour.id_token_algs)
        return spec.model_copy(update=update)

    # -- steering -------------------------------------------------------------------------

    @property
    def knobs(self) -> Knobs:
        """The current knobs."""
        return self._knobs

    def configure(self, **knobs: Any) -> Knobs:
        """Change knobs at run time (lifetimes apply to tokens issued from now on).

        Setting ``seed`` restarts the fault decisions from it.

        :raises TypeError: an unknown knob.
        :raises ValueError: a value out of range.
        """
        with self._lock:
            self._knobs = self._knobs.changed(**knobs)
            if "seed" in knobs:
                self._dice.reseed(self._knobs.seed)
            return self._knobs

    def counters(self, profile: str | None = None) -> dict[str, int]:
        """A snapshot of the counters of ``profile``, or summed over every profile.

        See :data:`keyturn_emulator.state.COUNTERS` for the names; error codes are added
        as they occur.
        """
        names = list(PROFILES) if profile is None else [self._behaviour(profile).name]
        return self.store.counters(names)

    def reset_counters(self) -> None:
        """Zero every counter."""
        self.store.reset_counters()

    def revoke_grants(self, profile: str | None = None, user: str | None = None) -> int:
        """Revoke grants at the provider side, as a user does in the provider's settings.

        Every token of those grants stops working; a refresh then gets the profile's
        permanent error (Google 400 ``invalid_grant``, GitHub 200 ``bad_refresh_token``,
        strict 400 ``invalid_grant``).

        :param profile: only this profile's grants; all profiles when ``None``.
        :param user: only this user's (login hint, email, login or ``sub``); all when ``None``.
        :return: how many grants were revoked.
        """
        if profile is not None:
            self._behaviour(profile)
        return self.store.revoke_grants(profile, user)

    # -- OpenID Connect: keys, clients, sessions -----------------------------------------

    def id_token_alg(self, profile: str) -> Algorithm:
        """The algorithm the profile signs ID tokens with now (its own, or the
        ``id_token_alg`` knob's when the profile advertises that one).

        :raises ConfigurationError: no such profile, or one that issues no ID token.
        """
        behaviour = self._behaviour(profile)
        if not behaviour.id_tokens:
            raise ConfigurationError(f"the {profile} profile issues no ID tokens")
        return signing_alg(behaviour, self._knobs)

    def signing_kid(self, profile: str) -> str:
        """The ``kid`` of the key that signs the profile's next ID token.

        :raises ConfigurationError: no such profile, or one that issues no ID token.
        """
        return self.keys.active_kid(self.id_token_alg(profile))

    def sign_id_token(self, claims: Mapping[str, Any] | bytes, profile: str = "google") -> str:
        """``claims`` signed as the profile signs its ID tokens now: its algorithm (see
        :meth:`id_token_alg`) and that algorithm's active key, whose ``kid`` the header names.

        For tests that change an ID token the emulator issued (a claim added, a claim
        changed) and need it to verify against the profile's JWKS as before. Nothing is
        added: no ``at_hash``, no times; the claims are signed as given.

        :param claims: the claims, or the payload's bytes as they are to be signed.
        :param profile: the profile whose signing the token is to match.
        :raises ConfigurationError: no such profile, or one that issues no ID token.
        """
        return self.keys.sign(claims, self.id_token_alg(profile))

    def jwks(self, profile: str) -> dict[str, Any]:
        """The JWK Set the profile serves (without a fault), read without a request and
        without counting one: public parts only.

        :raises ConfigurationError: no such profile, or one that issues no ID token.
        """
        behaviour = self._behaviour(profile)
        if not behaviour.id_tokens:
            raise ConfigurationError(f"the {profile} profile issues no ID tokens")
        return self.keys.jwks(behaviour.id_token_algs)

    def rotate_keys(
        self, *, keep_previous: bool = True, algs: Iterable[Algorithm] = ALGORITHMS
    ) -> dict[str, str]:
        """Make a new signing key active, as a provider rotating its keys.

        The new key's ``kid`` appears in the JWKS only now, so a client holding the old set
        meets an unknown ``kid`` until it fetches the set again.

        :param keep_previous: keep the old key in the JWKS until the next rotation (tokens it
            signed still verify); ``False`` drops it at once.
        :param algs: the algorithms whose keys to rotate; all by default.
        :return: the new active ``kid`` of each.
        :raises ValueError: an algorithm the emulator does not sign with.
        """
        return self.keys.rotate(algs, keep_previous=keep_previous)

    def register_client_keys(self, jwks: Mapping[str, Any]) -> list[str | None]:
        """Register the client's public keys for ``private_key_jwt``, replacing any before.

        :param jwks: a JWK Set (``{"keys": [...]}``) or one JWK, public parts only, e.g.
            ``{"keys": [key.as_dict(private=False)]}`` for a joserfc key.
        :return: the keys' ``kid``s (``None`` for a key without one).
        :raises ValueError: not public RSA, EC or OKP keys.
        """
        return self.registration.register_keys(jwks)

    def register_post_logout_redirect_uris(self, *uris: str) -> list[str]:
        """Register URIs the end-session endpoint may redirect to (matched exactly).

        :return: every registered URI, sorted.
        :raises ValueError: a URI that is not an absolute http(s) URL without a fragment.
        """
        return self.registration.register_logout_uris(uris)

    def logouts(self, profile: str | None = None) -> int:
        """How many RP-Initiated Logout requests passed validation, at ``profile`` or at all.

        :raises ConfigurationError: no such profile.
        """
        return self.counters(profile)["logout"]

    def signed_in(self, profile: str = "oidc", user: str | None = None) -> bool:
        """Whether ``user`` (a login hint; the default account when ``None``) has a session at
        the profile: signed in by an approved authorization, not yet logged out.

        :raises ConfigurationError: no such profile, or one without sessions.
        """
        behaviour = self._behaviour(profile)
        if not behaviour.sessions:
            raise ConfigurationError(f"the {profile} profile keeps no sessions")
        return self.store.session(behaviour.name, User.from_hint(user)) is not None

    def grant(
        self,
        profile: str = "strict",
        *,
        user: str | None = None,
        scopes: Iterable[str] = ("openid", "email", "profile"),
    ) -> dict[str, Any]:
        """Tokens of a new grant, as if the user had consented and the app exchanged the code.

        No request is made and nothing is counted: a quick way to hold thousands of signed-in
        users (a load test) where :meth:`authorize` and a code exchange would cost two round
        trips each. The tokens follow the current lifetimes and behave like any others.

        :param profile: the profile whose tokens to issue.
        :param user: the account (a login hint); the default account when ``None``.
        :param scopes: the granted scopes.
        :return: the token endpoint's answer for such a grant: ``access_token``,
            ``token_type``, ``scope``, and ``expires_in``, ``refresh_token`` and
            ``refresh_token_expires_in`` when they apply (no ID token).
        :raises ConfigurationError: no such profile.
        """
        behaviour = self._behaviour(profile)
        knobs = self._knobs
        issued = self.store.grant(
            behaviour,
            self._client_id,
            User.from_hint(user),
            tuple(scopes),
            knobs.access_token_lifetime,
            knobs.refresh_token_lifetime,
        )
        answer: dict[str, Any] = {
            "access_token": issued.access_token,
            "token_type": behaviour.token_type,
            "scope": behaviour.scope_separator.join(issued.grant.scopes),
        }
        if issued.access_expires_in is not None:
            answer["expires_in"] = issued.access_expires_in
        if issued.refresh_token is not None:
            answer["refresh_token"] = issued.refresh_token
            if issued.refresh_expires_in is not None:
                answer["refresh_token_expires_in"] = issued.refresh_expires_in
        return answer

    def authorize(self, url: str, *, deny: bool = False, timeout: float = 10.0) -> dict[str, str]:
        """Play the browser: open the authorize URL and return the callback's query.

        The redirect to the app is not followed. With the consent page on (``consent="page"``)
        or ``deny=True``, the page's Allow or Deny button is pressed.

        :param url: the authorize URL, e.g. ``kt.authorize_url(...).url``.
        :param deny: press Deny: the query then carries ``error=access_denied``.
        :return: the callback's query parameters (``code``, ``state``, ``iss``... or
            ``error``...), or for ``response_mode=form_post`` the fields the provider's page
            would post (``code``, ``state``, and Apple's ``user``).
        :raises AuthorizeRefused: an error page instead of a redirect (bad client id or
            redirect URI).
        """
        target = url
        if deny:
            target += ("&" if urlsplit(url).query else "?") + "consent=page"
        with httpx.Client(follow_redirects=False, timeout=timeout) as http:
            response = http.get(target)
            ticket = _TICKET.search(response.text) if response.status_code == 200 else None
            if ticket is not None:
                parts = urlsplit(url)
                form_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
                decision = "deny" if deny else "allow"
                response = http.post(form_url, data={"ticket": ticket[1], "decision": decision})
        location = response.headers.get("location")
        if response.status_code in (301, 302, 303, 307) and location:
            return dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))
        if response.status_code == 200 and _POSTED_FORM.search(response.text):
            # response_mode=form_post: the fields the page would post to the redirect URI.
            return {
                html.unescape(name): html.unescape(value)
                for name, value in _HIDDEN_FIELD.findall(response.text)
            }
        error = _ERROR.search(response.text)
        raise AuthorizeRefused(response.status_code, error[1] if error else None)
