"""keyturn.web.packing: a session's JSON compressed with every token apart, and read back as
exactly the JSON that was packed; anything malformed reads as nothing."""

from __future__ import annotations

import json
import random
import secrets
import string
import zlib
from typing import Any

import pytest

from keyturn.web import Keyring
from keyturn.web.packing import FORMAT, MAX_UNPACKED, pack, segments, unpack
from keyturn.web.sealing import Sealer
from tests.conftest import FakeClock

from ._site import SECRET, SESSION, blob, groups

PATHS = [("jwt", "tokens", name) for name in ("access_token", "refresh_token", "id_token", "extra")]
_RANDOM = random.Random(7)
ACCESS = "gho_" + "".join(_RANDOM.choices(string.ascii_letters + string.digits, k=36))
REFRESH = "ghr_" + "".join(_RANDOM.choices(string.ascii_letters + string.digits, k=76))


def session(**tokens: Any) -> dict[str, Any]:
    base = {"provider": "github", "access_token": ACCESS, "refresh_token": REFRESH}
    return {
        "iat": 1,
        "exp": 2,
        "jwt": {
            "tokens": {**base, **tokens},
            "user": {"id": "1", "name": "Zoë \u2603", "email": "ada@example.com", "raw": {}},
            "claims": {"team": ["a", "b"], "note": "\u0000 and \\u0000"},
        },
    }


def compact(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def alone(segment: bytes) -> bytes:
    """``segment`` compressed by a fresh compressor, up to a full flush."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    return deflate.compress(segment) + deflate.flush(zlib.Z_FULL_FLUSH)


BODIES = {
    "typical": session(),
    "no refresh token": session(refresh_token=None),
    "id token and extra": session(id_token="eyJ." + blob(900) + ".sig", extra={"a": {"b": [1]}}),
    "empty extra": session(extra={}),
    "no tokens at all": {"iat": 1, "exp": 2, "jwt": None},
    "nothing to set apart": {"iat": 1, "exp": 2},
    "a claim that looks like a slot": session(access_token="\u0000abc-0"),
    "groups in the access token": session(access_token="eyJ." + json.dumps(groups(300)) + ".x"),
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_unpacking_gives_back_exactly_the_json_packed(body: dict[str, Any]) -> None:
    packed = pack(body, PATHS)
    assert unpack(packed) == compact(body)
    assert packed[0] == FORMAT and compact(body)[0] != FORMAT


def test_each_token_is_compressed_on_its_own() -> None:
    id_token = "eyJ." + blob(900) + ".sig"
    body = session(id_token=id_token, extra={"authed_user": {"access_token": "xoxp-fake"}})
    cut = segments(body, PATHS)
    assert b"".join(cut) == compact(body)
    assert cut[1::2] == [
        json.dumps(ACCESS).encode(),
        json.dumps(REFRESH).encode(),
        json.dumps(id_token).encode(),
        b'{"authed_user":{"access_token":"xoxp-fake"}}',
    ]
    for token in (ACCESS, REFRESH, id_token, "xoxp-fake"):
        assert not any(token.encode() in part for part in cut[0::2])
    # The stream is the skeleton, then each value, each compressed as if alone: nothing
    # refers across parts.
    ending = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    parts = [b"\0".join(cut[0::2]), *(b"\0" + value for value in cut[1::2])]
    assert pack(body, PATHS) == bytes([FORMAT]) + b"".join(map(alone, parts)) + ending


def test_a_token_compresses_the_same_whatever_else_the_session_holds() -> None:
    # Text an attacker chooses (a name, a claim) that repeats part of the token does not make
    # the token's part of the stream any shorter.
    plain = pack(session(), PATHS)
    echoed = session()
    echoed["jwt"]["claims"]["guess"] = ACCESS[:20] * 5
    echoed["jwt"]["user"]["name"] = ACCESS[:30]
    token = alone(b"\0" + json.dumps(ACCESS).encode())
    assert token in plain and token in pack(echoed, PATHS)
    assert len(token) >= len(ACCESS)  # random: stored as it is


def test_packing_leaves_the_body_alone() -> None:
    body = session(id_token="id-fake")
    before = json.dumps(body)
    pack(body, PATHS)
    assert json.dumps(body) == before


def test_compression_shrinks_what_repeats_and_never_grows_what_does_not() -> None:
    plain = compact(session())
    assert len(pack(session(), PATHS)) < len(plain)
    grouped = session(access_token="eyJ." + json.dumps(groups(300)) + ".x")
    assert len(pack(grouped, PATHS)) < len(compact(grouped)) * 0.8
    noise = session(access_token=secrets.token_urlsafe(3000), refresh_token="x")
    # A random token is stored as it is, for at most a few bytes of framing.
    assert len(pack(noise, PATHS)) <= len(compact(noise)) + 20


def _deflated(data: bytes) -> bytes:
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    return deflate.compress(data) + deflate.flush()


PACKED = bytes([FORMAT])


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        PACKED,
        b"{}",
        PACKED + b"not deflate",
        PACKED + _deflated(b'{"a":1}') + b"trailing",
        PACKED + _deflated(b'{"a":1}')[:-2],  # cut short
        PACKED + zlib.compressobj(9, zlib.DEFLATED, -15).compress(b"{}"),  # never finished
        PACKED + _deflated(b"[" * (MAX_UNPACKED + 1)),  # a bomb
        bytes([FORMAT + 1]) + _deflated(b'{"a":1}'),
        PACKED + _deflated(b'{"a":\0}'),  # a slot without its value
        PACKED + _deflated(b'{"a":1}\0' + b"2"),  # a value without its slot
    ],
)
def test_a_malformed_packing_reads_as_nothing(plaintext: bytes) -> None:
    assert unpack(plaintext) is None


def test_the_largest_packing_read_is_max_unpacked() -> None:
    text = b"[" + b" " * (MAX_UNPACKED - 2) + b"]"
    assert unpack(PACKED + _deflated(text)) == text


def test_a_sealer_reads_packed_and_plain_json_alike(clock: FakeClock) -> None:
    sealer = Sealer(Keyring(SECRET), SESSION, clock)
    body = session(id_token="id-fake")
    payload = {"jwt": body["jwt"]}
    packed, plain = sealer.seal(payload, 600, PATHS), sealer.seal(payload, 600)
    expected = {"iat": int(clock()), "exp": int(clock()) + 600, **payload}
    assert sealer.unseal(packed) == sealer.unseal(plain) == expected
    assert sealer.open(packed) == sealer.open(plain)
    assert len(packed) < len(plain)
