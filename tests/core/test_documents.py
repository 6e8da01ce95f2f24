"""Discovery documents and key sets: cached on the client's clock, shared, fetched once.

Lifetimes default to an hour (discovery) and ten minutes (key sets), follow Cache-Control
within bounds, and never cover a failure. Concurrent first callers make one request, a thousand
of them included, with tasks and with threads. A stale copy stands in while the provider is
unreachable. An unknown ``kid`` fetches the key set again at most once per cooldown, however
many tokens carry one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import httpx
import pytest

import keyturn
from keyturn.discovery import DISCOVERY, parse_metadata
from keyturn.documents import (
    MAX_TTL,
    MIN_TTL,
    STALE_IF_ERROR,
    DocumentCache,
    Documents,
    MemoryDocumentCache,
    lifetime,
)
from keyturn.effects import arun, run
from keyturn.idtoken import IdTokenError, UnknownSigningKeyError
from keyturn.jwks import REFETCH_COOLDOWN
from tests.conftest import FakeClock

from ._oidc import (
    CREDENTIALS,
    DISCOVERY_URL,
    JWKS_URI,
    REDIRECT,
    SPEC,
    TOKEN,
    Provider,
    public_jwk,
    rsa_key,
)
from .test_discovery import async_client, resolve, sync_client


def key_set(kt: Any) -> Any:
    spec = resolve(kt)
    return run(kt.key_sets.get_op("op", spec.jwks_uri), kt.http_client)


# -- lifetimes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 600.0),
        ("public, max-age=3600, must-revalidate", 3600.0),
        ("max-age=5", MIN_TTL),
        ("max-age=999999999", MAX_TTL),
        ('max-age="120"', 120.0),
        ("no-store", None),
        ("no-cache", None),
        ("private, max-age=0", None),
        ("max-age=soon", 600.0),
        ("no-cache, no-store, max-age=0, must-revalidate", None),
    ],
)
def test_the_lifetime_follows_cache_control_within_bounds(
    header: str | None, expected: float | None
) -> None:
    headers = {} if header is None else {"cache-control": header}
    assert lifetime(headers, 600.0) == expected


def test_a_discovery_document_is_kept_an_hour_and_a_key_set_ten_minutes(clock: FakeClock) -> None:
    op = Provider()
    with sync_client(op, clock) as kt:
        key_set(kt)
        clock.advance(599)
        key_set(kt)
        assert (op.count(DISCOVERY_URL), op.count(JWKS_URI)) == (1, 1)
        clock.advance(2)
        key_set(kt)
        assert (op.count(DISCOVERY_URL), op.count(JWKS_URI)) == (1, 2)
        clock.advance(3000)
        key_set(kt)
        assert (op.count(DISCOVERY_URL), op.count(JWKS_URI)) == (2, 3)


def test_max_age_replaces_the_default(clock: FakeClock) -> None:
    op = Provider()
    op.headers[DISCOVERY_URL] = {"cache-control": "public, max-age=120"}
    with sync_client(op, clock) as kt:
        resolve(kt)
        clock.advance(119)
        resolve(kt)
        assert op.count(DISCOVERY_URL) == 1
        clock.advance(1)
        resolve(kt)
        assert op.count(DISCOVERY_URL) == 2


@pytest.mark.parametrize("header", ["no-store", "no-cache", "max-age=0"])
def test_a_document_not_to_be_kept_is_fetched_by_every_call(clock: FakeClock, header: str) -> None:
    op = Provider()
    op.headers[DISCOVERY_URL] = {"cache-control": header}
    with sync_client(op, clock) as kt:
        first = resolve(kt)
        second = resolve(kt)
        assert first == second
        assert kt.documents.cache.get(DISCOVERY_URL) is None
    assert op.count(DISCOVERY_URL) == 2


async def test_a_document_not_to_be_kept_is_still_fetched_once_for_concurrent_callers(
    clock: FakeClock,
) -> None:
    op = Provider()
    op.hold = 0.05
    op.headers[DISCOVERY_URL] = {"cache-control": "no-store"}
    async with async_client(op, clock) as akt:
        specs = await asyncio.gather(
            *(arun(akt.resolve_op("op"), akt.http_client) for _ in range(50))
        )
    assert len({spec.token_endpoint for spec in specs}) == 1
    assert op.count(DISCOVERY_URL) == 1


def test_a_cached_document_reads_as_the_fetched_one(clock: FakeClock) -> None:
    """The shortcut (a parsed value kept per text) gives what parsing the text gives."""
    op = Provider()
    with sync_client(op, clock) as kt:
        fetched = run(
            kt.documents.get_op(DISCOVERY_URL, DISCOVERY, "op", parse_metadata), kt.http_client
        )
        assert fetched.fetched
        cached = run(
            kt.documents.get_op(DISCOVERY_URL, DISCOVERY, "op", parse_metadata), kt.http_client
        )
        assert not cached.fetched and cached.value is fetched.value
        assert cached.text == fetched.text and cached.expires_at == fetched.expires_at
        slow = parse_metadata(op.discovery)
        assert cached.value == slow and cached.value.model_dump() == slow.model_dump()
        # Another client reading the same text from a shared cache parses it itself: equal.
        other = Documents(kt.documents.cache, clock)
        shared = run(other.get_op(DISCOVERY_URL, DISCOVERY, "op", parse_metadata), kt.http_client)
        assert shared.value == slow and shared.value is not fetched.value


# -- failures and stale copies ---------------------------------------------------------------


def test_a_stale_document_stands_in_while_the_provider_is_unreachable(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    op = Provider()
    with sync_client(op, clock) as kt:
        first = resolve(kt)
        clock.advance(3601)
        op.fail[DISCOVERY_URL] = [httpx.ConnectError("down"), 503]
        with caplog.at_level(logging.WARNING, logger="keyturn"):
            assert resolve(kt) == first
            assert resolve(kt) == first
        assert "using the copy that expired" in caplog.text
        assert resolve(kt) == first  # the provider is back: fetched and kept again
        assert op.count(DISCOVERY_URL) == 4
        clock.advance(60)
        resolve(kt)
        assert op.count(DISCOVERY_URL) == 4


def test_a_stale_document_stands_in_for_html_but_not_for_another_issuer(clock: FakeClock) -> None:
    op = Provider()
    with sync_client(op, clock) as kt:
        first = resolve(kt)
        clock.advance(3601)
        op.raw[DISCOVERY_URL] = (200, b"<html>maintenance</html>", "text/html")
        assert resolve(kt) == first
        del op.raw[DISCOVERY_URL]
        op.discovery["issuer"] = "https://evil.example"
        with pytest.raises(keyturn.ConfigurationError, match="issuer"):
            resolve(kt)


def test_a_document_too_long_expired_no_longer_stands_in(clock: FakeClock) -> None:
    op = Provider()
    with sync_client(op, clock) as kt:
        resolve(kt)
        clock.advance(3600 + STALE_IF_ERROR + 1)
        op.fail[DISCOVERY_URL] = [httpx.ConnectError("down")]
        with pytest.raises(keyturn.TransportError):
            resolve(kt)


def test_the_memory_cache_forgets_long_expired_documents_and_keeps_a_bound() -> None:
    cache = MemoryDocumentCache(max_entries=3)
    for name, expiry in (("a", 100.0), ("b", 200.0), ("c", 300.0), ("d", 400.0)):
        cache.put(name, name.upper(), expiry)
    assert cache.get("a") is None and cache.get("b") == ("B", 200.0)  # the bound
    cache.put("e", "E", 250.0 + STALE_IF_ERROR)
    assert cache.get("b") is None  # a day past its expiry
    assert cache.get("c") == ("C", 300.0) and cache.get("e") == ("E", 250.0 + STALE_IF_ERROR)
    cache.clear()
    assert cache.get("c") is None
    with pytest.raises(ValueError, match="max_entries"):
        MemoryDocumentCache(0)


# -- caches of the app's own -----------------------------------------------------------------


class DictCache:
    """A cache of the app's own: plain text and epoch expiry, as a store keeps them."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, float]] = {}
        self.threads: set[int] = set()

    def get(self, key: str) -> tuple[str, float] | None:
        self.threads.add(threading.get_ident())
        return self.entries.get(key)

    def put(self, key: str, text: str, expires_at: float) -> None:
        self.threads.add(threading.get_ident())
        self.entries[key] = (text, expires_at)


