"""``Emulator``: start the provider emulator, point specs at it, and steer it from a test."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

from keyturn.errors import ConfigurationError, KeyturnError
from keyturn.models import ClientCredentials, ProviderSpec

from .app import EmulatorApp
from .faults import Consent, Dice, Knobs
from .gate import Gate
from .profiles import PROFILES
from .server import ServerThread
from .state import Store, User

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "AuthorizeRefused", "Emulator"]

#: The client the emulator accepts unless told otherwise. Not a secret: nothing real uses it.
DEFAULT_CLIENT_ID = "keyturn-emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-secret-example"

_TICKET = re.compile(r"name='ticket' value='([^']+)'")
_ERROR = re.compile(r"data-error='([^']+)'")


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
    """A local OAuth 2.0 provider with ``google``, ``github`` and ``strict`` profiles.

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

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    :raises ValueError: a knob or the port out of range.
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
        """The profile names: ``google``, ``github``, ``strict``."""
        return tuple(PROFILES)

    def _behaviour(self, profile: str) -> Any:
        behaviour = PROFILES.get(profile)
        if behaviour is None:
            raise ConfigurationError(
                f"the emulator has no profile {profile!r} "
                f"(profiles: {', '.join(PROFILES)}; pass profile= to choose one)"
            )
        return behaviour

    def endpoints(self, profile: str) -> dict[str, str]:
        """The profile's endpoint URLs, keyed by :class:`~keyturn.ProviderSpec` field name.

        GitHub's revocation endpoint keeps its ``{client_id}`` placeholder, as the plugin's
        spec does.
        """
        return self._running_app().endpoints(self._behaviour(profile))

    def issuer(self, profile: str) -> str | None:
        """The profile's issuer URL (``iss`` on callbacks and in ID tokens), if it has one."""
        return self._running_app().issuer(self._behaviour(profile))

    def spec(self, profile: str = "strict", *, id: str | None = None) -> ProviderSpec:
        """A plain :class:`~keyturn.ProviderSpec` for a profile, served by keyturn's defaults.

        Meant for ``strict``, which needs no plugin. ``google`` works too; ``github`` does not
        (its revocation and profile need the keyturn-github plugin: use :meth:`point`).

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
        plugin's hooks, so the shipped plugin runs unchanged against the emulator.

        :param spec: usually an installed plugin's spec, ``kt.provider("google")``.
        :param profile: the profile to answer as; the one named like ``spec.id`` by default.
        :raises ConfigurationError: no such profile.
        """
        name = profile or spec.id
        self._behaviour(name)
        update: dict[str, Any] = dict(self.endpoints(name))
        update["issuer"] = self.issuer(name)
        update["issuer_aliases"] = frozenset()
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
            ``error``...).
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
        error = _ERROR.search(response.text)
        raise AuthorizeRefused(response.status_code, error[1] if error else None)
