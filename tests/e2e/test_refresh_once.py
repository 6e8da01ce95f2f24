"""Refresh once, under stress, against the emulator's strict profile on loopback.

The strict profile rotates refresh tokens and detects reuse: a refresh token presented after
it was rotated revokes the whole token family. So a second refresh of the same token is not
a harmless waste here, it signs the user out; and a refresh token kept by mistake after its
rotation is a lost session. Each test counts what reached the emulator:

* many tasks, threads or processes asking at once for one expired token send exactly one
  refresh request, revoke nothing, and all get the same new access token;
* over a long run with injected 503s and dropped connections, every failure is classified
  transient, the stored refresh token is after every cycle one the emulator still accepts,
  and the numbers seen by the client and counted by the emulator agree;
* when the provider processes a refresh and its answer is lost on the way back, every caller
  waiting on that refresh sees one transient network error; the client still holds the
  refresh token the provider has just spent, so at the strict profile the next refresh
  presents it, the grant is revoked, and the failure is recorded as permanent, once, with no
  request after it. Nothing on the client side can avoid that: the new tokens existed only
  in the lost answer (see the token manager's module docstring). At a provider that keeps
  its refresh token (the google profile), a lost answer costs nothing.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

import keyturn
from keyturn.stores import AsyncTokenManager, SQLiteTokenStore, StoredTokens, TokenManager
from keyturn_emulator import Emulator
from tests.conftest import START, FakeClock

from ._refresh_worker import WAIT, refresh_in_child

pytestmark = pytest.mark.slow

T = TypeVar("T")

KEY = "user-stress"
REDIRECT = "http://127.0.0.1:9/callback"
#: An expiry long past on any clock the tests use: the access token is due at once.
EXPIRED = 1_000_000_000
#: Seconds the emulator holds every provider request, so that concurrent callers overlap.
LATENCY = 0.2
TASKS = 1000
THREADS = 64
CYCLES = 2000
LIFETIME = 3600
SEED = 20_261_127


# -- helpers ------------------------------------------------------------------------------


def secret(value: Any) -> str:
    """The clear text of a ``SecretStr``."""
    assert value is not None
    text: str = value.get_secret_value()
    return text


def credentials(emu: Emulator) -> tuple[str, str]:
    """The emulator's client credentials as plain text (for a child process)."""
    return emu.credentials.client_id, secret(emu.credentials.client_secret)


def sync_client(emu: Emulator, **options: Any) -> keyturn.Keyturn:
    return keyturn.Keyturn(
        {"strict": emu.credentials}, providers=[emu.spec("strict")], environ={}, **options
    )


def async_client(emu: Emulator, **options: Any) -> keyturn.AsyncKeyturn:
    return keyturn.AsyncKeyturn(
        {"strict": emu.credentials}, providers=[emu.spec("strict")], environ={}, **options
    )


def expired_session(emu: Emulator, **options: Any) -> keyturn.JWT:
    """Sign in at the strict profile, then age the access token: the JWT a stale cookie holds.

    The emulator's counters are zeroed afterwards and its latency switched on, so that
    everything counted is what the test itself sends. ``options`` go to the client (a
    ``clock`` that agrees with the emulator's: the client checks the ID token's times).
    """
    with sync_client(emu, **options) as kt:
        request = kt.authorize_url("strict", REDIRECT)
        signed_in = kt.sign_in(request, emu.authorize(request.url), fetch_profile=False)
    assert signed_in.tokens.refresh_token is not None
    emu.configure(latency=LATENCY)
    emu.reset_counters()
    aged = signed_in.tokens.model_copy(update={"expires_at": EXPIRED})
    return signed_in.model_copy(update={"tokens": aged})


def accepted(emu: Emulator, refresh_token: str, profile: str = "strict") -> bool:
    """Whether the emulator would still refresh with ``refresh_token`` (active, grant live)."""
    found = emu.store.lookup(profile, refresh_token)
    return found is not None and found[0].kind == "refresh"


def assert_refreshed_once(emu: Emulator, old: keyturn.TokenSet, new: set[str]) -> None:
    """One refresh request reached the emulator and succeeded; nothing was revoked."""
    counters = emu.counters("strict")
    assert counters["token_requests"] == 1
    assert counters["refresh_token"] == 1
    assert counters["reuse_detected"] == 0
    assert counters["family_revoked"] == 0
    assert counters["grants_revoked"] == 0
    assert counters["errors"] == 0
    assert len(new) == 1, "callers received different access tokens"
    assert new != {secret(old.access_token)}