def test_clients_sharing_a_cache_fetch_once_between_them(clock: FakeClock) -> None:
    cache = DictCache()
    assert isinstance(cache, DocumentCache)
    op = Provider()
    with sync_client(op, clock, document_cache=cache) as one:
        first = key_set(one)
    with sync_client(op, clock, document_cache=cache) as two:
        second = key_set(two)
    assert (op.count(DISCOVERY_URL), op.count(JWKS_URI)) == (1, 1)
    assert set(cache.entries) == {DISCOVERY_URL, JWKS_URI}
    text, expires_at = cache.entries[JWKS_URI]
    assert isinstance(text, str) and expires_at == clock() + 600
    assert second.text == first.text and not second.fetched


async def test_an_async_client_reads_its_own_cache_off_the_event_loop(clock: FakeClock) -> None:
    cache = DictCache()
    op = Provider()
    async with async_client(op, clock, document_cache=cache) as akt:
        await akt.discover("op")
    assert cache.threads and threading.get_ident() not in cache.threads


class BrokenCache:
    def __init__(self, entry: Any = None) -> None:
        self.entry = entry

    def get(self, key: str) -> Any:
        if self.entry is None:
            raise OSError("the store is down")
        return self.entry

    def put(self, key: str, text: str, expires_at: float) -> None:
        raise OSError("the store is down")


