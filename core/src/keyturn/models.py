"""The data keyturn passes around: provider specs, credentials, tokens, JWT state, sessions.

All models are immutable pydantic models. Every token, code verifier and client secret is a
:class:`pydantic.SecretStr`, so ``repr``, ``str`` and ordinary serialisation never show it;
``TokenSet.extra`` (unknown fields, which may nest a token) is masked the same way, keys kept.
A masked dump is refused on validation, so it is never stored by mistake. To persist a model
with its secrets (a database row, an encrypted cookie), ask for them::

    data = tokens.model_dump(mode="json", context=REVEAL)
    tokens = TokenSet.model_validate(data)
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    SerializationInfo,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.version import VERSION as PYDANTIC_VERSION

from .client_auth import SigningAlg, SigningKey, credentials_key
from .errors import (
    AuthorizationDenied,
    ConfigurationError,
    IssuerMismatchError,
    MissingCodeError,
    StateMismatchError,
)

__all__ = [
    "EXTRA_MAX_DEPTH",
    "EXTRA_MAX_SIZE",
    "JWT",
    "REFRESH_ACCESS_TOKEN_ERROR",
    "REVEAL",
    "AuthorizationRequest",
    "ClientCredentials",
    "DeploymentSetting",
    "IdTokenIdentity",
    "Profile",
    "ProviderSpec",
    "RefreshFailure",
    "RefreshRotation",
    "Session",
    "TokenSet",
    "storable_extra",
]

#: Serialisation context that writes secrets in clear: ``model_dump(context=REVEAL)``.
REVEAL: dict[str, bool] = {"reveal_secrets": True}

#: The value of ``Session.error`` after a permanent refresh failure, as in the NextAuth guide.
REFRESH_ACCESS_TOKEN_ERROR = "RefreshAccessTokenError"


log = logging.getLogger("keyturn")

#: How deeply the value of one field of ``TokenSet.extra`` may nest objects and arrays:
#: ``{"team": {"id": "T1"}}`` is 2 deep. Deeper fields are dropped when a TokenSet is built.
EXTRA_MAX_DEPTH = 16
#: How many characters ``TokenSet.extra`` may take as compact JSON (as the stores write it,
#: non-ASCII escaped). Fields are kept in the order they came while they fit; later ones that
#: do not are dropped.
EXTRA_MAX_SIZE = 8192

_MASK = "**********"
_MASK_QUERY = re.compile(r"([?&](?:state|nonce)=)[^&#]*")


def _dump_secret(value: SecretStr | None, info: SerializationInfo) -> str | None:
    if value is None:
        return None
    context = info.context
    if isinstance(context, Mapping) and context.get("reveal_secrets"):
        return value.get_secret_value()
    return _MASK


_MASKED = "a masked secret; dump with context=keyturn.REVEAL to keep secrets"


def _refuse_mask(value: SecretStr) -> SecretStr:
    # A model dumped without REVEAL and loaded back would silently hold the mask as its
    # token; refuse it so the mistake shows where it is made.
    if value.get_secret_value() == _MASK:
        raise ValueError(_MASKED)
    return value


def _masked(value: Any) -> Any:
    """``value`` with its objects' keys kept and every other value replaced by the mask."""
    if isinstance(value, dict):
        return {key: _masked(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(child) for child in value]
    return _MASK


#: The type of every secret field: hidden in reprs and dumps, and never the mask itself.
Secret = Annotated[SecretStr, AfterValidator(_refuse_mask)]


#: Whether each model builds its validator on first use rather than when its class is made.
#: Measured in CPU time (pydantic 2.14, Python 3.11; details in bench/README.md): importing
#: this module takes 15 ms instead of 27; an app that starts and reads one token (``JWT``,
#: ``jwt()``, ``session()``) spends 48 ms in keyturn instead of 54, as it never builds the
#: sign-in models; one that uses every model pays about 2 ms more in all, because a nested
#: model's schema is made again when that model is first used on its own. Only from pydantic
#: 2.14 on, whose ``model_rebuild()`` holds a lock (pydantic pull request 13438): with 2.13,
#: 16 threads using deferred models first at the same moment (with a tiny thread switch
#: interval) failed in 3 runs of 30, some handed the base class's validator ("Extra inputs
#: are not permitted"); with 2.14, in none of 40.
DEFER_BUILD = tuple(int(part) for part in PYDANTIC_VERSION.split(".")[:2]) >= (2, 14)


def _unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be kept in ``TokenSet.extra``, or ``None`` when it can.

    Walks without recursion, so a value nested thousands deep costs no stack: it stops at the
    first level past :data:`EXTRA_MAX_DEPTH`.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            depth += 1
            if depth > EXTRA_MAX_DEPTH:
                return f"nested deeper than {EXTRA_MAX_DEPTH} levels"
            if isinstance(item, dict):
                if not all(isinstance(key, str) for key in item):
                    return "not JSON data"
                stack.extend((child, depth) for child in item.values())
            else:
                stack.extend((child, depth) for child in item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "not JSON data"
        elif isinstance(item, str):
            if item == _MASK:
                return _MASKED
        elif not (item is None or isinstance(item, int)):
            return "not JSON data"
    return None


#: Compact JSON as the stores write it, refusing NaN and infinity.
_COMPACT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
#: How a string equal to the mask reads in JSON.
_MASK_JSON = json.dumps(_MASK)


def _json_size(key: str, value: Any) -> int | None:
    """Characters ``"key":value`` takes in compact JSON, or ``None`` if JSON cannot write it."""
    try:
        return len(_COMPACT.encode(key)) + 1 + len(_COMPACT.encode(value))
    except (TypeError, ValueError, RecursionError):  # an int past str()'s digit limit
        return None


def _shallow(value: Any) -> bool:
    """Whether ``value`` nests objects and arrays at most :data:`EXTRA_MAX_DEPTH` deep.

    Visits containers only, without recursion.
    """
    if not isinstance(value, dict | list | tuple):
        return True
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > EXTRA_MAX_DEPTH:
            return False
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))
    return True