def assert_rotated_and_accepted(emu: Emulator, old: keyturn.TokenSet, refresh: str) -> None:
    """The refresh token now held is a new one and the emulator accepts it; the old is spent."""
    assert refresh != secret(old.refresh_token)
    assert accepted(emu, refresh)
    assert not accepted(emu, secret(old.refresh_token))


def succeeded(results: Sequence[T | BaseException]) -> list[T]:
    """``results`` of ``gather(..., return_exceptions=True)``, once none of them is an error.

    Collecting every outcome first means a failing caller does not leave the others running
    while the client closes under them, and the message names what failed (never a token).
    """
    errors = [result for result in results if isinstance(result, BaseException)]
    kinds = sorted({type(error).__name__ for error in errors})
    assert not errors, f"{len(errors)} of {len(results)} callers failed: {kinds}"
    return [result for result in results if not isinstance(result, BaseException)]


def in_threads(count: int, work: Callable[[], T]) -> list[T]:
    """Run ``work`` in ``count`` threads released together by a barrier; their results."""
    start = threading.Barrier(count)

    def run() -> T:
        start.wait(WAIT)
        return work()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(run) for _ in range(count)]
        return [future.result() for future in futures]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(access_token_lifetime=LIFETIME) as emulator:
        yield emulator


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "tokens.db"


# -- 1. a thousand tasks, one AsyncKeyturn ------------------------------------------------


@pytest.mark.parametrize("window", [30.0, 0.0], ids=["reuse-window", "no-reuse-window"])
async def test_a_thousand_tasks_refresh_one_expired_token_once(
    emu: Emulator, window: float
) -> None:
    # With no reuse window nothing is cached: one request proves that every task joined
    # the call in flight.
    old = expired_session(emu).tokens
    async with async_client(emu, refresh_reuse_window=window) as akt:
        results = succeeded(
            await asyncio.gather(*(akt.refresh(old) for _ in range(TASKS)), return_exceptions=True)
        )
        assert akt.single_flight.stats().in_flight == 0
    assert len(results) == TASKS
    assert_refreshed_once(emu, old, {secret(tokens.access_token) for tokens in results})
    refresh_tokens = {secret(tokens.refresh_token) for tokens in results}
    assert len(refresh_tokens) == 1
    assert_rotated_and_accepted(emu, old, refresh_tokens.pop())


async def test_a_thousand_tasks_through_jwt_refresh_once(emu: Emulator) -> None:
    stale = expired_session(emu)
    # No reuse window here either: every request that carries the stale cookie must join
    # the one refresh in flight.
    async with async_client(emu, refresh_reuse_window=0) as akt:
        tokens = succeeded(
            await asyncio.gather(*(akt.jwt(stale) for _ in range(TASKS)), return_exceptions=True)
        )
        sessions = [akt.session(token) for token in tokens]
    assert all(token.error is None and token.refresh_failure is None for token in tokens)
    assert all(session.error is None for session in sessions)
    assert_refreshed_once(emu, stale.tokens, {secret(s.access_token) for s in sessions})
    assert {secret(token.tokens.access_token) for token in tokens} == {
        secret(s.access_token) for s in sessions
    }
    refresh_tokens = {secret(token.tokens.refresh_token) for token in tokens}
    assert len(refresh_tokens) == 1
    assert_rotated_and_accepted(emu, stale.tokens, refresh_tokens.pop())


async def test_a_thousand_tasks_through_the_async_token_manager_refresh_once(
    emu: Emulator, db: Path
) -> None:
    old = expired_session(emu).tokens
    with SQLiteTokenStore(db) as store:
        async with async_client(emu) as akt:
            manager = AsyncTokenManager(akt, store)
            await manager.save(KEY, old)
            access = succeeded(
                await asyncio.gather(
                    *(manager.get_access_token(KEY) for _ in range(TASKS)), return_exceptions=True
                )
            )
        row = store.load(KEY)
    assert len(access) == TASKS
    assert_refreshed_once(emu, old, set(access))
    assert row is not None
    assert (row.version, row.failure) == (2, None)
    assert secret(row.tokens.access_token) == access[0]
    assert_rotated_and_accepted(emu, old, secret(row.tokens.refresh_token))


