"""How a session cookie's JSON is laid out inside its encryption: compressed, in segments that
never put a token in the same compression as anything else.

A sealed cookie's length is visible to anyone who sees the traffic. Compressing a secret
together with data someone else can choose lets them learn the secret from that length: they
change their data and watch when the output shrinks, which it does when their data repeats
part of the secret (the CRIME and BREACH attacks on TLS and HTTP compression). A session holds
both: tokens, and text others influence (the user's profile, the app's claims, group names a
provider lists). So the JSON text is cut before and after every value that holds a token: the
rest (the *skeleton*, with a NUL byte where each such value was; JSON text never holds a raw
NUL) is compressed first, then each value, NUL first, with a full flush (``Z_FULL_FLUSH``)
after each part: zlib then forgets everything before the flush ("the compression state is
reset so that decompression can restart from this point"), so no part refers back to another,
and each is encoded exactly as it would be alone. A token's compressed length then depends only
on that token, which the provider made and which changes whenever it is reissued. DEFLATE
stores a part as it is when compressing it would not make it shorter (random tokens), for 5
bytes of framing.

The plaintext is the byte :data:`FORMAT` and the raw DEFLATE stream (all of it inside the
AES-GCM encryption, so only the app can have written it). Inflated, it reads
``skeleton NUL value1 NUL value2 ...``; putting each value in its slot gives back exactly the
JSON text that was packed. A plaintext that starts with ``{`` is JSON as written before this
format, and is read as such.
"""

from __future__ import annotations

import json
import secrets
import zlib
from collections.abc import Sequence
from typing import Any

__all__ = ["FORMAT", "MAX_UNPACKED", "pack", "segments", "unpack"]

#: The first byte of a packed plaintext (JSON text never starts with it).
FORMAT = 0x01
#: The most bytes of JSON a packed plaintext may unpack to; a bigger one is refused.
MAX_UNPACKED = 256 * 1024

_FORMAT = bytes([FORMAT])
_SLOT = b"\0"


def segments(body: dict[str, Any], apart: Sequence[Sequence[str]]) -> list[bytes]:
    """``body`` as compact JSON, cut before and after each value at the paths ``apart``.

    The segments alternate: text without secrets, a value, text, ..., text (so there is one
    more text than values); joined they are ``json.dumps(body, separators=(",", ":"))``,
    encoded.

    :param body: a JSON object.
    :param apart: paths (keys from the top: ``("jwt", "tokens", "access_token")``) of the
        values that hold secrets; a path that is missing, or leads to ``None`` or an empty
        object, is skipped.
    """
    marker = "\0" + secrets.token_hex(8) + "-"  # no value of the body can equal it by chance
    copy = dict(body)
    values: dict[str, Any] = {}  # the JSON text of each placeholder, and the value it stands for
    for number, path in enumerate(apart):
        parent = _copied_parent(copy, path)
        if parent is None or parent.get(path[-1]) in (None, {}):
            continue
        placeholder = f"{marker}{number}"
        values[json.dumps(placeholder)] = parent[path[-1]]
        parent[path[-1]] = placeholder
    text = json.dumps(copy, separators=(",", ":"))
    found = sorted((text.find(placeholder), placeholder) for placeholder in values)
    if any(at < 0 or text.count(placeholder) != 1 for at, placeholder in found):
        return [json.dumps(body, separators=(",", ":")).encode()]  # cannot happen; still JSON
    parts, start = [], 0
    for at, placeholder in found:
        parts.append(text[start:at])
        parts.append(json.dumps(values[placeholder], separators=(",", ":")))
        start = at + len(placeholder)
    parts.append(text[start:])
    return [part.encode() for part in parts]


def pack(body: dict[str, Any], apart: Sequence[Sequence[str]]) -> bytes:
    """``body`` as compact JSON, compressed with the values at the paths ``apart`` on their
    own (see :func:`segments` and the module's docstring)."""
    cut = segments(body, apart)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [bytes([FORMAT])]
    for part in (_SLOT.join(cut[0::2]), *(_SLOT + value for value in cut[1::2])):
        out += [deflate.compress(part), deflate.flush(zlib.Z_FULL_FLUSH)]
    out.append(deflate.flush())
    return b"".join(out)


def unpack(plaintext: bytes) -> bytes | None:
    """The JSON text :func:`pack` packed into ``plaintext``; ``None`` if it is malformed or
    would unpack to more than :data:`MAX_UNPACKED` bytes."""
    if plaintext[:1] != _FORMAT:
        return None
    inflate = zlib.decompressobj(-15)
    try:
        text = inflate.decompress(plaintext[1:], MAX_UNPACKED + 1)
    except zlib.error:
        return None
    if len(text) > MAX_UNPACKED or not inflate.eof or inflate.unused_data:
        return None
    pieces = text.split(_SLOT)
    count = len(pieces) // 2  # the values; the skeleton's texts are one more
    if len(pieces) % 2 == 0:
        return None
    skeleton, values = pieces[: count + 1], pieces[count + 1 :]
    joined = [skeleton[0]]
    for value, rest in zip(values, skeleton[1:], strict=True):
        joined += (value, rest)
    return b"".join(joined)


def _copied_parent(body: dict[str, Any], path: Sequence[str]) -> dict[str, Any] | None:
    """The object holding ``path``'s last key, copied (with every object above it) so that
    changing it leaves the caller's ``body`` alone; ``None`` if the path is missing."""
    parent = body
    for key in path[:-1]:
        child = parent.get(key)
        if not isinstance(child, dict):
            return None
        child = dict(child)
        parent[key] = child
        parent = child
    return parent
