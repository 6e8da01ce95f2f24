"""keyturn.web.sealing: payloads sealed into a cookie value (a JWE), and everything that must
read as nothing: changed, cut, expired, foreign, garbage."""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import string
from collections.abc import Callable
from typing import Any

import pydantic_core
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from keyturn.web import Keyring
from keyturn.web.sealing import MAX_SEALED_LENGTH, Sealer, _parse_json
from tests.conftest import START, FakeClock

from ._site import OLD_SECRET, OTHER_SECRET, SECRET, SESSION, b64decode, b64encode


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


# == the reader against joserfc ===============================================================
#
# Sealer.unseal decrypts with AES-GCM directly rather than through joserfc. These tests hold
# it to the reader it replaced (the kid picks the key, joserfc's decrypt_compact with dir and
# A256GCM allowed, json.loads, the exp check): on every value below both agree, except the
# valid JWEs whose header has members keyturn never writes, which only the direct reader
# refuses.


def _reference_unseal(keyring: Keyring, clock: FakeClock, value: str) -> dict[str, Any] | None:
    """The reader before the direct one, kept here as the oracle."""
    if not value or len(value) > MAX_SEALED_LENGTH:
        return None
    keys = [(key.kid, OctKey.import_key(key.material)) for key in keyring.keys(SESSION)]
    try:
        encoded = value.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, TypeError):
        return None
    if not isinstance(header, dict):
        return None
    if header.get("alg") != "dir" or header.get("enc") != "A256GCM":
        return None
    key = next((key for kid, key in keys if kid == header.get("kid")), None)
    if key is None:
        return None
    try:
        plaintext = jwe.decrypt_compact(value, key, algorithms=["dir", "A256GCM"]).plaintext
        body = json.loads(plaintext or b"")
    except (JoseError, ValueError, TypeError):
        return None
    if not isinstance(body, dict):
        return None
    exp = body.get("exp")
    if not isinstance(exp, int) or exp <= clock():
        return None
    return body


def _hand_seal(
    material: bytes,
    header: Any,
    plaintext: bytes,
    *,
    iv: bytes = b"\x07" * 12,
    tag_bytes: int = 16,
    encrypted_key: bytes = b"",
) -> str:
    """A compact JWE written with AES-GCM by hand, independently of joserfc and of keyturn."""
    protected = b64encode(json.dumps(header).encode())
    sealed = AESGCM(material).encrypt(iv, plaintext, protected.encode())
    ciphertext, tag = sealed[:-16], sealed[-16:][:tag_bytes]
    parts = [protected, b64encode(encrypted_key), b64encode(iv), b64encode(ciphertext)]
    return ".".join([*parts, b64encode(tag)])


def _respellings(value: str) -> list[str]:
    """Other spellings of each part: padded, standard alphabet, whitespace, odd last bits."""
    parts = value.split(".")
    spelled: list[str] = []
    for index, part in enumerate(parts):
        if not part:
            continue
        variants = [
            part + "=" * (-len(part) % 4),
            part + "==",
            part.replace("-", "+").replace("_", "/"),
            part[:4] + "\n" + part[4:],
            part[:4] + " " + part[4:],
            part[:4] + "\r\n\r\n" + part[4:],  # four characters: the length stays right
            part[:4] + "    " + part[4:],
            part[:4] + "!*,$" + part[4:],
            part[:4] + "é" + part[4:],
            part[:4] + "\x00" + part[4:],
            part + "A",
            part[:-1],
        ]
        if len(part) % 4 in (2, 3):  # a last character with unused bits: set one of them
            last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            position = last.index(part[-1])
            variants.append(part[:-1] + last[position | 1])
        spelled += [".".join([*parts[:index], v, *parts[index + 1 :]]) for v in variants]
    return spelled


@pytest.fixture
def keyring() -> Keyring:
    return Keyring([SECRET, OLD_SECRET])