# -- 2. sixty-four threads, one Keyturn ---------------------------------------------------


def test_sixty_four_threads_refresh_one_expired_token_once(emu: Emulator) -> None:
    old = expired_session(emu).tokens
    with sync_client(emu) as kt:
        results = in_threads(THREADS, lambda: kt.refresh(old))
    assert len(results) == THREADS
    assert_refreshed_once(emu, old, {secret(tokens.access_token) for tokens in results})
    refresh_tokens = {secret(tokens.refresh_token) for tokens in results}
    assert len(refresh_tokens) == 1
    assert_rotated_and_accepted(emu, old, refresh_tokens.pop())


def test_sixty_four_threads_through_jwt_refresh_once(emu: Emulator) -> None:
    stale = expired_session(emu)
    with sync_client(emu) as kt:
        tokens = in_threads(THREADS, lambda: kt.jwt(stale))
    assert all(token.error is None and token.refresh_failure is None for token in tokens)
    assert_refreshed_once(emu, stale.tokens, {secret(t.tokens.access_token) for t in tokens})
    assert_rotated_and_accepted(emu, stale.tokens, secret(tokens[0].tokens.refresh_token))


def test_sixty_four_threads_through_the_token_manager_refresh_once(emu: Emulator, db: Path) -> None:
    old = expired_session(emu).tokens
    with SQLiteTokenStore(db) as store, sync_client(emu) as kt:
        manager = TokenManager(kt, store)
        manager.save(KEY, old)
        access = in_threads(THREADS, lambda: manager.get_access_token(KEY))
        row = store.load(KEY)
    assert len(access) == THREADS
    assert_refreshed_once(emu, old, set(access))
    assert row is not None
    assert (row.version, row.failure) == (2, None)
    assert secret(row.tokens.access_token) == access[0]
    assert_rotated_and_accepted(emu, old, secret(row.tokens.refresh_token))


# -- 3. two processes, one SQLite file ----------------------------------------------------


def test_two_processes_sharing_one_store_refresh_once(emu: Emulator, db: Path) -> None:
    old = expired_session(emu).tokens
    emu.configure(latency=0.5)  # the first process's request is held while the second waits
    with SQLiteTokenStore(db) as store:
        store.save(KEY, old)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    spec = emu.spec("strict").model_dump(mode="json")
    children = [
        context.Process(
            target=refresh_in_child,
            args=(str(db), KEY, spec, credentials(emu), start, results),
        )
        for _ in range(2)
    ]
    for child in children:
        child.start()
    try:
        outcomes = [results.get(timeout=WAIT) for _ in children]
    except queue.Empty:
        outcomes = []
    finally:
        for child in children:
            child.join(WAIT)
            if child.is_alive():
                child.kill()
                child.join()
        results.close()
        results.join_thread()
    assert [child.exitcode for child in children] == [0, 0]
    # Only the failures are shown: an "ok" outcome carries an access token.
    failed = [outcome for outcome in outcomes if outcome[0] != "ok"]
    assert len(outcomes) == 2
    assert not failed, failed
    assert_refreshed_once(emu, old, {outcome[1] for outcome in outcomes})
    with SQLiteTokenStore(db) as store:
        row = store.load(KEY)
    assert row is not None
    assert (row.version, row.failure) == (2, None)
    assert secret(row.tokens.access_token) == outcomes[0][1]
    assert_rotated_and_accepted(emu, old, secret(row.tokens.refresh_token))


# -- 4. a faulty network over many refresh cycles -----------------------------------------


def check_cycle(
    emu: Emulator,
    before: StoredTokens,
    after: StoredTokens | None,
    outcome: str | keyturn.ProviderError,
) -> None:
    """What one refresh cycle must leave behind, whichever way it went."""
    assert after is not None
    refresh = secret(after.tokens.refresh_token)
    assert accepted(emu, refresh), "the stored refresh token is no longer accepted"
    assert after.version == before.version + 1
    if isinstance(outcome, keyturn.ProviderError):
        # Nothing replaced: the same tokens, with the failure recorded next to them.
        assert after.tokens == before.tokens
        assert after.failure is not None
        assert (after.failure.error, after.failure.permanent) == (outcome.error, False)
    else:
        assert after.failure is None
        assert secret(after.tokens.access_token) == outcome
        assert outcome != secret(before.tokens.access_token)
        assert refresh != secret(before.tokens.refresh_token)


