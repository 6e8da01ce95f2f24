"""The emulator's HTTP routes, one module per endpoint, and the pieces they share.

Endpoints (each module's ``routes(site, behaviour)`` gives one profile's routes):

* :mod:`.authorize`: the authorize endpoint and its consent page.
* :mod:`.token`: the token endpoint, ``authorization_code`` and ``refresh_token`` grants.
* :mod:`.userinfo`: userinfo, and GitHub's ``/user/emails``.
* :mod:`.revoke`: RFC 7009 revocation and GitHub's ``DELETE`` grant and token.
* :mod:`.discovery`: the OpenID Connect discovery document and the JWKS.
* :mod:`.logout`: RP-Initiated Logout at the ``end_session_endpoint``.
* :mod:`.control`: the ``/_emulator/...`` controls and the avatar pictures (``routes(site)``).

Shared:

* :mod:`.site`: :class:`~.site.Site`, the store, address, client and knobs every route reads.
* :mod:`.forms`: a request's body parameters (form or JSON).
* :mod:`.clients`: client authentication (Basic, body, or a JWT assertion).
* :mod:`.answers`: token-endpoint answers, refusals, 401s and HTML pages.
* :mod:`.claims`: OpenID claims for the ID token and userinfo.

:class:`keyturn_emulator.app.EmulatorApp` puts them together.
"""
