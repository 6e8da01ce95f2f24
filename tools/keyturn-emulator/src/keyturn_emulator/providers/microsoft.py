"""The Microsoft identity platform (Entra ID, v2.0 endpoints), as its documentation describes it.

* Endpoints under a tenant segment, ``/common/oauth2/v2.0/authorize`` and ``.../token``, the
  key set at ``/common/discovery/v2.0/keys`` and the userinfo at ``/oidc/userinfo`` (Graph's
  ``/oidc/userinfo``), as in the ``common`` discovery document
  (https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration). The
  emulator has one issuer, ``<base>/microsoft``; its ID tokens carry ``tid`` (the tenant of
  the emulated account) and ``ver`` ``2.0`` ("ID token claims reference",
  https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference).
* A refresh token only when ``offline_access`` is among the scopes ("Scopes and permissions",
  https://learn.microsoft.com/en-us/entra/identity-platform/scopes-oidc).
* Each refresh returns a new refresh token and the old one stays valid: refresh tokens
  "replace themselves with a fresh token upon every use" and the platform "doesn't revoke old
  refresh tokens" (https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens).
* Errors in Microsoft's shape: ``error``, ``error_description`` starting ``AADSTS<code>:`` and
  ending with the trace and correlation ids and the time, ``error_codes``, ``timestamp``,
  ``trace_id``, ``correlation_id`` and ``error_uri`` (the sample answer of "Microsoft Entra
  authentication and authorization error codes",
  https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes). The codes
  chosen for each situation are from that page; where it has none that fits, the choice is
  the emulator's and says so.
* No revocation endpoint exists for a user's grant; the profile still serves the emulator's
  ``/revoke`` path (every profile has one), which the plugin never calls.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from keyturn_emulator.profiles import Behaviour, Failure

__all__ = ["EMULATED_TENANT_ID", "MicrosoftFailure", "behaviour"]

#: The ``tid`` of the emulated accounts' tenant (a made-up GUID).
EMULATED_TENANT_ID = "72f988bf-0000-4000-8000-00000000e1e1"


@dataclass(frozen=True)
class MicrosoftFailure(Failure):
    """A refusal in Microsoft's shape, with its AADSTS code.

    :ivar code: the AADSTS number, put at the start of ``error_description`` and in
        ``error_codes``.
    """

    code: int = 0

    def body(self) -> dict[str, Any]:
        """The error as Microsoft sends it: a fresh trace id, correlation id and time."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        description = (
            f"AADSTS{self.code}: {self.description}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {now}"
        )
        return {
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def _failure(status: int, error: str, code: int, description: str) -> MicrosoftFailure:
    return MicrosoftFailure(status, error, description, code=code)


def behaviour() -> Behaviour:
    """The ``microsoft`` profile."""
    bad_client = _failure(401, "invalid_client", 7000215, "Invalid client secret provided.")
    bad_grant = _failure(
        400,
        "invalid_grant",
        700082,
        "The refresh token has expired due to inactivity.",
    )
    return Behaviour(
        name="microsoft",
        display_name="Microsoft",
        paths={
            "authorize": "/common/oauth2/v2.0/authorize",
            "token": "/common/oauth2/v2.0/token",
            "userinfo": "/oidc/userinfo",
            "revoke": "/common/oauth2/v2.0/revoke",
            "jwks": "/common/discovery/v2.0/keys",
        },
        has_issuer=True,
        access_prefix="EwB",
        refresh_prefix="M.C5",
        rotation="keep_old",
        pkce_required=False,
        pkce_methods=frozenset({"S256", "plain"}),
        scope_separator=" ",
        token_type="Bearer",
        form_unless_json=False,
        id_tokens=True,
        offline_param=False,
        grant_type_optional=False,
        scope_required=True,
        login_param="login_hint",
        failures={
            "missing_client": _failure(
                400, "invalid_request", 900144, "The request body must contain 'client_id'."
            ),
            "missing_secret": _failure(
                401,
                "invalid_client",
                7000218,
                "The request body must contain 'client_assertion' or 'client_secret'.",
            ),
            "unknown_client": _failure(
                400, "unauthorized_client", 700016, "Application not found in the directory."
            ),
            "bad_secret": bad_client,
            # The emulator's choice: Microsoft documents no answer to two methods at once.
            "two_auth_methods": bad_client,
            "unsupported_grant_type": _failure(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            ),
            "invalid_request": _failure(
                400, "invalid_request", 900144, "The request body must contain a parameter."
            ),
            "bad_code": _failure(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired.",
            ),
            # AADSTS50011 is the reference page's "redirect URI ... does not match"; which code
            # the token endpoint uses for it is not documented (the emulator's choice).
            "redirect_mismatch": _failure(
                400,
                "invalid_grant",
                50011,
                "The redirect URI specified in the request does not match the redirect URIs "
                "configured for the application.",
            ),
            "bad_verifier": _failure(
                400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge."
            ),
            "unknown_refresh": _failure(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            ),
            # A revoked grant: "The refresh token was revoked" is 50173's meaning on the
            # reference page; an expired one 700082. The emulator answers both as revoked.
            "dead_refresh": _failure(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is "
                "needed.",
            ),
            # Never answered: old refresh tokens stay valid (keep_old).
            "rotated_refresh": bad_grant,
            "reuse_detected": bad_grant,
            "invalid_scope": _failure(
                400,
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' isn't valid.",
            ),
            "bad_assertion": _failure(
                401, "invalid_client", 7000274, "The client assertion is not valid."
            ),
        },
        scopes=None,
        id_token_algs=("RS256",),
        id_token_claims={"tid": EMULATED_TENANT_ID, "ver": "2.0"},
        offline_scope="offline_access",
    )