def test_faults_and_drops_over_two_thousand_cycles_lose_no_refresh_token(db: Path) -> None:
    # The client's clock jumps an hour a cycle; the emulator shares it, so that the ID token
    # each refresh returns is as fresh on the client's clock as a real provider's would be.
    clock = FakeClock(START)
    with Emulator(access_token_lifetime=LIFETIME, clock=clock) as emu:
        faults_and_drops_over_many_cycles(emu, db, clock)


def faults_and_drops_over_many_cycles(emu: Emulator, db: Path, clock: FakeClock) -> None:
    stale = expired_session(emu, clock=clock).tokens
    emu.configure(latency=0.0)
    successes = 0
    failures: list[keyturn.ProviderError] = []
    with SQLiteTokenStore(db) as store, sync_client(emu, clock=clock) as kt:
        manager = TokenManager(kt, store)
        manager.save(KEY, stale)
        emu.configure(fault_rate=0.05, drop_rate=0.05, seed=SEED)
        for _ in range(CYCLES):
            before = store.load(KEY)
            assert before is not None
            # Past the access token's end (not only inside the leeway): a failed refresh
            # then raises instead of handing out the current token, so every failure is seen.
            clock.advance(LIFETIME)
            outcome: str | keyturn.ProviderError
            try:
                outcome = manager.get_access_token(KEY)
            except keyturn.ProviderError as exc:
                outcome = exc
                failures.append(exc)
            else:
                successes += 1
            check_cycle(emu, before, store.load(KEY), outcome)
        counters = emu.counters("strict")

        # The refresh token that survived all that still works.
        emu.configure(fault_rate=0.0, drop_rate=0.0)
        clock.advance(LIFETIME)
        last = store.load(KEY)
        assert last is not None
        final = manager.get_access_token(KEY)
        check_cycle(emu, last, store.load(KEY), final)

    unavailable = [e for e in failures if isinstance(e, keyturn.InvalidResponseError)]
    dropped = [e for e in failures if isinstance(e, keyturn.TransportError)]
    assert successes + len(failures) == CYCLES
    assert all(not failure.permanent for failure in failures)
    assert len(unavailable) + len(dropped) == len(failures), "a failure of another kind"
    assert all(failure.status == 503 for failure in unavailable)
    assert all(failure.status is None for failure in dropped)
    # Both kinds of fault happened, and each was seen exactly once by the client.
    assert unavailable
    assert dropped
    assert counters["token_requests"] == CYCLES
    assert counters["fault_5xx"] == len(unavailable)
    assert counters["dropped"] == len(dropped)
    assert counters["fault_5xx"] + counters["dropped"] == len(failures)
    assert counters["refresh_token"] == successes
    assert counters["reuse_detected"] == 0
    assert counters["family_revoked"] == 0
    after = emu.counters("strict")
    assert after["refresh_token"] == successes + 1
    assert after["family_revoked"] == 0
    assert after["grants_revoked"] == 0


# -- 5. the provider rotated, the answer was lost -----------------------------------------


def test_an_answer_lost_after_rotation_fails_every_caller_once_then_ends_the_strict_grant(
    emu: Emulator, db: Path
) -> None:
    old = expired_session(emu).tokens
    with SQLiteTokenStore(db) as store, sync_client(emu) as kt:
        manager = TokenManager(kt, store)
        manager.save(KEY, old)
        emu.configure(lost_answer_rate=1.0)

        def ask() -> BaseException | str:
            try:
                return manager.get_access_token(KEY)
            except keyturn.KeyturnError as exc:
                return exc

        lost = in_threads(THREADS, ask)
        counters = emu.counters("strict")
        row = store.load(KEY)
        # One refresh went out and was processed: the provider rotated, nobody heard back.
        assert (counters["token_requests"], counters["refresh_token"]) == (1, 1)
        assert counters["lost_answers"] == 1
        assert not accepted(emu, secret(old.refresh_token))
        assert all(isinstance(outcome, keyturn.TransportError) for outcome in lost)
        assert not any(o.permanent for o in lost if isinstance(o, keyturn.TransportError))
        # The row keeps the tokens it had, the failure recorded as transient.
        assert row is not None and row.tokens == old
        assert row.failure is not None
        assert (row.failure.error, row.failure.permanent) == ("network_error", False)

        # The network is back. The next refresh can only present the spent token.
        emu.configure(lost_answer_rate=0.0)
        after = in_threads(THREADS, ask)
        counters = emu.counters("strict")
        assert counters["token_requests"] == 2
        assert (counters["reuse_detected"], counters["family_revoked"]) == (1, 1)
        assert all(isinstance(outcome, keyturn.ProviderError) for outcome in after)
        errors = {(o.error, o.permanent) for o in after if isinstance(o, keyturn.ProviderError)}
        assert errors == {("invalid_grant", True)}
        row = store.load(KEY)
        assert row is not None and row.tokens == old
        assert row.failure is not None and row.failure.permanent
        assert row.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR

        # Recorded: later callers get the failure without a request, until a new sign-in.
        with pytest.raises(keyturn.ProviderError) as again:
            manager.get_access_token(KEY)
        assert again.value.permanent
        assert emu.counters("strict")["token_requests"] == 2


