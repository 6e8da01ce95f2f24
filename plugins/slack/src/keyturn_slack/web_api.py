"""Reading Slack's Web API answers: the ``ok`` envelope, and the plain OAuth form.

Every Slack Web API method answers JSON with a boolean ``ok``: ``true`` on success, and
``false`` with an ``error`` code on failure, most often with HTTP 200 ("Callers should always
check the value of the ok params in the response", on every method page, e.g.
https://docs.slack.dev/reference/methods/openid.connect.token). A 200 is therefore never
enough: :func:`read_answer` reads ``ok`` first, on every endpoint (token, userinfo,
revocation), and an ``ok: false`` body is an error whatever else it carries, an
``access_token`` included.

Some reports show Slack's token endpoints answering a refused refresh with HTTP 400 and an
RFC 6749 body (``{"error": "invalid_grant", "error_description": ...}``, quoted in
https://nango.dev/blog/slack-oauth-refresh-token-invalid-grant), which Slack's own pages do
not describe. Sources disagree, so both are read: a body without ``ok`` goes to keyturn's
RFC 6749 reader (:func:`keyturn.flows.read_json`).

What is never kept: Slack adds ``warning`` (deprecation notes) and ``response_metadata``
(more notes, paging cursors) to answers. They are dropped from the body before anything else
reads it, so they reach neither ``TokenSet.extra``, nor an error's details, nor a log line.
``ok`` is dropped too: it says nothing once read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from keyturn import HttpResponse, OAuthError, ProviderError, ProviderSpec, flows

__all__ = [
    "ENVELOPE_FIELDS",
    "NOISE_FIELDS",
    "answer_error",
    "read_answer",
    "rebuilt",
    "without_envelope",
]

#: The fields of Slack's envelope, dropped once read: ``ok`` itself, and the notes Slack
#: adds to answers (``warning``, ``response_metadata``), which are neither tokens nor
#: profile data and must stay out of stored tokens and logs.
ENVELOPE_FIELDS = frozenset({"ok", "warning", "response_metadata"})
#: The notes alone (``warning``, ``response_metadata``), dropped from plain OAuth bodies too.
NOISE_FIELDS = frozenset({"warning", "response_metadata"})

#: The code used when an ``ok: false`` body names no ``error`` (never documented; read as a
#: failure all the same).
UNNAMED_ERROR = "unknown_error"


def without_envelope(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without ``ok``, ``warning`` and ``response_metadata``."""
    return {key: value for key, value in data.items() if key not in ENVELOPE_FIELDS}


def answer_error(
    provider: ProviderSpec, operation: str, response: HttpResponse, data: Mapping[str, Any]
) -> ProviderError:
    """The error of an ``ok: false`` answer.

    The code is the body's ``error`` (``unknown_error`` when it has none); the spec's lists,
    then RFC 6749's codes, then the HTTP status decide whether it is permanent
    (:func:`keyturn.flows.is_permanent`). A ``Retry-After`` header travels on the error.
    Slack sends no ``error_description``; the error carries none, and no other field of the
    body (``needed`` and ``provided`` name scopes, ``warning`` is a note): a message never
    repeats what the provider sent beyond its code.

    :param provider: the Slack spec.
    :param operation: ``exchange_code``, ``refresh``, ``userinfo`` or ``revoke``.
    :param response: the answer, for its status and headers.
    :param data: the decoded body, whose ``ok`` is not ``true``.
    :return: an :class:`~keyturn.OAuthError`, to raise.
    """
    code = flows.text(data.get("error")) or UNNAMED_ERROR
    return OAuthError(
        provider=provider.id,
        operation=operation,
        error=code,
        status=response.status,
        permanent=flows.is_permanent(provider, response.status, code),
        retry_after=flows.retry_after(response),
    )


def read_answer(provider: ProviderSpec, operation: str, response: HttpResponse) -> dict[str, Any]:
    """The fields of a successful Slack answer, or the error it carries.

    * A JSON object with ``ok: true`` (and a 2xx status): its fields, envelope dropped.
    * ``ok: false``, whatever the status and whatever else the body holds: the error
      (:func:`answer_error`); an ``access_token`` beside it is never read.
    * ``ok`` of any other value (``"true"``, ``null``): an unusable answer (transient).
    * No ``ok`` at all: RFC 6749's reading (an ``error`` field, else a failed status, else
      the fields), with ``warning`` and ``response_metadata`` dropped first.

    :param provider: the Slack spec.
    :param operation: the operation, for the error.
    :param response: the answer.
    :return: the decoded object, without ``ok``, ``warning`` and ``response_metadata``.
    :raises ProviderError: the answer is a failure, or cannot be used.
    """
    data = response.data()
    if data is None or "ok" not in data:
        if data is not None:
            response = rebuilt(response, _without(data, NOISE_FIELDS))
        return flows.read_json(provider, operation, response)
    ok = data["ok"]
    if ok is False:
        raise answer_error(provider, operation, response, data)
    if ok is not True:
        raise flows.unusable_response(
            provider, operation, response, "the answer's ok field is neither true nor false"
        )
    cleaned = without_envelope(data)
    if not response.ok:
        # ok: true with a failed status is not documented; the status wins.
        error = flows.error_from_response(provider, operation, response, cleaned)
        if error is not None:
            raise error
    return cleaned


def _without(data: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in fields}


def rebuilt(response: HttpResponse, data: Mapping[str, Any]) -> HttpResponse:
    """``response`` with ``data`` as its JSON body: an answer the RFC 6749 parsers of
    :mod:`keyturn.flows` read as they read any provider's, the envelope already gone.

    :param response: the answer as it came (status and headers are kept).
    :param data: the fields to put in its place.
    :return: a new response; ``response`` is not changed.
    """
    headers = dict(response.headers)
    headers["content-type"] = "application/json"
    return HttpResponse(response.status, headers, json.dumps(dict(data)).encode("utf-8"))