@pytest.mark.parametrize(
    "cache",
    [BrokenCache(), BrokenCache(("text", "tomorrow")), BrokenCache(["x", 1.0])],
    ids=["raises", "bad-expiry", "not-a-tuple"],
)
def test_a_failing_cache_counts_as_empty(
    clock: FakeClock, cache: BrokenCache, caplog: pytest.LogCaptureFixture
) -> None:
    op = Provider()
    with (
        caplog.at_level(logging.WARNING, logger="keyturn"),
        sync_client(op, clock, document_cache=cache) as kt,
    ):
        assert resolve(kt).token_endpoint == TOKEN
        assert resolve(kt).token_endpoint == TOKEN
    assert op.count(DISCOVERY_URL) == 2
    assert "document cache" in caplog.text


def test_a_damaged_cached_document_is_fetched_again(clock: FakeClock) -> None:
    cache = DictCache()
    cache.entries[DISCOVERY_URL] = ("{not json", clock() + 3600)
    op = Provider()
    with sync_client(op, clock, document_cache=cache) as kt:
        assert resolve(kt).token_endpoint == TOKEN
    assert op.count(DISCOVERY_URL) == 1
    assert cache.entries[DISCOVERY_URL][0].startswith("{")


# -- a thousand first callers ----------------------------------------------------------------


async def test_a_thousand_concurrent_first_sign_ins_fetch_each_document_once(
    clock: FakeClock,
) -> None:
    op = Provider()
    op.hold = 0.05
    async with async_client(op, clock) as akt:

        async def sign_in(n: int) -> keyturn.JWT:
            request = await arun(akt.authorize_url_op("op", REDIRECT), akt.http_client)
            code = f"code-{n}"
            op.nonces[code] = request.nonce.get_secret_value()
            query = {"code": code, "state": request.state.get_secret_value()}
            token: keyturn.JWT = await akt.sign_in(request, query, fetch_profile=False)
            return token

        tokens = await asyncio.gather(*(sign_in(n) for n in range(1000)))
    assert len(tokens) == 1000 and all(token.tokens.id_token for token in tokens)
    assert op.count(DISCOVERY_URL) == 1
    assert op.count(JWKS_URI) == 1
    assert op.count(TOKEN) == 1000


