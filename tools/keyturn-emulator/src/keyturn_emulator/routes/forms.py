"""Reading a request's parameters from its body: a form, or a JSON object (GitHub takes both)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.requests import Request

__all__ = ["params"]


async def params(request: Request) -> dict[str, str]:
    """The request's parameters; an unreadable body gives none.

    :param request: a POST or DELETE with a form or JSON body.
    :return: the parameters, every value a string (JSON ``null`` left out).
    """
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items() if v is not None}
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}