async def test_an_answer_lost_after_rotation_reaches_every_task_through_jwt_as_transient(
    emu: Emulator,
) -> None:
    stale = expired_session(emu)
    emu.configure(lost_answer_rate=1.0)
    async with async_client(emu, refresh_reuse_window=0) as akt:
        tokens = succeeded(
            await asyncio.gather(*(akt.jwt(stale) for _ in range(TASKS)), return_exceptions=True)
        )
        assert emu.counters("strict")["token_requests"] == 1
        assert all(token.error is None for token in tokens)
        assert {token.refresh_failure.error for token in tokens if token.refresh_failure} == {
            "network_error"
        }
        assert all(token.refresh_failure is not None for token in tokens)
        assert all(token.tokens == stale.tokens for token in tokens)

        emu.configure(lost_answer_rate=0.0)
        ended = await akt.jwt(tokens[0])
        assert ended.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
        assert ended.refresh_failure is not None
        assert (ended.refresh_failure.error, ended.refresh_failure.permanent) == (
            "invalid_grant",
            True,
        )
        assert akt.session(ended).error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
        # The session stays ended without another request.
        assert (await akt.jwt(ended)).error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    counters = emu.counters("strict")
    assert (counters["token_requests"], counters["refresh_token"]) == (2, 1)
    assert (counters["lost_answers"], counters["reuse_detected"], counters["family_revoked"]) == (
        1,
        1,
        1,
    )


def test_lost_answers_cost_nothing_at_a_provider_that_keeps_its_refresh_token(db: Path) -> None:
    # The emulator shares the client's clock, which jumps an hour a cycle: the ID token of
    # each refresh is then as fresh on the client's clock as a real provider's would be.
    clock = FakeClock(START)
    with Emulator(access_token_lifetime=LIFETIME, clock=clock) as emu:
        lost_answers_at_google(emu, db, clock)


def lost_answers_at_google(emu: Emulator, db: Path, clock: FakeClock) -> None:
    spec = emu.spec("google")
    with keyturn.Keyturn(
        {"google": emu.credentials}, providers=[spec], environ={}, clock=clock
    ) as kt:
        request = kt.authorize_url("google", REDIRECT)
        first = kt.sign_in(request, emu.authorize(request.url), fetch_profile=False).tokens
        refresh = secret(first.refresh_token)
        emu.reset_counters()
        cycles = CYCLES // 4
        lost: list[keyturn.ProviderError] = []
        with SQLiteTokenStore(db) as store:
            manager = TokenManager(kt, store)
            manager.save(KEY, first)
            emu.configure(lost_answer_rate=0.1, seed=SEED)
            for _ in range(cycles):
                clock.advance(LIFETIME)
                try:
                    manager.get_access_token(KEY)
                except keyturn.ProviderError as exc:
                    lost.append(exc)
                row = store.load(KEY)
                assert row is not None
                assert secret(row.tokens.refresh_token) == refresh
                assert accepted(emu, refresh, "google")
    counters = emu.counters("google")
    assert lost, "no answer was lost"
    assert all(isinstance(e, keyturn.TransportError) and not e.permanent for e in lost)
    assert counters["token_requests"] == cycles
    assert counters["lost_answers"] == len(lost)
    # Every request was processed, lost or not; nothing was refused.
    assert counters["refresh_token"] == cycles
    assert counters["errors"] == 0
