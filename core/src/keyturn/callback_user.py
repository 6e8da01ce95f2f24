"""The ``user`` field of a ``form_post`` callback: the name Apple sends once, and only there.

Sign in with Apple has no userinfo endpoint. The ID token names the user (``sub``) and
carries the email, but the user's name arrives only in the callback of the first
authorization, as a JSON text in the form field ``user``::

    {"name": {"firstName": "Ada", "lastName": "Lovelace"}, "email": "ada@example.com"}

(https://developer.apple.com/documentation/signinwithapple/incorporating-sign-in-with-apple-into-other-platforms).
Nothing signs it: whoever posts the callback writes it. keyturn therefore reads it only for
a provider whose spec asks for ``response_mode=form_post``, only after the callback's
``state`` matched and the ID token was verified, and only for display: the name fills
:attr:`~keyturn.Profile.name` when the ID token gave none, and the whole checked field is
kept as ``raw["user"]``. The user's identity stays the ID token's ``sub``; an ``email`` in
the field is kept in ``raw["user"]`` but never replaces the ID token's.

A field that is too long (over :data:`MAX_USER_FIELD` bytes), not JSON, or not of the shape
above is ignored with a log line (``keyturn.callback_user``, never the value): a sign-in
never fails because of it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from .models import Profile, ProviderSpec

__all__ = ["MAX_USER_FIELD", "USER_FIELD", "asks_form_post", "read_user_field", "with_user_field"]

log = logging.getLogger("keyturn.callback_user")

#: The callback's form field.
USER_FIELD = "user"
#: The most bytes of ``user`` read; Apple's (two names and an email) is far shorter.
MAX_USER_FIELD = 4096
#: The most characters kept of each name and of the email.
_MAX_TEXT = 256


def asks_form_post(spec: ProviderSpec) -> bool:
    """Whether ``spec`` asks the provider to post its callback (``response_mode=form_post``,
    https://openid.net/specs/oauth-v2-form-post-response-mode-1_0.html)."""
    return spec.authorize_params.get("response_mode") == "form_post"


def _short_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text: str = value.strip()
    if not text or len(text) > _MAX_TEXT or any(ord(c) < 32 for c in text):
        return None
    return text


def read_user_field(provider: str, value: str | None) -> dict[str, Any] | None:
    """The checked content of a ``user`` field, or ``None`` (absent, or ignored and logged).

    :param provider: the provider id, for the log line.
    :param value: the field's text as posted.
    :return: ``{"name": {"firstName": ..., "lastName": ...}, "email": ...}`` with only the
        parts that are short single-line strings.
    """
    if value is None or value == "":
        return None
    if len(value.encode("utf-8", "surrogatepass")) > MAX_USER_FIELD:
        log.warning(
            "the %s callback's user field is over %d bytes; ignored", provider, MAX_USER_FIELD
        )
        return None
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        log.warning("the %s callback's user field is not JSON; ignored", provider)
        return None
    if not isinstance(data, dict):
        log.warning("the %s callback's user field is not a JSON object; ignored", provider)
        return None
    checked: dict[str, Any] = {}
    name = data.get("name")
    if isinstance(name, dict):
        parts = {
            key: text
            for key in ("firstName", "lastName")
            if (text := _short_text(name.get(key))) is not None
        }
        if parts:
            checked["name"] = parts
    email = _short_text(data.get("email"))
    if email is not None:
        checked["email"] = email
    if not checked:
        log.warning("the %s callback's user field holds no name or email; ignored", provider)
        return None
    return checked


def with_user_field(profile: Profile, user: Mapping[str, Any] | None) -> Profile:
    """``profile`` with the name of a checked ``user`` field (:func:`read_user_field`).

    The name fills ``name`` only where the profile has none; the field is kept as
    ``raw["user"]``. ``id`` and ``email`` never change.
    """
    if not user:
        return profile
    update: dict[str, Any] = {"raw": {**profile.raw, USER_FIELD: dict(user)}}
    parts = user.get("name") or {}
    full = " ".join(p for p in (parts.get("firstName"), parts.get("lastName")) if p)
    if full and profile.name is None:
        update["name"] = full
    return profile.model_copy(update=update)