def test_a_thousand_threads_signing_in_at_once_fetch_each_document_once(
    clock: FakeClock,
) -> None:
    op = Provider()
    op.hold = 0.05
    count = 1000
    start = threading.Barrier(count)
    results: list[Any] = []
    with sync_client(op, clock) as kt:

        def sign_in(n: int) -> None:
            start.wait()
            try:
                request = kt.authorize_url("op", REDIRECT)
                code = f"code-{n}"
                op.nonces[code] = request.nonce.get_secret_value()
                query = {"code": code, "state": request.state.get_secret_value()}
                results.append(kt.sign_in(request, query, fetch_profile=False))
            except Exception as exc:  # reported below
                results.append(exc)

        threads = [threading.Thread(target=sign_in, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    errors = [result for result in results if isinstance(result, Exception)]
    assert not errors, errors[:3]
    assert len(results) == count
    assert op.count(DISCOVERY_URL) == 1
    assert op.count(JWKS_URI) == 1


# -- unknown key ids -------------------------------------------------------------------------


def exchange(kt: keyturn.Keyturn, code: str = "c") -> keyturn.TokenSet:
    return kt.exchange_code("op", code, redirect_uri=REDIRECT)


def test_a_rotated_key_is_found_by_fetching_the_set_again(clock: FakeClock) -> None:
    op = Provider()
    with sync_client(op, clock) as kt:
        exchange(kt)
        # The provider rotates: a new key signs, the set lists both.
        new = rsa_key(1)
        op.signer = ("k2", new, "RS256")
        op.jwks = {"keys": [public_jwk(rsa_key(), "k1"), public_jwk(new, "k2")]}
        exchange(kt)
        assert op.count(JWKS_URI) == 2
        exchange(kt)  # the new set was kept
        assert op.count(JWKS_URI) == 2


def test_a_kid_the_set_just_fetched_lacks_is_not_fetched_again(clock: FakeClock) -> None:
    op = Provider(("nowhere", rsa_key(1), "RS256"))
    op.jwks = {"keys": [public_jwk(rsa_key(), "k1")]}
    with sync_client(op, clock) as kt, pytest.raises(UnknownSigningKeyError, match="kid"):
        exchange(kt)
    assert op.count(JWKS_URI) == 1


async def test_a_flood_of_unknown_kids_fetches_the_set_once_per_cooldown(
    clock: FakeClock,
) -> None:
    op = Provider()
    op.hold = 0.02
    async with async_client(op, clock) as akt:
        await akt.discover("op")
        assert op.count(JWKS_URI) == 1
        op.signer = ("unknown", rsa_key(1), "RS256")

        async def flood() -> list[Any]:
            return await asyncio.gather(
                *(akt.exchange_code("op", f"c{n}", redirect_uri=REDIRECT) for n in range(200)),
                return_exceptions=True,
            )

        outcomes = await flood()
        assert all(isinstance(outcome, UnknownSigningKeyError) for outcome in outcomes)
        assert op.count(JWKS_URI) == 2  # one refetch for the 200 tokens
        clock.advance(REFETCH_COOLDOWN - 1)
        await flood()
        assert op.count(JWKS_URI) == 2  # within the cooldown: none (the set is still fresh)
        clock.advance(1)
        await flood()
        assert op.count(JWKS_URI) == 3
        # Past the set's own lifetime the flood's callers share one ordinary fetch, and
        # nothing fetched a moment ago is fetched again.
        clock.advance(600)
        await flood()
        assert op.count(JWKS_URI) == 4


def test_threads_with_unknown_kids_share_one_refetch(clock: FakeClock) -> None:
    op = Provider()
    op.hold = 0.02
    with sync_client(op, clock) as kt:
        kt.discover("op")
        op.signer = ("unknown", rsa_key(1), "RS256")
        errors: list[Exception] = []
        start = threading.Barrier(50)

        def one(n: int) -> None:
            start.wait()
            try:
                exchange(kt, f"c{n}")
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(n,)) for n in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(errors) == 50 and all(isinstance(e, IdTokenError) for e in errors)
    assert op.count(JWKS_URI) == 2


def test_an_unreachable_key_set_is_transient_and_nothing_is_sent(clock: FakeClock) -> None:
    op = Provider()
    op.fail[JWKS_URI] = [httpx.ConnectTimeout("slow")]
    with sync_client(op, clock) as kt:
        with pytest.raises(keyturn.TransportError) as caught:
            exchange(kt)
        assert caught.value.error == "timeout" and caught.value.operation == "jwks"
        assert not caught.value.permanent
        assert op.count(TOKEN) == 0  # the code was not spent
        exchange(kt)
    assert op.count(JWKS_URI) == 2


def test_documents_are_fetched_with_the_client_of_the_caller(clock: FakeClock) -> None:
    """The credentials play no part in the documents' requests: no secret goes out."""
    seen: list[httpx.Request] = []
    op = Provider()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return op.handler(request)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with keyturn.Keyturn(
        CREDENTIALS, http_client=client, clock=clock, environ={}, providers=[SPEC]
    ) as kt:
        kt.discover("op")
    assert [str(r.url) for r in seen] == [DISCOVERY_URL, JWKS_URI]
    for request in seen:
        assert request.method == "GET" and "authorization" not in request.headers
        assert request.headers["accept"] == "application/json"


def test_the_parsed_copy_follows_the_text_and_stays_bounded(clock: FakeClock) -> None:
    """Each text is parsed once per URL; a new text is parsed anew, and past the bound the
    oldest URL's parse is dropped, never another URL's served."""
    documents = Documents(None, clock)
    calls: list[Any] = []

    def parse(data: Any) -> Any:
        calls.append(data)
        return dict(data)

    first = documents._value("u", '{"a": 1}', parse)
    assert documents._value("u", '{"a": 1}', parse) is first and len(calls) == 1
    assert documents._value("u", '{"a": 2}', parse) == {"a": 2} and len(calls) == 2
    for n in range(300):
        assert documents._value(f"u{n}", f'{{"n": {n}}}', parse) == {"n": n}
    assert len(documents._parsed) == 256
    assert documents._value("u0", '{"n": 0}', parse) == {"n": 0}


def test_a_changed_spec_is_resolved_again(clock: FakeClock) -> None:
    op = Provider()
    with sync_client(op, clock) as kt:
        first = run(kt.resolve_op(SPEC), kt.http_client)
        other = SPEC.model_copy(update={"default_scopes": ("openid",)})
        second = run(kt.resolve_op(other), kt.http_client)
        assert second.default_scopes == ("openid",) and first.default_scopes != ("openid",)
        assert second.token_endpoint == first.token_endpoint
        again = run(kt.resolve_op(SPEC), kt.http_client)
        assert again == first
    assert op.count(DISCOVERY_URL) == 1