def _corpus(keyring: Keyring, clock: FakeClock) -> tuple[list[str], list[str]]:
    """(values both readers must agree on, valid values only the direct reader refuses)."""
    new, old = keyring.keys(SESSION)
    sealer = Sealer(keyring, SESSION, clock)
    now = int(clock())
    good = {"iat": now, "exp": now + 600, "jwt": {"user": {"id": "1", "name": "Zoë"}}}
    plaintext = json.dumps(good).encode()
    header = {"alg": "dir", "enc": "A256GCM", "kid": new.kid}
    ours = sealer.seal({"sub": "ada", "claims": [1, 2.5, None, True, "\u2603"]}, 600)
    by_hand = _hand_seal(new.material, header, plaintext)
    by_old_key = _hand_seal(old.material, {**header, "kid": old.kid}, plaintext)
    joserfc_made = jwe.encrypt_compact(header, plaintext, OctKey.import_key(new.material))
    old_header = {**header, "kid": old.kid}
    joserfc_old = jwe.encrypt_compact(old_header, plaintext, OctKey.import_key(old.material))
    foreign_key = Keyring(OTHER_SECRET).keys(SESSION)[0].material

    def body(**changes: Any) -> bytes:
        return json.dumps({**good, **changes}).encode()

    agreed = [
        ours,
        by_hand,
        by_old_key,
        joserfc_made,
        joserfc_old,
        Sealer(Keyring(OLD_SECRET), SESSION, clock).seal({}, 600),
        sealer.seal({}, 600),
        sealer.seal({"exp": now}, 600),  # ends now: expired
        sealer.seal({"exp": now + 1}, 600),
        _hand_seal(new.material, {**header, "kid": old.kid}, plaintext),  # kid of another key
        _hand_seal(foreign_key, header, plaintext),
        _hand_seal(new.material, {**header, "kid": "unknown"}, plaintext),
        _hand_seal(new.material, {**header, "kid": [new.kid]}, plaintext),
        _hand_seal(new.material, {**header, "alg": "A256KW"}, plaintext),
        _hand_seal(new.material, {**header, "enc": "A128GCM"}, plaintext),
        _hand_seal(new.material, {"alg": "dir", "enc": "A256GCM"}, plaintext),  # no kid
        _hand_seal(new.material, [header], plaintext),
        _hand_seal(new.material, {**header, "x-extra": 1}, plaintext),  # joserfc: unregistered
        _hand_seal(new.material, header, plaintext, iv=b"\x07" * 16),
        _hand_seal(new.material, header, plaintext, iv=b"\x07" * 8),
        _hand_seal(new.material, header, plaintext, tag_bytes=12),
        _hand_seal(new.material, header, plaintext, tag_bytes=15),
        _hand_seal(new.material, header, plaintext, encrypted_key=b"\x01" * 32),
        _hand_seal(new.material, header, b""),
        _hand_seal(new.material, header, b"not json"),
        _hand_seal(new.material, header, b"[1, 2]"),
        _hand_seal(new.material, header, body(exp=str(now + 600))),
        _hand_seal(new.material, header, body(exp=now + 600.0)),
        _hand_seal(new.material, header, body(exp=True)),
        _hand_seal(new.material, header, body(exp=now - 1)),
        _hand_seal(new.material, header, json.dumps({"jwt": {}}).encode()),
        _hand_seal(new.material, header, body(claims={"lone": "\ud800", "nan": 1e400})),
        _hand_seal(new.material, header, body(deep=json.loads("[" * 300 + "]" * 300))),
    ]
    for value in (ours, by_hand):
        agreed += [value[:cut] for cut in range(0, len(value), 7)]
        agreed += [value + extra for extra in ("A", ".", "==", ".AAAA", "\n")]
        agreed += _respellings(value)
        parts = value.split(".")
        for index, part in enumerate(parts):
            raw = b64decode(part)
            for position in range(0, len(raw), 5):
                changed = bytearray(raw)
                changed[position] ^= 0x01
                forged = [*parts[:index], b64encode(bytes(changed)), *parts[index + 1 :]]
                agreed.append(".".join(forged))
        agreed.append(".".join([parts[0], "", parts[3], parts[2], parts[4]]))  # iv <-> ct
        # The same bytes, split elsewhere between ciphertext and tag.
        ciphertext, tag = b64decode(parts[3]), b64decode(parts[4])
        for moved in (1, 4):
            for split in (
                (ciphertext[:-moved], ciphertext[-moved:] + tag),
                (ciphertext + tag[:moved], tag[moved:]),
            ):
                agreed.append(".".join([*parts[:3], *(b64encode(p) for p in split)]))
        agreed.append(".".join([*parts, ""]))
        agreed.append(".".join(parts[:4]))
    stricter = [
        jwe.encrypt_compact({**header, "typ": "JWT"}, plaintext, OctKey.import_key(new.material)),
        _hand_seal(new.material, {**header, "cty": "json"}, plaintext),
    ]
    return agreed, stricter


def test_the_direct_reader_agrees_with_joserfc(keyring: Keyring, clock: FakeClock) -> None:
    sealer = Sealer(keyring, SESSION, clock)
    agreed, stricter = _corpus(keyring, clock)
    accepted = 0
    for value in dict.fromkeys(agreed):  # some respellings change nothing
        expected = _reference_unseal(keyring, clock, value)
        got = sealer.unseal(value)
        assert got == expected, value
        assert repr(got) == repr(expected), value  # same types, same key order
        accepted += got is not None
    # Ten are valid: ours, by hand, by joserfc and by us with the old key too, {}, exp
    # now + 1, the one with a lone surrogate and an infinity in its claims, the deep one.
    assert accepted == 10
    for value in stricter:
        assert _reference_unseal(keyring, clock, value) is not None
        assert sealer.unseal(value) is None