#: Characters a JSON string takes at most per character of text (a non-BMP character is
#: written as two ``\uXXXX`` escapes), and what a number takes at most.
_ESCAPED = 12
_NUMBER = 32
_NUMBER_LIMIT = 10**_NUMBER


def _flat_and_small(fields: Mapping[str, Any]) -> bool:
    """The commonest case, decided without writing JSON: every value is a plain scalar
    (``created_at``, ``ext_expires_in``, ``session_state``...), none is the mask or
    non-finite, and even fully escaped they fit :data:`EXTRA_MAX_SIZE`."""
    size = 2
    for key, value in fields.items():
        size += _ESCAPED * len(key) + 4  # quotes, colon, comma
        kind = type(value)
        if kind is str:
            if value == _MASK:
                return False
            size += _ESCAPED * len(value) + 2
        elif kind is int:
            if not -_NUMBER_LIMIT < value < _NUMBER_LIMIT:
                return False
            size += _NUMBER
        elif kind is float:
            if not math.isfinite(value):
                return False
            size += _NUMBER
        elif not (value is None or kind is bool):
            return False
        else:
            size += 5
        if size > EXTRA_MAX_SIZE:
            return False
    return True


def _storable_as_is(fields: Mapping[str, Any]) -> bool:
    """The common case, decided at the JSON encoder's speed: every field can be kept."""
    if _flat_and_small(fields):
        return True
    if not all(_shallow(value) for value in fields.values()):
        return False
    try:
        text = _COMPACT.encode(dict(fields))
    except (TypeError, ValueError, RecursionError):
        return False
    # A string equal to the mask (or, harmlessly, a key) reads as _MASK_JSON; an escaped
    # quote never starts it, so there is no false negative.
    return len(text) <= EXTRA_MAX_SIZE and _MASK_JSON not in text


