"""The I/O a web flow asks for, and the two drivers that perform it (blocking and async).

Web flows are generators, like the client's HTTP flows: they decide everything themselves
and ``yield`` an :class:`Op` whenever they need the provider or the token store. A driver
performs the op with a :class:`~keyturn.Keyturn` and a
:class:`~keyturn.stores.TokenManager` (or their async twins) and sends the result back in,
or throws the :class:`~keyturn.KeyturnError` it raised. So one set of flows serves Flask and
Django (blocking) and Starlette and FastAPI (async).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from keyturn.client import AsyncKeyturn, Keyturn
from keyturn.errors import ConfigurationError, KeyturnError
from keyturn.models import JWT, AuthorizationRequest, TokenSet
from keyturn.stores.base import StoredTokens
from keyturn.stores.manager import AsyncTokenManager, TokenManager

__all__ = ["AsyncOps", "Op", "SyncOps", "WebFlow", "adrive", "drive"]

T = TypeVar("T")

OpName = Literal["sign_in", "jwt", "revoke", "load", "save", "delete", "refresh"]


@dataclass(frozen=True)
class Op:
    """One operation for the driver: a method of :class:`SyncOps` / :class:`AsyncOps`."""

    name: OpName
    args: tuple[Any, ...] = ()


#: A web flow: yields ops, receives their results, returns its value.
WebFlow = Generator[Op, Any, T]


class SyncOps:
    """Performs ops with a blocking client and, for database sessions, a token manager."""

    def __init__(self, client: Keyturn, manager: TokenManager | None) -> None:
        self.client = client
        self.manager = manager

    def _tokens(self) -> TokenManager:
        if self.manager is None:
            raise ConfigurationError("this operation needs the database session strategy")
        return self.manager

    def sign_in(
        self, request: AuthorizationRequest, query: Mapping[str, str], fetch_profile: bool
    ) -> JWT:
        return self.client.sign_in(request, query, fetch_profile=fetch_profile)

    def jwt(self, token: JWT) -> JWT:
        return self.client.jwt(token)

    def revoke(self, tokens: TokenSet) -> None:
        self.client.revoke(tokens)

    def load(self, key: str) -> StoredTokens | None:
        return self._tokens().load(key)

    def save(self, key: str, tokens: TokenSet, data: Mapping[str, Any]) -> StoredTokens:
        return self._tokens().save(key, tokens, data=data)

    def delete(self, key: str) -> bool:
        return self._tokens().delete(key)

    def refresh(self, key: str) -> TokenSet:
        return self._tokens().get_tokens(key)


class AsyncOps:
    """Performs ops with an async client and, for database sessions, an async manager."""

    def __init__(self, client: AsyncKeyturn, manager: AsyncTokenManager | None) -> None:
        self.client = client
        self.manager = manager

    def _tokens(self) -> AsyncTokenManager:
        if self.manager is None:
            raise ConfigurationError("this operation needs the database session strategy")
        return self.manager

    async def sign_in(
        self, request: AuthorizationRequest, query: Mapping[str, str], fetch_profile: bool
    ) -> JWT:
        return await self.client.sign_in(request, query, fetch_profile=fetch_profile)

    async def jwt(self, token: JWT) -> JWT:
        return await self.client.jwt(token)

    async def revoke(self, tokens: TokenSet) -> None:
        await self.client.revoke(tokens)

    async def load(self, key: str) -> StoredTokens | None:
        return await self._tokens().load(key)

    async def save(self, key: str, tokens: TokenSet, data: Mapping[str, Any]) -> StoredTokens:
        return await self._tokens().save(key, tokens, data=data)

    async def delete(self, key: str) -> bool:
        return await self._tokens().delete(key)

    async def refresh(self, key: str) -> TokenSet:
        return await self._tokens().get_tokens(key)


def drive(flow: WebFlow[T], ops: SyncOps) -> T:
    """Run a web flow to its end, performing each op with ``ops``."""
    result: Any = None
    failure: KeyturnError | None = None
    while True:
        try:
            op = flow.send(result) if failure is None else flow.throw(failure)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, failure = None, None
        try:
            result = getattr(ops, op.name)(*op.args)
        except KeyturnError as exc:
            failure = exc


async def adrive(flow: WebFlow[T], ops: AsyncOps) -> T:
    """The async twin of :func:`drive`."""
    result: Any = None
    failure: KeyturnError | None = None
    while True:
        try:
            op = flow.send(result) if failure is None else flow.throw(failure)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, failure = None, None
        try:
            result = await getattr(ops, op.name)(*op.args)
        except KeyturnError as exc:
            failure = exc