def test_values_sealed_here_are_read_by_joserfc(keyring: Keyring, clock: FakeClock) -> None:
    sealer = Sealer(keyring, SESSION, clock)
    payload = {"jwt": {"user": {"id": "1", "name": "Zoë"}}, "n": [1, 2.5, None]}
    value = sealer.seal(payload, 600)
    key = OctKey.import_key(keyring.keys(SESSION)[0].material)
    opened = jwe.decrypt_compact(value, key, algorithms=["dir", "A256GCM"])
    assert json.loads(opened.plaintext or b"") == sealer.unseal(value)
    assert opened.protected == {"alg": "dir", "enc": "A256GCM", "kid": keyring.keys(SESSION)[0].kid}


def test_values_sealed_by_joserfc_or_by_hand_are_read_here(
    keyring: Keyring, clock: FakeClock
) -> None:
    sealer = Sealer(keyring, SESSION, clock)
    for key in keyring.keys(SESSION):  # the current key and the rotated one
        body = {"iat": int(clock()), "exp": int(clock()) + 60, "jwt": {"n": key.kid}}
        header = {"alg": "dir", "enc": "A256GCM", "kid": key.kid}
        plaintext = json.dumps(body).encode()
        made = jwe.encrypt_compact(header, plaintext, OctKey.import_key(key.material))
        assert sealer.unseal(made) == body
        assert sealer.unseal(_hand_seal(key.material, header, plaintext)) == body


def test_a_decryption_failure_is_logged_without_the_value(
    sealer: Sealer, caplog: pytest.LogCaptureFixture
) -> None:
    value = sealer.seal({"sub": "ada"}, 600)
    parts = value.split(".")
    changed = bytearray(b64decode(parts[3]))
    changed[0] ^= 0x01
    forged = ".".join([*parts[:3], b64encode(bytes(changed)), parts[4]])
    with caplog.at_level(logging.INFO, logger="keyturn.web"):
        assert sealer.unseal(forged) is None
    assert [r.getMessage() for r in caplog.records] == [
        "a keyturn.session-token cookie failed to decrypt; treated as absent"
    ]
    assert parts[3] not in caplog.text


# == the JSON parser ==========================================================================


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1, 2.5, None, True, False], "c": {"z": 1, "a": 2}},
        {"floats": [0.1, 1 / 3, 1e308, 5e-324, -0.0, 1e-7, 123456789.123456789]},
        {"special": [float("inf"), float("-inf")]},
        {"ints": [2**63 - 1, -(2**63), 2**64, -(2**70), 10**40]},
        {"text": ["Zoë", "\u2603", "\U0001f600", "\x00", "\\", '"', "\ud83d\ude00"]},
        {"lone": "\ud800"},  # pydantic-core refuses it; json reads it
        {"deep": json.loads("[" * 400 + "]" * 400)},  # past pydantic-core's depth
        {"dup": 1, "order": {"b": 1, "a": 2, "c": {"y": 1, "x": 2}}},
        [1, "two"],
        "text",
        42,
        None,
    ],
)
def test_parse_json_equals_json_loads(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, separators=(",", ":"))):
        parsed = _parse_json(text.encode())
        assert repr(parsed) == repr(json.loads(text))
        assert json.dumps(parsed) == text or json.dumps(parsed, separators=(",", ":")) == text


def test_parse_json_equals_json_loads_for_nan() -> None:
    parsed = _parse_json(b'{"v": NaN}')
    assert math.isnan(parsed["v"]) and list(parsed) == ["v"]


@pytest.mark.parametrize("text", [b"", b"{", b"nope", b'{"a": 1} x', b"\xff\xfe", b'{"a": }'])
def test_parse_json_refuses_what_json_loads_refuses(text: bytes) -> None:
    def refuses(parse: Callable[[bytes], Any]) -> bool:
        try:
            parse(text)
        except ValueError:
            return True
        return False

    assert refuses(json.loads) and refuses(_parse_json)


def test_parse_json_keeps_no_token_in_the_string_cache() -> None:
    token = "tok-" + "".join(random.Random(5).choices(string.ascii_letters, k=20))
    pydantic_core.from_json(b'"warm"', cache_strings="all")  # the cache exists either way
    parsed = _parse_json(json.dumps({"access_token": token}).encode())
    assert parsed == {"access_token": token}
    # A string pydantic-core caches comes back as the very same object on the next parse.
    again = _parse_json(json.dumps({"access_token": token}).encode())
    assert again["access_token"] is not parsed["access_token"]


def test_the_headers_seal_writes_are_known_without_parsing(
    keyring: Keyring, clock: FakeClock
) -> None:
    sealer = Sealer(keyring, SESSION, clock)
    known = sealer._sealed_headers
    old = Sealer(Keyring(OLD_SECRET), SESSION, clock)
    written = [sealer.seal({}, 60).split(".")[0], old.seal({}, 60).split(".")[0]]
    assert sorted(known) == sorted(written)
    for header, cipher in known.items():
        assert sealer._parse_header(header) is cipher
        assert json.loads(b64decode(header)).keys() == {"alg", "enc", "kid"}
    # The same header spelled another way is still read, by parsing it.
    respelled = b64encode(json.dumps(json.loads(b64decode(written[0])), indent=1).encode())
    assert respelled not in known
    assert sealer._cipher_for(respelled) is known[written[0]]