def _names(names: list[str]) -> str:
    """Field names for a log line: quoted, each cut short, at most ten."""
    shown = ", ".join(repr(name[:40]) for name in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def storable_extra(
    fields: Mapping[str, Any], provider: str, *, refuse_mask: bool = False
) -> dict[str, Any]:
    """The fields of ``fields`` that every store can keep, in their order.

    A field is dropped when its value is nested deeper than :data:`EXTRA_MAX_DEPTH`, is not
    JSON data (NaN, infinity, an object), holds the mask a default dump writes, or would
    take ``extra`` past :data:`EXTRA_MAX_SIZE` characters of JSON. Dropped fields are named
    in one WARNING (names only, never values).

    :param fields: unknown fields of a token response.
    :param provider: the provider id, for the log line.
    :param refuse_mask: raise instead of dropping a field that holds the mask: ``fields``
        comes from a dump made without ``REVEAL``, whose values are lost.
    :return: a new dict of the fields kept.
    :raises ValueError: with ``refuse_mask``, a field holds the mask.
    """
    if _storable_as_is(fields):
        return dict(fields)
    return _storable_fields(fields, provider, refuse_mask)


def readable_raw(raw: Mapping[str, Any], provider: str = "a provider") -> dict[str, Any]:
    """The fields of a provider's profile answer that a session can be written back with.

    A field nested deeper than :data:`EXTRA_MAX_DEPTH`, or that is not JSON data, is dropped
    (pydantic stops serialising a little past 250 levels, so such a profile would make every
    session that holds it unwritable); the drop is logged at WARNING with the field names,
    never their values. Unlike ``TokenSet.extra`` there is no size budget: a ``jwt`` cookie
    leaves the raw profile out unless asked, and a ``database`` row has room.
    """
    if all(_shallow(value) for value in raw.values()):
        return dict(raw)
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in raw.items():
        reason = _unstorable(value)
        if reason is None or reason == _MASKED:
            kept[key] = value
        else:
            dropped.append(key)
    if dropped:
        log.warning(
            "%s: dropped profile field(s) %s: nested too deep or not JSON data",
            provider,
            _names(dropped),
        )
    return kept


def _storable_fields(fields: Mapping[str, Any], provider: str, refuse_mask: bool) -> dict[str, Any]:
    """:func:`storable_extra` field by field, without its shortcuts."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    size = 2  # {}
    for key, value in fields.items():
        reason = _unstorable(value)
        if reason == _MASKED and refuse_mask:
            raise ValueError(_MASKED)
        cost = None if reason is not None else _json_size(key, value)
        if cost is not None and kept:
            cost += 1  # the comma before it
        if cost is None or size + cost > EXTRA_MAX_SIZE:
            dropped.append(key)
            continue
        kept[key] = value
        size += cost
    if dropped:
        log.warning(
            "%s sent token response fields that cannot be stored (nested deeper than %d "
            "levels, not JSON data, keyturn's mask, or past %d characters in all); dropped: %s",
            provider,
            EXTRA_MAX_DEPTH,
            EXTRA_MAX_SIZE,
            _names(dropped),
        )
    return kept


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=DEFER_BUILD)


#: How the client authenticates at the token and revocation endpoints: the client secret in
#: the form (``client_secret_post``) or in HTTP Basic (``client_secret_basic``), nothing
#: (``none``: a public client), or a JWT assertion made for each request, signed with the
#: app's private key (``private_key_jwt``) or with HMAC under the client secret
#: (``client_secret_jwt``): OpenID Connect Core section 9, RFC 7523 (see
#: :mod:`keyturn.client_auth`).
ClientAuthMethod = Literal[
    "client_secret_post", "client_secret_basic", "none", "private_key_jwt", "client_secret_jwt"
]

#: An entry of ``endpoint_hosts``: a host name or ``[IPv6]``, with an optional port.
_ENDPOINT_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)

#: A placeholder of a templated issuer: ``{tenantid}``.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: What a provider does with a refresh token once it has been used for a refresh:
#:
#: * ``none``: nothing; the same refresh token serves every refresh (Google, Apple).
#: * ``rotate``: each refresh returns a new refresh token and the old one dies at once
#:   (GitLab; Slack with token rotation; Keycloak with "Revoke Refresh Token").
#: * ``keep_old``: each refresh returns a new refresh token, and the old one stays valid
#:   until it expires or is revoked (the Microsoft identity platform).
#: * ``detect_reuse``: each refresh returns a new refresh token; the old one is still
#:   accepted for ``refresh_reuse_grace`` seconds, and presented after that it is taken as
#:   theft: the provider revokes the whole grant (Okta, Auth0).
RefreshRotation = Literal["none", "rotate", "keep_old", "detect_reuse"]
_ROTATIONS: tuple[str, ...] = ("none", "rotate", "keep_old", "detect_reuse")

#: The URL fields of a spec that may hold ``{setting}`` placeholders.
DEPLOYMENT_URL_FIELDS = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "revocation_endpoint",
    "issuer",
    "discovery_url",
    "jwks_uri",
    "end_session_endpoint",
)


class DeploymentSetting(_Model):
    """One setting of the app's own deployment at a provider: its tenant, domain, realm, team.

    A spec lists its settings in ``ProviderSpec.settings`` and writes ``{name}`` where a
    value goes in its URLs (``https://{domain}/oauth/token``). The app gives the values to
    the client (``settings={"auth0": {"domain": "acme.eu.auth0.com"}}``) or in the
    environment (``KEYTURN_AUTH0_DOMAIN``); see :mod:`keyturn.deployment`. Two names are
    read by keyturn itself rather than put into URLs: ``rotation`` (a
    :data:`RefreshRotation`) and ``refresh_reuse_grace`` (seconds), for providers where the
    tenant chooses how refresh tokens rotate.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="The placeholder: 'domain'.")
    description: str = Field(
        min_length=1, description="What the value is and where the app finds it."
    )
    kind: Literal["host", "segment", "url", "rotation", "seconds", "text"] = Field(
        default="segment",
        description=(
            "What a value may be: `host` a host name with an optional port; `segment` one "
            "path segment; `url` an https URL without query or fragment (its trailing `/` "
            "dropped); `rotation` one of RefreshRotation; `seconds` a number from 0 to 3600; "
            "`text` any single line, for values no URL holds (Apple's team id)."
        ),
    )
    default: str | None = Field(
        default=None, description="The value when the app gives none; `None`: required."
    )


class ProviderSpec(_Model):
    """What a provider plugin tells keyturn about one OAuth 2.0 provider.

    Plain data: endpoints and the documented behaviour the default flows need. Anything the
    data cannot express goes into a hook override in the plugin.

    An OpenID Connect provider may give its ``discovery_url`` instead of its endpoints: the
    clients complete the spec from the document before any operation (see
    :mod:`keyturn.discovery`), and hooks only ever receive the completed spec. Until then
    ``authorization_endpoint`` and ``token_endpoint`` are empty strings.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="Short id: 'google'.")
    name: str = Field(description="Display name: 'Google'.")
    authorization_endpoint: str = Field(
        default="",
        description=(
            "Where the user is sent to sign in. Required, unless `discovery_url` is set: then "
            "the empty string (the default) means 'from the discovery document'."
        ),
    )
    token_endpoint: str = Field(
        default="",
        description="Where codes and refresh tokens are exchanged; as `authorization_endpoint`.",
    )
    userinfo_endpoint: str | None = None
    revocation_endpoint: str | None = None
    issuer: str | None = Field(
        default=None,
        description=(
            "Expected `iss` on the callback (RFC 9207) and in ID tokens. With "
            "`issuer_claims`, a template: `https://login.microsoftonline.com/{tenantid}/v2.0`."
        ),
    )
    issuer_claims: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "The placeholders of a multi-tenant `issuer`, each mapped to the ID-token claim "
            "that fills it: `{'tenantid': 'tid'}`. An ID token's `iss` must then be the "
            "template with each placeholder replaced by the token's own claim (a single path "
            "segment). A discovery document's `issuer` is compared with the template as it is."
        ),
    )
    issuer_claim_values: dict[str, frozenset[str]] = Field(
        default_factory=dict,
        description=(
            "For a placeholder of `issuer_claims`, the only values accepted (the tenants an "
            "app serves); any value when a placeholder is not listed."
        ),
    )
    issuer_aliases: frozenset[str] = Field(
        default_factory=frozenset,
        description="Other spellings of `issuer` the provider puts in ID tokens.",
    )
    trusted_audiences: frozenset[str] = Field(
        default_factory=frozenset,
        description=(
            "Audiences an ID token may name besides the client id (an API of the app's own); "
            "an ID token naming any other one is refused (OpenID Connect Core 3.1.3.7)."
        ),
    )
    authorization_response_iss: bool = Field(
        default=False,
        description=(
            "Whether the provider puts `iss` (its `issuer`) on every redirect back to the app "
            "(RFC 9207; `authorization_response_iss_parameter_supported` in its metadata). "
            "When set, a callback without `iss` is refused, as an attacker's mix-up would "
            "leave it out. Set it only for a provider documented to send it."
        ),
    )
    discovery_url: str | None = Field(
        default=None,
        description=(
            "The provider's OpenID Connect discovery document (OpenID Connect Discovery 1.0 "
            "section 4): what the spec leaves out is read from it, and its `issuer` must be "
            "the spec's."
        ),
    )
    endpoint_hosts: frozenset[str] = Field(
        default_factory=frozenset,
        description=(
            "Hosts besides the issuer's that the discovery document may put endpoints on "
            "(`host` or `host:port`): Google's token endpoint is on oauth2.googleapis.com, "
            "Microsoft's userinfo on graph.microsoft.com. An endpoint read from the document "
            "on any other host is refused, as it would receive codes, tokens or the client's "
            "credentials."
        ),
    )
    jwks_uri: str | None = Field(
        default=None,
        description=(
            "The provider's JSON Web Key Set (RFC 7517). When set, the signature of every ID "
            "token is verified against it, at sign-in and on every refresh."
        ),
    )
    id_token_signing_algs: frozenset[str] = Field(
        default=frozenset({"RS256"}),
        description=(
            "JWS algorithms an ID token may be signed with (the provider's "
            "`id_token_signing_alg_values_supported`); `none` and HMAC algorithms are never "
            "accepted with a key set."
        ),
    )
    end_session_endpoint: str | None = Field(
        default=None,
        description="Where the browser is sent to end the session at the provider "
        "(OpenID Connect RP-Initiated Logout 1.0).",
    )
    default_scopes: tuple[str, ...] = ()
    authorize_params: dict[str, str] = Field(
        default_factory=dict, description="Sent on every authorize URL unless overridden per call."
    )
    extra_authorize_params: frozenset[str] = Field(
        default_factory=frozenset,
        description="Provider-specific authorize parameter names a caller may pass.",
    )
    client_auth: ClientAuthMethod = "client_secret_post"
    pkce_method: Literal["S256", "plain"] | None = Field(
        default="S256", description="PKCE method to use, or None if the provider has no PKCE."
    )
    rotates_refresh_tokens: bool = Field(
        default=False,
        description=(
            "Whether each refresh returns a new refresh token: `rotation` other than `none`. "
            "Give either; the other follows."
        ),
    )
    rotation: RefreshRotation = Field(
        default="none",
        description=(
            "What the provider does with a used refresh token (see RefreshRotation). Where "
            "the app's tenant chooses it, list a `rotation` setting so that each deployment "
            "can state its own."
        ),
    )
    refresh_reuse_grace: float = Field(
        default=0,
        ge=0,
        le=3600,
        description=(
            "With `detect_reuse`: seconds during which the provider still accepts a refresh "
            "token it has rotated (Okta's grace period, Auth0's overlap period); 0 when "
            "there is none or it is not known."
        ),
    )
    settings: tuple[DeploymentSetting, ...] = Field(
        default=(),
        description=(
            "The deployment settings the app gives for this provider (tenant, domain, "
            "realm...), filled into the `{name}` placeholders of the URL fields."
        ),
    )
    deployment: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "The settings' values this spec was made with; set by keyturn when it fills the "
            "placeholders, so hooks can read them (`provider.deployment['team_id']`)."
        ),
    )
    scope_separator: str = Field(default=" ", description="How `scope` is joined in responses.")
    token_request_headers: dict[str, str] = Field(
        default_factory=lambda: {"Accept": "application/json"}
    )
    permanent_errors: frozenset[str] = Field(
        default_factory=frozenset,
        description="Provider error codes that mean 'sign in again', beyond RFC 6749's.",
    )
    transient_errors: frozenset[str] = Field(
        default_factory=frozenset,
        description="Provider error codes worth retrying, beyond RFC 6749's.",
    )

    @model_validator(mode="before")
    @classmethod
    def _rotation_both_ways(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        has_flag = data.get("rotates_refresh_tokens") is not None
        has_kind = data.get("rotation") is not None
        if has_kind and not has_flag and data["rotation"] in _ROTATIONS:
            return {**data, "rotates_refresh_tokens": data["rotation"] != "none"}
        if has_flag and not has_kind and isinstance(data["rotates_refresh_tokens"], bool):
            return {**data, "rotation": "rotate" if data["rotates_refresh_tokens"] else "none"}
        return data

    @model_validator(mode="after")
    def _rotation_agrees(self) -> ProviderSpec:
        if self.rotates_refresh_tokens != (self.rotation != "none"):
            raise ValueError(
                f"rotates_refresh_tokens={self.rotates_refresh_tokens} contradicts "
                f"rotation={self.rotation!r}"
            )
        if self.refresh_reuse_grace and self.rotation != "detect_reuse":
            raise ValueError("refresh_reuse_grace applies only to rotation='detect_reuse'")
        return self

    @field_validator("endpoint_hosts")
    @classmethod
    def _hosts(cls, value: frozenset[str]) -> frozenset[str]:
        bad = sorted(host for host in value if not _ENDPOINT_HOST.match(host))
        if bad:
            raise ValueError(f"endpoint_hosts must be host names (with an optional :port): {bad}")
        return frozenset(host.lower() for host in value)

    @model_validator(mode="after")
    def _settings_unique(self) -> ProviderSpec:
        # A placeholder no setting declares is the plugin's own (GitHub's {client_id} in
        # its revocation URL, filled by its hook): only declared names are filled here.
        names = [setting.name for setting in self.settings]
        if len(names) != len(set(names)):
            raise ValueError("settings lists a name twice")
        return self

    @property
    def needs_deployment(self) -> bool:
        """Whether a URL still holds a ``{setting}`` placeholder: the spec is a template
        until the app's settings fill it (see :mod:`keyturn.deployment`)."""
        if not self.settings:
            return False
        names = {setting.name for setting in self.settings}
        return any(
            names & set(_PLACEHOLDER.findall(getattr(self, field) or ""))
            for field in DEPLOYMENT_URL_FIELDS
        )

    @model_validator(mode="after")
    def _iss_needs_issuer(self) -> ProviderSpec:
        if self.authorization_response_iss and self.issuer is None:
            raise ValueError("authorization_response_iss needs the provider's issuer")
        return self

    @model_validator(mode="after")
    def _endpoints_or_discovery(self) -> ProviderSpec:
        if self.discovery_url is None:
            missing = [
                name
                for name in ("authorization_endpoint", "token_endpoint")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"{' and '.join(missing)} required unless discovery_url is set")
        return self

    @model_validator(mode="after")
    def _issuer_template(self) -> ProviderSpec:
        used = set(_PLACEHOLDER.findall(self.issuer or "")) - {
            setting.name for setting in self.settings
        }
        declared = set(self.issuer_claims)
        if used != declared:
            raise ValueError(
                "issuer_claims must name exactly the {placeholders} of issuer (undeclared: "
                f"{sorted(used - declared)}, unused: {sorted(declared - used)})"
            )
        if not set(self.issuer_claim_values) <= declared:
            raise ValueError("issuer_claim_values names a placeholder issuer_claims does not")
        if declared and self.authorization_response_iss:
            raise ValueError(
                "a templated issuer cannot be compared with a callback's iss "
                "(authorization_response_iss)"
            )
        return self

    @property
    def issuer_is_template(self) -> bool:
        """Whether ``issuer`` has placeholders filled from each ID token (``issuer_claims``)."""
        return bool(self.issuer_claims)

    @property
    def env_prefix(self) -> str:
        """``KEYTURN_<ID>_``: where credentials are looked up in the environment."""
        return "KEYTURN_" + self.id.upper().replace("-", "_") + "_"


class ClientCredentials(_Model):
    """The app's registration at one provider, and what it proves itself with.

    ``client_secret`` serves ``client_secret_post``, ``client_secret_basic`` and
    ``client_secret_jwt``; ``private_key`` serves ``private_key_jwt`` (see
    :mod:`keyturn.client_auth`). The key is read and checked when the credentials are made:
    a key that is not a usable private key raises :class:`~keyturn.ConfigurationError`,
    whose message never quotes it. Like the secret, it is masked in ``repr``, ``str`` and
    dumps made without ``REVEAL``.
    """

    client_id: str = Field(min_length=1)
    client_secret: Secret | None = None
    private_key: Secret | None = Field(
        default=None,
        description=(
            "The app's private key as unencrypted PEM text (RSA of 2048 bits or more, EC "
            "P-256 or P-384, or Ed25519), for private_key_jwt and for secrets a plugin signs."
        ),
    )
    private_key_id: str | None = Field(
        default=None, min_length=1, description="The `kid` header put on what the key signs."
    )
    signing_alg: SigningAlg | None = Field(
        default=None,
        description=(
            "The JWS algorithm of client assertions: by default RS256 for an RSA key, ES256 or "
            "ES384 by curve, EdDSA for Ed25519, and HS256 for client_secret_jwt."
        ),
    )
    client_assertion: Secret | None = Field(
        default=None,
        description=(
            "The client assertion of one request: keyturn sets it on the credentials it hands "
            "a provider hook for that request; leave it unset."
        ),
    )

    _signing_key: SigningKey | None = PrivateAttr(default=None)

    @field_serializer("client_secret", "private_key", "client_assertion")
    def _ser_secret(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        return _dump_secret(value, info)

    @field_validator("private_key", mode="before")
    @classmethod
    def _key_as_text(cls, value: Any) -> Any:
        # Bytes read from a file are welcome; a type error would otherwise quote them.
        if isinstance(value, bytes | bytearray):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigurationError("the private key is not PEM text") from None
        return value

    @model_validator(mode="after")
    def _read_key(self) -> ClientCredentials:
        # Raises ConfigurationError, which pydantic lets through unwrapped: a ValidationError
        # would print the input, the key.
        self._signing_key = credentials_key(self.private_key, self.private_key_id, self.signing_alg)
        return self

    @property
    def signing_key(self) -> SigningKey | None:
        """The private key, read and ready to sign (``private_key_id`` as its ``kid``), or
        ``None`` without one. Its algorithm is ``signing_alg`` unless that names an HMAC."""
        return self._signing_key


class IdTokenIdentity(_Model):
    """Whom an ID token was about: its ``iss``, ``sub`` and ``aud``.

    Kept in the token's place when the token itself is left out (a ``jwt`` session cookie
    drops it to stay small), so that an ID token that comes with a later refresh can still
    be held to the same session (OpenID Connect Core section 12.2).
    """

    iss: str
    sub: str
    aud: tuple[str, ...]

    @classmethod
    def of(cls, id_token: str) -> IdTokenIdentity | None:
        """The identity an ID token names, or ``None`` when it cannot be read."""
        from .idtoken import IdTokenError, unverified_claims

        try:
            claims = unverified_claims(id_token)
        except IdTokenError:
            return None
        iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if not isinstance(iss, str) or not isinstance(sub, str):
            return None
        if not audiences or not all(isinstance(one, str) for one in audiences):
            return None
        return cls(iss=iss, sub=sub, aud=tuple(audiences))

    def claims(self) -> dict[str, Any]:
        """The three claims as an ID token's payload holds them."""
        return {"iss": self.iss, "sub": self.sub, "aud": list(self.aud)}


class TokenSet(_Model):
    """Tokens from one provider, as returned by a code exchange or a refresh.

    Times are epoch seconds. ``expires_at`` is ``None`` when the provider gave no lifetime
    (such a token is treated as never expiring and is never refreshed).

    ``extra`` holds the response's fields keyturn does not know, as JSON data that every
    store can write: a field nested deeper than :data:`EXTRA_MAX_DEPTH`, one that is not JSON
    data, or one past the :data:`EXTRA_MAX_SIZE` budget is dropped when the model is built
    (see :func:`storable_extra`), whoever builds it. Any of its values may be a token, so it
    is masked like the token fields: ``repr`` shows its keys only, and a dump without
    ``REVEAL`` keeps its keys and writes the mask for every value (which validation refuses,
    as it refuses a masked token).
    """

    provider: str
    access_token: Secret
    token_type: str = "Bearer"
    expires_at: int | None = None
    refresh_token: Secret | None = None
    refresh_token_expires_at: int | None = None
    scope: tuple[str, ...] | None = None
    id_token: Secret | None = None
    id_token_identity: IdTokenIdentity | None = Field(
        default=None,
        description="Whom the ID token named, kept when the token itself was left out.",
    )
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_serializer("access_token", "refresh_token", "id_token")
    def _ser_secret(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        return _dump_secret(value, info)

    @field_serializer("extra")
    def _ser_extra(self, value: dict[str, Any], info: SerializationInfo) -> dict[str, Any]:
        # Any unknown field may be a token (a second one, nested in an object): a default
        # dump keeps the keys and masks every value, like the token fields.
        context = info.context
        if not value or (isinstance(context, Mapping) and context.get("reveal_secrets")):
            return value
        masked: dict[str, Any] = _masked(value)
        return masked

    @field_validator("extra")
    @classmethod
    def _storable(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if not value or _flat_and_small(value):
            return value  # every token response keyturn has seen, at once
        provider = str(info.data.get("provider", "a provider"))
        return storable_extra(value, provider, refuse_mask=True)

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        """Whether the access token expires within ``seconds`` from ``now``.

        A token without ``expires_at`` never does.
        """
        if self.expires_at is None:
            return False
        current = time.time() if now is None else now
        return self.expires_at - seconds <= current

    def refresh_token_expired(self, now: float | None = None) -> bool:
        """Whether the refresh token is past its own expiry (``False`` if unknown)."""
        if self.refresh_token_expires_at is None:
            return False
        current = time.time() if now is None else now
        return self.refresh_token_expires_at <= current

    def __repr_args__(self) -> Any:
        # Keep repr short: 'extra' may hold provider fields we know nothing about.
        for name, value in super().__repr_args__():
            yield (name, sorted(value) if name == "extra" else value)


class AuthorizationRequest(_Model):
    """One authorize redirect: what to send the user to, and what to check when they return.

    Store it server-side (or in a signed, short-lived cookie) until the callback, then call
    :meth:`verify_callback` with the callback's query parameters.
    """

    provider: str
    url: str = Field(repr=False)  # carries state and nonce in its query
    redirect_uri: str
    state: Secret
    code_verifier: Secret | None = None
    nonce: Secret | None = None
    scopes: tuple[str, ...] = ()
    issuer: str | None = None
    issuer_required: bool = Field(
        default=False,
        description=(
            "The provider always names its issuer on the way back (its spec's "
            "`authorization_response_iss`): a callback without `iss` is refused."
        ),
    )
    created_at: int

    @field_serializer("state", "code_verifier", "nonce")
    def _ser_secret(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        return _dump_secret(value, info)

    @field_serializer("url")
    def _ser_url(self, value: str, info: SerializationInfo) -> str:
        context = info.context
        if isinstance(context, Mapping) and context.get("reveal_secrets"):
            return value
        return _MASK_QUERY.sub(r"\1" + _MASK, value)

    def verify_callback(self, query: Mapping[str, str]) -> str:
        """Check the callback's query and return the authorization code.

        :param query: the query parameters of the request to ``redirect_uri``.
        :raises AuthorizationDenied: the provider sent ``error=...`` (checked after state,
            so a forged error cannot be planted either).
        :raises StateMismatchError: ``state`` is missing or not ours.
        :raises IssuerMismatchError: ``iss`` is present and is not the provider's issuer, or
            it is absent while ``issuer_required`` (RFC 9207 section 2.4: a mix-up attack
            would leave it out).
        :raises MissingCodeError: no ``code``.
        """
        state = query.get("state")
        expected = self.state.get_secret_value()
        if not state or not hmac.compare_digest(state.encode(), expected.encode()):
            raise StateMismatchError(
                f"{self.provider}: the callback's state does not match the authorization "
                "request (expired sign-in attempt, second tab, or forged callback)"
            )
        issuer = query.get("iss")
        if issuer is not None and self.issuer is not None and issuer != self.issuer:
            raise IssuerMismatchError(
                f"{self.provider}: the callback names issuer {issuer!r}, expected {self.issuer!r}"
            )
        if issuer is None and self.issuer_required:
            raise IssuerMismatchError(
                f"{self.provider}: the callback carries no iss, which this provider sends on "
                "every redirect back (RFC 9207)"
            )
        error = query.get("error")
        if error:
            raise AuthorizationDenied(self.provider, error, query.get("error_description"))
        code = query.get("code")
        if not code:
            raise MissingCodeError(f"{self.provider}: the callback carries no code and no error")
        return code


class Profile(_Model):
    """The signed-in user, normalised across providers. ``raw`` keeps what the provider sent."""

    id: str
    name: str | None = None
    email: str | None = None
    email_verified: bool | None = None
    image: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("raw")
    @classmethod
    def _readable(cls, value: dict[str, Any]) -> dict[str, Any]:
        return readable_raw(value) if value else value

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # GitHub's user ids are integers; ids are compared as text everywhere.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name != "raw":
                yield (name, value)


class RefreshFailure(_Model):
    """The last failed refresh, as kept in the JWT (no secrets; safe to show)."""

    error: str
    status: int | None = None
    description: str | None = None
    details: dict[str, str] = Field(default_factory=dict)
    permanent: bool
    at: int


class JWT(_Model):
    """What the ``jwt`` callback keeps between requests: NextAuth's ``token``.

    It holds the refresh token, so it lives server-side or encrypted; the app shows users a
    :class:`Session` instead. ``error`` becomes ``"RefreshAccessTokenError"`` after a
    permanent refresh failure; ``refresh_failure`` records the last failure of either kind.
    ``claims`` is free space for the app's own data (wrap the ``keyturn_jwt`` hook to fill it).
    """

    tokens: TokenSet
    user: Profile | None = None
    error: str | None = None
    refresh_failure: RefreshFailure | None = None
    claims: dict[str, Any] = Field(default_factory=dict)

    @property
    def provider(self) -> str:
        """The provider id of the tokens."""
        return self.tokens.provider


class Session(_Model):
    """What the app and its pages see. Never carries the refresh token or the id token."""

    provider: str
    user: Profile | None = None
    access_token: Secret | None = None
    expires_at: int | None = None
    error: str | None = None
    claims: dict[str, Any] = Field(default_factory=dict)

    @field_serializer("access_token")
    def _ser_secret(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        return _dump_secret(value, info)

    @classmethod
    def from_jwt(cls, token: JWT) -> Session:
        """What the default ``keyturn_session`` callback returns for ``token``.

        The provider, user, access token, its expiry, ``error`` and a copy of ``claims``;
        never the refresh token or the id token. Every value comes from a validated
        :class:`JWT`, so the model is built without validating them again: the result equals
        ``Session(provider=..., user=..., ...)`` built from the same values (fields, dumps,
        repr and ``model_fields_set``), at a fraction of the cost.
        """
        tokens = token.tokens
        # What model_construct (and validation) leave behind, set directly: every request
        # builds one of these.
        session = _new(cls)
        _set(
            session,
            "__dict__",
            {
                "provider": tokens.provider,
                "user": token.user,
                "access_token": tokens.access_token,
                "expires_at": tokens.expires_at,
                "error": token.error,
                "claims": dict(token.claims),  # validation copies a dict; so do we
            },
        )
        _set(session, "__pydantic_fields_set__", set(_SESSION_FIELDS))
        _set(session, "__pydantic_extra__", None)
        _set(session, "__pydantic_private__", None)
        return session


_new = object.__new__
_set = object.__setattr__
_SESSION_FIELDS = frozenset(Session.model_fields)

# from_jwt sets every field, no private attributes and no extras.
assert not Session.__private_attributes__ and Session.model_config.get("extra") == "forbid"
assert {"provider", "user", "access_token", "expires_at", "error", "claims"} == _SESSION_FIELDS
