"""Requests to GitHub's REST API (``api.github.com``) and reading its errors.

The token endpoint under ``github.com/login`` speaks OAuth; the REST API does not. It reports
a failure through the HTTP status and a JSON body with a ``message`` (``"Bad credentials"``),
never an OAuth ``error`` field. :func:`api_error` keeps that message as the error's
description, where keyturn's OAuth reader could only say "HTTP 401". Requests are keyturn's
own :func:`keyturn.flows.bearer_request` with GitHub's media type in ``Accept``.

Sources: GitHub Docs, "Troubleshooting the REST API" (error bodies with a ``message``,
``422 Validation Failed``),
https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
and "Authenticating to the REST API" ("Authenticating with invalid credentials will
initially return a ``401 Unauthorized`` response"),
https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api
The ``"Bad credentials"`` wording itself is what real 401 answers carry (for example
https://github.com/PyGithub/PyGithub/issues/934); the documentation does not quote it.
"""

from __future__ import annotations

from keyturn import HttpResponse, ProviderError, ProviderSpec, flows

__all__ = ["MEDIA_TYPE", "api_error"]

#: The media type GitHub's REST API asks clients to accept ("Setting to
#: application/vnd.github+json is recommended", on every endpoint of the REST reference, e.g.
#: https://docs.github.com/en/rest/users/users#get-the-authenticated-user).
MEDIA_TYPE = "application/vnd.github+json"

_MESSAGE_LIMIT = 200


def api_error(
    provider: ProviderSpec,
    operation: str,
    response: HttpResponse,
    *,
    permanent: bool | None = None,
) -> ProviderError:
    """The error for a REST API response that is not a success.

    :param provider: the provider's spec (its id names the error; its lists classify it).
    :param operation: ``userinfo`` or ``revoke``.
    :param response: the failed response.
    :param permanent: force the classification; by default the status decides as for any
        provider (5xx, 429, 425 and 408 transient, other statuses permanent).
    :return: an :class:`~keyturn.InvalidResponseError` with ``error="http_error"``, the
        status, and GitHub's ``message`` as the description when the body has one.
    """
    body = response.json()
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str) and message and len(message) <= _MESSAGE_LIMIT:
        description = message
    else:
        description = f"HTTP {response.status} from GitHub's REST API"
    details: dict[str, str] = {}
    if isinstance(body, dict) and isinstance(body.get("documentation_url"), str):
        details["documentation_url"] = body["documentation_url"][:_MESSAGE_LIMIT]
    return flows.http_error(
        provider, operation, response, description, permanent=permanent, details=details
    )
