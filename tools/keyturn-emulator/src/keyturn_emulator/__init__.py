"""A real OAuth 2.0 and OpenID Connect provider on loopback: sign-in, refresh, revocation and
logout with no credentials and no internet.

It serves four profiles from one server, each under its own path prefix: ``google`` and
``github`` behave as the real providers' public documentation and reported responses say
they do (the sources are cited in :mod:`keyturn_emulator.profiles` and gathered in
``docs/providers/google.md`` and ``docs/providers/github.md``), ``strict`` is plain
RFC 6749 with PKCE required and refresh-token rotation with reuse detection, and ``oidc`` is a
plain OpenID Provider (OpenID Connect Core, Discovery and RP-Initiated Logout; client
assertions of RFC 7523). See :mod:`keyturn_emulator.profiles` for every difference.

Profiles with an issuer serve a discovery document, profiles that issue ID tokens a JWKS, and
ID tokens are signed with the server's own keys (RS256 or ES256), which a test can rotate
(:meth:`Emulator.rotate_keys`); see :mod:`keyturn_emulator.keys`.

Pointing a shipped plugin at it
-------------------------------

``Keyturn(providers=[...])`` is the one supported way. A spec whose id is installed replaces
that provider's spec *and keeps its plugin's hooks*, so the real keyturn-google or
keyturn-github code runs against the emulator::

    import keyturn
    from keyturn_emulator import Emulator

    with Emulator(access_token_lifetime=3600) as emu:
        installed = keyturn.Keyturn(environ={}).provider("google")
        kt = keyturn.Keyturn(
            {"google": emu.credentials}, providers=[emu.point(installed)]
        )
        request = kt.authorize_url("google", "http://127.0.0.1:8000/callback")
        token = kt.sign_in(request, emu.authorize(request.url))   # the browser, played
        tokens = kt.refresh(token.tokens)

:meth:`Emulator.point` copies the spec with every endpoint and the issuer moved to the
emulator's profile of the same name. Apps that need no plugin use :meth:`Emulator.spec`
(``emu.spec("strict")``), a plain spec keyturn's RFC 6749 defaults serve.

Knobs
-----

Lifetimes, ``fault_rate`` (503 answers with an HTML body), ``drop_rate`` (connections
closed before a complete answer; such a request is never processed, so a dropped refresh
leaves the refresh token valid), ``lost_answer_rate`` (requests processed in full, then
closed without an answer: a refresh rotated the token, and the client never got the new
one), ``latency`` and ``seed``; change them while running with :meth:`Emulator.configure`.
Everything is counted (:meth:`Emulator.counters`), also over HTTP at ``GET /_emulator/state``;
``POST /_emulator/revoke`` revokes grants from outside. For OpenID Connect: the signing
algorithm (the ``id_token_alg`` knob), broken discovery documents and JWKS
(``discovery_fault``, ``jwks_fault``), key rotation, the client's public keys for
``private_key_jwt`` and its post-logout redirect URIs, each a method of :class:`Emulator` and
a control. Those controls answer JSON requests to the emulator's own address only, never a
web page of another origin (:mod:`keyturn_emulator.routes.control`).

``keyturn emulator`` runs the same server from the command line, and ``keyturn demo`` tours
keyturn against it (:mod:`keyturn_emulator.demo`).

Modules
-------

* :mod:`.controller`: :class:`Emulator`, which starts the server, points specs at it and
  steers it from a test.
* :mod:`.server`: uvicorn in a background thread on a pre-bound loopback socket.
* :mod:`.gate`: the ASGI layer in front of the routes: latency, 503s, dropped connections,
  lost answers.
* :mod:`.faults`: the knobs, and the dice that pick which token requests fail.
* :mod:`.app`: :class:`~.app.EmulatorApp`, the Starlette app assembled from the routes.
* :mod:`.routes`: the HTTP endpoints, one module each (authorize and consent, token,
  userinfo, revoke, discovery and JWKS, logout, the ``/_emulator`` controls) and the helpers
  they share.
* :mod:`.profiles`: how each emulated provider behaves (paths, token shapes, errors).
* :mod:`.state`: codes, grants, tokens and counters, behind one lock.
* :mod:`.pkce`: the PKCE checks (RFC 7636).
* :mod:`.keys`: the server's signing keys, their rotation and the JWKS.
* :mod:`.idtoken`: signing ID tokens.
* :mod:`.registration`: the client's public keys, post-logout redirect URIs and spent
  assertions.
* :mod:`.demo`: ``keyturn demo``, a tour of keyturn against the emulator.
* :mod:`.commands`: the ``keyturn emulator`` and ``keyturn demo`` command lines.
"""

from __future__ import annotations

from .controller import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, AuthorizeRefused, Emulator
from .faults import Knobs
from .profiles import PROFILES, Behaviour
from .state import COUNTERS

__all__ = [
    "COUNTERS",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "PROFILES",
    "AuthorizeRefused",
    "Behaviour",
    "Emulator",
    "Knobs",
]
