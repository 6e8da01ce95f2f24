"""keyturn.web.sealing: payloads sealed into a cookie value (a JWE), and everything that must
read as nothing: changed, cut, expired, foreign, garbage."""

from __future__ import annotations

import json

import pytest

from keyturn.web import Keyring
from keyturn.web.sealing import MAX_SEALED_LENGTH, Sealer
from tests.conftest import START, FakeClock

from ._site import OTHER_SECRET, SECRET, SESSION, b64decode, b64encode


@pytest.fixture
def sealer(clock: FakeClock) -> Sealer:
    return Sealer(Keyring(SECRET), SESSION, clock)


def test_sealing_round_trips_with_iat_and_exp(sealer: Sealer) -> None:
    payload = {"jwt": {"user": {"id": "1", "name": "Zoë"}, "claims": [1, 2.5, None, True]}}
    value = sealer.seal(payload, 600)
    assert sealer.unseal(value) == {"iat": START, "exp": START + 600, **payload}
    own_exp = sealer.unseal(sealer.seal({"exp": START + 5}, 600))  # a refresh keeps the end
    assert own_exp is not None and own_exp["exp"] == START + 5


def test_an_expired_seal_reads_as_nothing(sealer: Sealer, clock: FakeClock) -> None:
    value = sealer.seal({"a": 1}, 60)
    clock.advance(59)
    assert sealer.unseal(value) is not None
    clock.advance(1)
    assert sealer.unseal(value) is None


def test_changing_any_byte_of_a_seal_is_detected(sealer: Sealer) -> None:
    value = sealer.seal({"sub": "ada", "role": "user"}, 600)
    parts = value.split(".")
    assert len(parts) == 5 and parts[1] == ""  # dir: no encrypted key
    tried = 0
    for index, part in enumerate(parts):
        raw = b64decode(part)
        for position in range(len(raw)):
            for bit in (0x01, 0x80):
                changed = bytearray(raw)
                changed[position] ^= bit
                forged = [*parts[:index], b64encode(bytes(changed)), *parts[index + 1 :]]
                assert sealer.unseal(".".join(forged)) is None, (index, position, bit)
                tried += 1
    assert tried > 200


def test_a_truncated_or_extended_seal_reads_as_nothing(sealer: Sealer) -> None:
    value = sealer.seal({"sub": "ada"}, 600)
    for cut in range(len(value)):
        assert sealer.unseal(value[:cut]) is None, cut
    for extra in ("A", ".", "==", ".AAAA"):
        assert sealer.unseal(value + extra) is None


def test_a_seal_of_another_key_reads_as_nothing(sealer: Sealer, clock: FakeClock) -> None:
    foreign = Sealer(Keyring(OTHER_SECRET), SESSION, clock).seal({"sub": "mallory"}, 600)
    assert sealer.unseal(foreign) is None
    ours = sealer.seal({"sub": "ada"}, 600)
    # Our key id on the foreign ciphertext: the key is still not the one that sealed it.
    swapped = ".".join([ours.split(".")[0], *foreign.split(".")[1:]])
    assert sealer.unseal(swapped) is None


def test_garbage_and_huge_values_read_as_nothing(sealer: Sealer) -> None:
    header = sealer.seal({}, 60).split(".")[0]
    kid = json.loads(b64decode(header))["kid"]
    headers = [
        {"alg": "none", "enc": "A256GCM", "kid": kid},
        {"alg": "dir", "enc": "A128GCM", "kid": kid},
        {"alg": "dir", "enc": "A256GCM", "kid": [kid]},
        {"alg": "dir", "enc": "A256GCM", "kid": kid, "zip": "DEF"},
        ["dir"],
        "text",
        None,
    ]
    values = [
        "",
        "garbage",
        ".",
        "....",
        "a.b.c.d.e",
        "eyJ.eyJ.sig",
        header,
        header + "....",
        header + ".AAAA.AAAA.AAAA.AAAA",
        "%%%%.%%%%.%%%%.%%%%.%%%%",
        "é" * 40,
        "\x00" * 10,
        "A" * (MAX_SEALED_LENGTH + 1),
        *(b64encode(json.dumps(h).encode()) + ".." + "A" * 16 + ".AAAA.AAAA" for h in headers),
    ]
    for value in values:
        assert sealer.unseal(value) is None, value[:40]
    huge = sealer.seal({"blob": "x" * MAX_SEALED_LENGTH}, 60)
    assert len(huge) > MAX_SEALED_LENGTH and sealer.unseal(huge) is None


def test_a_seal_cannot_be_read_without_the_key(sealer: Sealer) -> None:
    marker = "plain-marker-7f3a"
    value = sealer.seal({"email": "ada@example.com", "note": marker}, 600)
    assert marker not in value and "ada@example.com" not in value
    for part in value.split("."):
        decoded = b64decode(part)
        assert marker.encode() not in decoded and b"ada@example.com" not in decoded
    assert json.loads(b64decode(value.split(".")[0])).keys() == {"alg", "enc", "kid"}
