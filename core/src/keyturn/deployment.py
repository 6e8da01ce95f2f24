"""A provider spec made for one deployment: the app's tenant, domain, realm or team filled in.

Some providers have no single set of endpoints: Auth0 and Okta serve each customer on its own
domain, Keycloak on the operator's server under a realm, Microsoft under a tenant. Their
specs are templates: ``ProviderSpec.settings`` lists the settings
(:class:`~keyturn.models.DeploymentSetting`), and the URL fields carry ``{name}``
placeholders::

    ProviderSpec(
        id="auth0",
        ...,
        settings=(DeploymentSetting(name="domain", kind="host", description="..."),),
        discovery_url="https://{domain}/.well-known/openid-configuration",
    )

The convention, the same for every provider:

* In code: ``Keyturn(settings={"auth0": {"domain": "acme.eu.auth0.com"}})``.
* In the environment: ``KEYTURN_<ID>_<NAME>``, upper case: ``KEYTURN_AUTH0_DOMAIN``.
  A value given in code wins over the environment.
* A setting without a value and without a default is a
  :class:`~keyturn.ConfigurationError` naming both ways to give it, raised the first time
  the provider is used (``keyturn providers`` still lists the template).
* Values are checked by kind before they go near a URL: a ``host`` is a host name with an
  optional port, a ``segment`` a single path segment, a ``url`` an https URL (plain http only
  on loopback). No value can add a path, a query or another host to an endpoint.
* ``rotation`` and ``refresh_reuse_grace`` are read by keyturn itself: the tenant's choice
  of refresh-token rotation (Okta, Auth0, Keycloak let each tenant choose).

The ``keyturn_deploy`` hook turns a template and the values into the spec; keyturn's
default (:func:`keyturn.flows.deploy`) fills the placeholders. A plugin implements it when
its URLs depend on the values in a way placeholders cannot say (Microsoft's issuer is a
template for the shared tenants and fixed for one tenant).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError
from .flows import deploy, url_problem
from .models import _PLACEHOLDER, _ROTATIONS, DEPLOYMENT_URL_FIELDS, DeploymentSetting, ProviderSpec

__all__ = ["check_value", "deploy", "environ_name", "setting_values"]

# deploy lives in keyturn.flows, with the other defaults a plugin builds on.

_HOST = re.compile(
    r"^(?=.{1,253}(?::\d{1,5})?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::\d{1,5})?$"
)
#: Kinds whose values only ever go into URLs.
_URL_KINDS = frozenset({"host", "segment", "url"})
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")


def environ_name(spec: ProviderSpec, setting: DeploymentSetting) -> str:
    """``KEYTURN_<ID>_<NAME>``: where the environment gives ``setting``."""
    return spec.env_prefix + setting.name.upper()


def check_value(setting: DeploymentSetting, value: str) -> str:
    """``value`` made ready for ``setting``, or :class:`ValueError` saying what is wrong.

    The message describes the value's problem without quoting it (a value may be pasted in
    the wrong variable, and a secret must not reach a log).
    """
    value = value.strip()
    if not value:
        raise ValueError("is empty")
    if setting.kind == "host":
        if not _HOST.match(value):
            raise ValueError("is not a host name (letters, digits, '-' and '.', then ':port')")
        return value.lower()
    if setting.kind == "segment":
        if not _SEGMENT.match(value) or value in {".", ".."}:
            raise ValueError("is not one path segment (letters, digits, '.', '_', '~', '-')")
        return value
    if setting.kind == "url":
        value = value.rstrip("/")
        problem = url_problem(value, query=False)
        if problem is not None:
            raise ValueError(problem)
        if "{" in value or "}" in value:
            raise ValueError("has a brace")
        return value
    if setting.kind == "rotation":
        if value not in _ROTATIONS:
            raise ValueError(f"is not one of {', '.join(_ROTATIONS)}")
        return value
    if setting.kind == "seconds":
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError("is not a number of seconds") from None
        if not math.isfinite(seconds) or not 0 <= seconds <= 3600:
            raise ValueError("is not between 0 and 3600 seconds")
        return value
    if "\n" in value or "\r" in value or "{" in value or "}" in value:
        raise ValueError("is not a single line without braces")
    return value


def setting_values(
    spec: ProviderSpec, given: Mapping[str, Any] | None, environ: Mapping[str, str]
) -> dict[str, str]:
    """The value of each of ``spec``'s settings: from ``given``, else the environment, else
    the default. A ``host``, ``segment`` or ``url`` setting that no URL of ``spec`` holds
    any more (the app replaced the endpoints, as the emulator's ``point`` does) may be left
    out; settings of the other kinds are read by hooks and keyturn, and never are.

    :raises ConfigurationError: a setting has no value, a value is not usable (naming the
        setting and where it came from, never quoting the value), or ``given`` names a
        setting the spec does not have.
    """
    given = dict(given or {})
    known = {setting.name for setting in spec.settings}
    unknown = sorted(set(given) - known)
    if unknown:
        have = ", ".join(sorted(known)) or "none"
        raise ConfigurationError(
            f"settings for {spec.id!r} name {', '.join(unknown)}, which it does not have "
            f"(its settings: {have})"
        )
    placed = {
        name
        for field in DEPLOYMENT_URL_FIELDS
        for name in _PLACEHOLDER.findall(getattr(spec, field) or "")
    }
    values: dict[str, str] = {}
    for setting in spec.settings:
        variable = environ_name(spec, setting)
        raw: Any = given.get(setting.name)
        source = f"settings[{spec.id!r}][{setting.name!r}]"
        if raw is None:
            raw = environ.get(variable) or None
            source = variable
        if raw is None:
            raw = setting.default
            source = f"the default of {setting.name}"
        if raw is None and setting.kind in _URL_KINDS and setting.name not in placed:
            # The URLs no longer hold it (the app pointed the spec elsewhere): not needed.
            continue
        if raw is None:
            raise ConfigurationError(
                f"{spec.name} needs its {setting.name} ({setting.description}): set "
                f"{variable} or pass settings={{{spec.id!r}: {{{setting.name!r}: ...}}}}"
            )
        if not isinstance(raw, str):
            raw = str(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
            if raw is None:
                raise ConfigurationError(f"{source} for {spec.id!r} must be a string")
        try:
            values[setting.name] = check_value(setting, raw)
        except ValueError as exc:
            raise ConfigurationError(
                f"{source} for {spec.id!r} ({setting.kind} {setting.name}) {exc}"
            ) from None
    return values
