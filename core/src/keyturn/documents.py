"""JSON documents a provider publishes: fetched once, cached, and shared by concurrent callers.

An OpenID Provider's discovery document and its JSON Web Key Set change rarely and are read
on every sign-in, so keyturn keeps them. :class:`Documents` fetches one as an operation (see
:mod:`keyturn.effects`) that yields an :class:`~keyturn.HttpRequest`: the blocking and the
async client, over httpx or httpx2, all fetch the same way.

How long a document is kept, on the client's clock:

* Each kind has a default lifetime: :data:`DISCOVERY_TTL` (one hour) for discovery documents,
  :data:`JWKS_TTL` (ten minutes) for key sets.
* ``Cache-Control: max-age=N`` replaces the default, bounded to :data:`MIN_TTL` (one minute)
  and :data:`MAX_TTL` (one day). ``no-store``, ``no-cache`` and ``max-age=0`` mean: the
  document serves the call that fetched it (and the callers that shared that fetch) and is
  not kept. Other directives, ``Expires`` and ``Age`` are not read.
* Callers that want one URL at the same moment share one request (a
  :class:`~keyturn.singleflight.SingleFlight` through the :class:`~keyturn.effects.Shared`
  effect): a thousand first sign-ins make one request.
* A failed fetch is never cached: the next caller tries again.
* A document past its lifetime stays in the cache :data:`STALE_IF_ERROR` (one day) longer.
  When fetching it again fails and the provider did not answer with a readable document
  (no answer, an error status, HTML, a truncated or oversized body), the stale document is
  used and a WARNING is logged: an outage at the provider does not stop sign-ins. A readable
  document that keyturn refuses (another issuer, an endpoint over plain http, a key set with
  no usable key) is never papered over: its error is raised.
* A body longer than :data:`MAX_DOCUMENT_SIZE` (512 KiB) is refused. It is measured once the
  HTTP client has read it, so the client's own timeouts bound that read.

Where documents are kept is a :class:`DocumentCache`: :class:`MemoryDocumentCache` (one
process) by default; a client takes another (``document_cache=``), such as a token store
shared by processes, so that they fetch once between them. Every built-in token store is one
(:mod:`keyturn.stores`: a table of its own in SQLite, keys with a time to live in Redis).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from .effects import Blocking, Operation, Shared
from .errors import InvalidResponseError, KeyturnError, TransportError
from .http import HttpRequest, HttpResponse
from .singleflight import SingleFlight
from .transport import NetworkFailure

__all__ = [
    "DISCOVERY_TTL",
    "JWKS_TTL",
    "MAX_DOCUMENT_SIZE",
    "MAX_TTL",
    "MIN_TTL",
    "STALE_IF_ERROR",
    "Document",
    "DocumentCache",
    "DocumentKind",
    "DocumentProblem",
    "Documents",
    "MemoryDocumentCache",
    "lifetime",
]

log = logging.getLogger("keyturn")

P = TypeVar("P")

#: Seconds a discovery document is kept when its response sets no ``max-age``.
DISCOVERY_TTL = 3600.0
#: Seconds a JSON Web Key Set is kept when its response sets no ``max-age``.
JWKS_TTL = 600.0
#: The shortest and the longest lifetime a ``max-age`` can give a document, in seconds.
MIN_TTL = 60.0
MAX_TTL = 86400.0
#: Seconds past its lifetime a document is kept, to be used while fetching it again fails.
STALE_IF_ERROR = 86400.0
#: The largest body read as a document, in bytes (512 KiB: Google's discovery document
#: takes about 1.5 KiB, a key set with a dozen RSA keys about 6 KiB).
MAX_DOCUMENT_SIZE = 512 * 1024

#: How many URLs' parsed documents a client keeps (it reads two per provider).
_MAX_PARSED = 256
#: HTTP statuses after which fetching again may succeed.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


@runtime_checkable
class DocumentCache(Protocol):
    """Where fetched documents are kept, keyed by their URL.

    Values are plain text and expiry times epoch seconds (on the client's clock), so any
    key-value store can hold them. A cache may keep an entry past ``expires_at``, and should
    for :data:`STALE_IF_ERROR` seconds: keyturn uses such an entry only while fetching the
    document again fails. Methods are called from any thread; an async client calls a cache
    other than :class:`MemoryDocumentCache` in a worker thread. A cache that raises is
    logged and treated as empty: documents are then fetched, never lost.
    """

    def get(self, key: str) -> tuple[str, float] | None:
        """The text kept under ``key`` and when it expires, or ``None``."""
        ...

    def put(self, key: str, text: str, expires_at: float) -> None:
        """Keep ``text`` under ``key`` until ``expires_at`` (and a while past it)."""
        ...


class MemoryDocumentCache:
    """The default :class:`DocumentCache`: a dictionary of one process, safe across threads.

    Holds at most ``max_entries`` documents (the oldest written goes first); an entry is
    dropped :data:`STALE_IF_ERROR` seconds after it expires, when the next one is written.

    :param max_entries: how many documents to keep (a client needs two per provider).
    """

    def __init__(self, max_entries: int = 256) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, key: str) -> tuple[str, float] | None:
        """The text kept under ``key`` and when it expires, or ``None``."""
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, text: str, expires_at: float) -> None:
        """Keep ``text`` under ``key``; forget what expired more than a day before."""
        with self._lock:
            entries = self._entries
            entries.pop(key, None)
            entries[key] = (text, expires_at)
            horizon = expires_at - STALE_IF_ERROR
            for name in [name for name, (_, expiry) in entries.items() if expiry < horizon]:
                del entries[name]
            while len(entries) > self.max_entries:
                entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every document."""
        with self._lock:
            self._entries.clear()


class DocumentProblem(Exception):
    """A document keyturn cannot use; :class:`Documents` turns it into the kind's error.

    :ivar reason: what is wrong, naming the field (``"has no jwks_uri"``), never a secret.
    :ivar unreadable: the answer is not a document at all (an error status, HTML, truncated
        JSON): a stale copy may stand in for it.
    """

    def __init__(self, reason: str, *, unreadable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreadable = unreadable


@dataclass(frozen=True)
class DocumentKind:
    """What differs between kinds of documents.

    :ivar operation: the operation named by errors: ``discovery`` or ``jwks``.
    :ivar default_ttl: seconds the document is kept when its response sets no ``max-age``.
    :ivar invalid: builds the error for a document that cannot be used, from the provider
        id, the URL and the :class:`DocumentProblem`'s reason.
    """

    operation: str
    default_ttl: float
    invalid: Callable[[str, str, str], KeyturnError]


@dataclass(frozen=True, repr=False)
class Document(Generic[P]):
    """A document as :meth:`Documents.get_op` hands it out.

    :ivar url: where it was fetched from.
    :ivar text: the body, as kept in the cache.
    :ivar value: what the kind's ``parse`` made of it (parsed once per text).
    :ivar expires_at: when the cache stops serving it; ``None`` when it is not kept.
    :ivar fetched: it came over the network in this call, or in a call this one shared.
    :ivar stale: it is past its lifetime and stands in for a document that failed to arrive.
    """

    url: str
    text: str
    value: P
    expires_at: float | None
    fetched: bool
    stale: bool = False

    def __repr__(self) -> str:
        flags = " fetched" if self.fetched else ""
        flags += " stale" if self.stale else ""
        return (
            f"Document({self.url}, <{len(self.text)} chars>, expires_at={self.expires_at}{flags})"
        )


def lifetime(headers: Mapping[str, str], default: float) -> float | None:
    """Seconds a response may be kept, from its ``Cache-Control`` header; ``None``: not kept.

    :param headers: the response's headers, lower-case names.
    :param default: the lifetime when the header sets none.
    :return: ``None`` for ``no-store``, ``no-cache`` or ``max-age=0``; ``max-age`` bounded to
        :data:`MIN_TTL` and :data:`MAX_TTL`; ``default`` otherwise (an unreadable ``max-age``
        included).
    """
    directives: dict[str, str] = {}
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.partition("=")
        directives[name.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return None
    max_age = directives.get("max-age")
    if max_age is None:
        return default
    try:
        seconds = int(max_age)
    except ValueError:
        return default
    if seconds <= 0:
        return None
    return min(max(float(seconds), MIN_TTL), MAX_TTL)


@dataclass(frozen=True, slots=True)
class _CacheGet(Blocking[tuple[str, float] | None]):
    """Read a cache that may block (a store); errors count as a miss."""

    cache: DocumentCache
    key: str

    def call(self) -> tuple[str, float] | None:
        return _safe_get(self.cache, self.key)


@dataclass(frozen=True, slots=True)
class _CachePut(Blocking[None]):
    """Write to a cache that may block; errors are logged."""

    cache: DocumentCache
    key: str
    text: str
    expires_at: float

    def call(self) -> None:
        _safe_put(self.cache, self.key, self.text, self.expires_at)


def _safe_get(cache: DocumentCache, key: str) -> tuple[str, float] | None:
    try:
        entry = cache.get(key)
    except Exception as exc:
        log.warning("the document cache could not be read (%s); fetching", type(exc).__name__)
        return None
    if entry is None:
        return None
    if (
        not isinstance(entry, tuple)
        or len(entry) != 2
        or not isinstance(entry[0], str)
        or isinstance(entry[1], bool)
        or not isinstance(entry[1], int | float)
    ):
        log.warning("the document cache returned something other than (text, expires_at)")
        return None
    return entry[0], float(entry[1])


def _safe_put(cache: DocumentCache, key: str, text: str, expires_at: float) -> None:
    try:
        cache.put(key, text, expires_at)
    except Exception as exc:
        log.warning("the document cache could not be written (%s)", type(exc).__name__)


class Documents:
    """Fetches and keeps documents for one client; see the module's description.

    :param cache: where documents are kept; a :class:`MemoryDocumentCache` when ``None``.
    :param clock: returns epoch seconds: the client's clock.
    """

    def __init__(self, cache: DocumentCache | None, clock: Callable[[], float]) -> None:
        self.cache: DocumentCache = MemoryDocumentCache() if cache is None else cache
        self.clock = clock
        #: One fetch per URL at a time; outcomes are shared by the callers who waited only.
        self.flight: SingleFlight[Document[Any]] = SingleFlight(clock=clock)
        # The default cache answers at once: it is read in place, never in a worker thread.
        self._direct = type(self.cache) is MemoryDocumentCache
        #: url -> (text, value): each text is parsed once, however often it is read.
        self._parsed: dict[str, tuple[str, Any]] = {}
        self._parsed_lock = threading.Lock()

    # -- the cache --------------------------------------------------------------------------

    def _get(self, url: str) -> Operation[tuple[str, float] | None]:
        if self._direct:
            return _safe_get(self.cache, url)
        return (yield from _CacheGet(self.cache, url))

    def _put(self, url: str, text: str, expires_at: float) -> Operation[None]:
        if self._direct:
            _safe_put(self.cache, url, text, expires_at)
            return
        yield from _CachePut(self.cache, url, text, expires_at)

    def _value(self, url: str, text: str, parse: Callable[[Any], P]) -> P:
        """``parse`` of ``text``, remembered for the next read of the same text.

        :raises DocumentProblem: the text is not a JSON object, or ``parse`` refuses it.
        """
        seen = self._parsed.get(url)
        if seen is not None and (seen[0] is text or seen[0] == text):
            value: P = seen[1]
            return value
        value = parse(_json_object(text))
        with self._parsed_lock:
            if len(self._parsed) >= _MAX_PARSED and url not in self._parsed:
                self._parsed.pop(next(iter(self._parsed)), None)
            self._parsed[url] = (text, value)
        return value

    # -- operations -------------------------------------------------------------------------

    def get_op(
        self,
        url: str,
        kind: DocumentKind,
        provider: str,
        parse: Callable[[Any], P],
        *,
        refetch: bool = False,
    ) -> Operation[Document[P]]:
        """The document at ``url``: from the cache while it is fresh, else fetched (shared).

        :param url: the document's URL (also its cache key).
        :param kind: its kind: lifetime and errors.
        :param provider: the provider id, for errors.
        :param parse: makes the value from the decoded JSON object; raises
            :class:`DocumentProblem` for a document keyturn cannot use. It must not depend
            on anything but the document: its result is kept per text.
        :param refetch: fetch even if the cache holds a fresh copy (an unknown key id).
            Concurrent refetches of one URL share one request too.
        :raises TransportError: no answer, and no stale copy to stand in.
        :raises InvalidResponseError: a 5xx, 429, 425 or 408 answer, and no stale copy.
        :raises KeyturnError: the kind's error for a document that cannot be used.
        """
        if not refetch:
            entry = yield from self._get(url)
            if entry is not None and entry[1] > self.clock():
                try:
                    value = self._value(url, entry[0], parse)
                except DocumentProblem:
                    pass  # kept by an older keyturn, or damaged: fetched again below
                else:
                    return Document(url, entry[0], value, entry[1], fetched=False)
        key = ("refetch\0" if refetch else "fetch\0") + url
        result: Document[P] = yield from Shared(
            self.flight, key, lambda: self._fetch_op(url, kind, provider, parse, refetch)
        )
        return result

    def _fetch_op(
        self,
        url: str,
        kind: DocumentKind,
        provider: str,
        parse: Callable[[Any], P],
        refetch: bool,
    ) -> Operation[Document[P]]:
        """Fetch, check and keep the document; what one caller does for all who share it."""
        stale: tuple[str, float] | None = None
        if not refetch:
            # Another thread, task or process may have fetched it since this caller looked.
            entry = yield from self._get(url)
            if entry is not None:
                now = self.clock()
                if entry[1] > now:
                    try:
                        value = self._value(url, entry[0], parse)
                    except DocumentProblem:
                        pass
                    else:
                        return Document(url, entry[0], value, entry[1], fetched=False)
                elif entry[1] + STALE_IF_ERROR > now:
                    stale = entry
        failure: KeyturnError
        try:
            response = yield HttpRequest("GET", url, {"Accept": "application/json"})
        except NetworkFailure as exc:
            failure = TransportError(
                provider=provider,
                operation=kind.operation,
                error=exc.code,
                description=exc.detail,
                permanent=False,
            )
        else:
            try:
                text = _body_text(response)
                value = self._value(url, text, parse)
            except DocumentProblem as problem:
                if not problem.unreadable:
                    raise kind.invalid(provider, url, problem.reason) from None
                failure = _unreadable_error(kind, provider, url, response, problem)
            else:
                ttl = lifetime(response.headers, kind.default_ttl)
                expires_at = None if ttl is None else self.clock() + ttl
                if expires_at is not None:
                    yield from self._put(url, text, expires_at)
                return Document(url, text, value, expires_at, fetched=True)
        if stale is not None:
            try:
                value = self._value(url, stale[0], parse)
            except DocumentProblem:
                raise failure from None
            log.warning(
                "%s: fetching %s failed (%s); using the copy that expired %d s ago",
                provider,
                url,
                failure,
                int(self.clock() - stale[1]),
            )
            return Document(url, stale[0], value, stale[1], fetched=False, stale=True)
        raise failure


def _unreadable_error(
    kind: DocumentKind, provider: str, url: str, response: HttpResponse, problem: DocumentProblem
) -> KeyturnError:
    """The error for an answer that is not a document: transient for a passing status."""
    status = response.status
    if status in _TRANSIENT_STATUSES or status >= 500:
        return InvalidResponseError(
            provider=provider,
            operation=kind.operation,
            error="http_error",
            status=status,
            description=problem.reason,
            permanent=False,
        )
    return kind.invalid(provider, url, problem.reason)


def _body_text(response: HttpResponse) -> str:
    """The body of a successful answer as text.

    :raises DocumentProblem: (unreadable) an error status, a body too large, not UTF-8.
    """
    if not response.ok:
        raise DocumentProblem(f"answered HTTP {response.status}", unreadable=True)
    if len(response.body) > MAX_DOCUMENT_SIZE:
        raise DocumentProblem(
            f"is larger than {MAX_DOCUMENT_SIZE} bytes ({len(response.body)})", unreadable=True
        )
    try:
        text = response.body.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentProblem("is not UTF-8 text", unreadable=True) from None
    if text.lstrip().startswith("<"):
        kind = response.content_type or "no content type"
        raise DocumentProblem(f"is HTML or XML, not JSON ({kind})", unreadable=True)
    return text.removeprefix("\ufeff")


def _json_object(text: str) -> Any:
    """``text`` decoded as a JSON object.

    :raises DocumentProblem: (unreadable) not JSON (truncated, say), or not an object.
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise DocumentProblem("is not JSON (truncated?)", unreadable=True) from None
    if not isinstance(data, dict):
        raise DocumentProblem(f"is a JSON {_json_type(data)}, not an object", unreadable=True)
    return data


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "null" if value is None else "number"
