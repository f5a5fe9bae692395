"""The process's one HTTP client and the politeness rules of every remote host.

Each host (arXiv API, arxiv.org/html, Semantic Scholar, a model endpoint, ...) gets a `Host`: a
concurrency bound, a pacer (minimum spacing between requests, shared with every other pasa-mcp process
of the user through pacer.py, and measured at the moment a request is written to the wire), retries
with backoff on transport errors, throttling and 5xx, and a pause for every process after a
`Retry-After`. A host that keeps failing raises `SourceUnavailable`, which runs report by name; after
REST_AFTER requests in a row have failed so, it rests (`http_rest` seconds): its requests (and the retries
of those in flight) fail at once, so that an outage costs a few requests' retries, not every one's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from . import __version__
from .config import Settings
from .pacer import HostClock, Pacer, Rate
from .scrub import remember, scrub

USER_AGENT = f"pasa-mcp/{__version__} (+https://github.com/pasa-mcp/pasa-mcp)"
MAX_REDIRECTS = 5
MAX_RETRY_AFTER = 120.0  # seconds: a longer demand fails the request instead of stalling a run
# Seconds a request may wait for its slot with its connection open; longer (a pause begun meanwhile)
# drops the connection and books again, so that no server closes an idle connection under it.
WIRE_WAIT = 2.0
# Seconds a request may be written after its slot and still be counted from the slot (no second
# update of the shared clock): asyncio's timers are good to about a millisecond.
WRITE_SLACK = 0.002
REST_AFTER = 3  # requests in a row that failed every retry: the host is taken to be down
WIRE_EVENTS = ("http11.send_request_headers.started", "http2.send_request_headers.started")
WRITTEN_EVENTS = ("http11.send_request_headers.complete", "http2.send_request_headers.complete")


class SourceUnavailable(Exception):
    """A host failed every attempt; the message names it and the last failure, never a secret (the
    error answers' text is scrubbed: a remote may echo a key back)."""

    def __init__(self, host: str, attempts: int, last: str, detail: str = "") -> None:
        self.host, self.attempts, self.last = host, attempts, scrub(last)
        # The last error answer's body (shortened), for callers that read servers' messages.
        self.detail = scrub(detail)
        tries = f"{attempts - 1} retries, last " if attempts > 1 else ""
        super().__init__(f"{host} unavailable: {tries}{self.last}")


class SourceRejected(Exception):
    """A host answered a request with a client error (4xx other than 429): retrying would not help."""

    def __init__(self, host: str, status: int, detail: str) -> None:
        self.host, self.status, self.detail = host, status, scrub(detail)
        super().__init__(f"{host} rejected the request: HTTP {status} {self.detail}".strip())

    def key_refused(self, variable: str) -> SourceRejected:
        """This rejection as a refused API key: it names the setting to check, never the key (a server
        may echo it back)."""
        return SourceRejected(self.host, self.status, f"(the API key was refused: check {variable})")


class Offline(SourceUnavailable):
    """A request to a remote source in offline mode: refused before it leaves the process."""

    def __init__(self, host: str) -> None:
        self.host, self.attempts, self.last = host, 0, "offline"
        why = "offline mode uses only the local index, stored full texts and the models"
        Exception.__init__(self, f"{host} not asked: {why}")


class _Retryable(Exception):
    def __init__(self, last: str, retry_after: float | None = None, detail: str = "") -> None:
        super().__init__(last)
        self.last, self.retry_after, self.detail = last, retry_after, detail


def _renewal(response: httpx.Response) -> float:
    """When a spent daily allowance renews: now plus OpenAlex's `X-RateLimit-Reset` (seconds), or
    without a usable one the next 00:00 UTC (its allowances are per UTC day)."""
    try:
        seconds = float(response.headers.get("x-ratelimit-reset", ""))
    except ValueError:
        seconds = -1.0
    if 0 <= seconds <= 86_400:
        return time.time() + seconds
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp()


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class _Repace(Exception):
    """A request's slot moved away while its connection was open: book again."""


class Host:
    """Politeness for one remote host: concurrency, pacing, retries, Retry-After.

    `key` names the host's clocks in the shared pacing state (with the network location asked, or
    `site` for a host whose limit covers several locations); `exclusive` hosts take one connection
    at a time across every process. A host with a daily `allowance` (OpenAlex) says it is spent with
    a 429 without Retry-After: that request fails at once, and so does every later one until it
    renews (X-RateLimit-Reset, else 00:00 UTC; the text says how to get more)."""

    def __init__(
        self,
        name: str,
        pacer: Pacer,
        *,
        key: str | None = None,
        interval: float = 0.0,
        burst: int = 1,
        concurrency: int = 8,
        exclusive: bool = False,
        site: str | None = None,
        allowance: str | None = None,
        retries: int = 5,
        backoff: float = 1.0,
        rest: float = 60.0,
        rest_after: int = REST_AFTER,
    ) -> None:
        self.name = name
        self.key = key or name
        self.interval = interval
        self.retries = retries
        self._pacer, self._rate, self._exclusive, self._site = pacer, Rate(interval, burst), exclusive, site
        self._allowance, self._spent_until = allowance, 0.0
        self._slots = anyio.Semaphore(concurrency)
        self.requests = 0  # sent, retries included: benchmarks and run reports read it
        self.throttled = 0  # throttling answers received (429, arXiv's other forms, OpenAlex's 403)
        # Seconds before a retry: `backoff`, doubling up to 30x, plus up to `backoff` of jitter.
        self._backoff = wait_exponential(multiplier=backoff, max=30 * backoff) + wait_random(0, backoff)
        self._rest = rest  # seconds a down host is not asked; then requests try it again (one more failure: rest again)
        self._rest_after, self._failed_in_row, self._resting_until = rest_after, 0, 0.0
        self._down_why = ""  # why it last began resting (it began `_rest` before `_resting_until`)

    def clock(self, url: httpx.URL) -> HostClock:
        """The shared clock of this host at `url`'s network location (or at its site)."""
        location = self._site or f"{url.host}:{url.port or url.scheme}"
        return self._pacer.clock(self.key, location, self._rate, self._exclusive)

    async def _booked(self, clock: HostClock) -> None:
        """Book a slot (after any pause) and sleep until it."""
        if (wait := await clock.book()) > 0:
            await anyio.sleep(wait)

    async def _claimed(self, clock: HostClock) -> tuple[float, float] | None:
        """Claim the slot at the wire: take one a short wait away and wait it out, book again when the
        next is further. Returns the clock as it was before the claim and the slot's moment (None for
        a host without pacing)."""
        if self.interval <= 0:
            return None  # not paced: pauses were waited out at booking
        wait, before, slot = await clock.claim(WIRE_WAIT)
        if wait > WIRE_WAIT:
            raise _Repace
        if wait > 0:
            await anyio.sleep(wait)
        return before, slot

    async def _send(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        clock = self.clock(request.url)
        async with self._slots:
            while True:
                await self._booked(clock)  # inside the slot: requests queued for it must not skip a pause
                if spent := self._spent():  # said while this request waited its turn, or before
                    raise SourceUnavailable(self.name, 1, spent)
                # A one-connection host's lock is taken when this request's turn has come, not while it
                # sleeps until then: a process waiting for its turn must not hold the others back from theirs.
                async with clock.connection():
                    on_wire, claimed = False, None

                    async def trace(event: str, info: dict[str, Any]) -> None:
                        nonlocal on_wire, claimed
                        if event in WIRE_EVENTS:  # connected; the headers go next
                            on_wire = True
                            claimed = await self._claimed(clock)
                        elif event in WRITTEN_EVENTS and claimed is not None:
                            before, slot = claimed
                            if (now := time.time()) - slot > WRITE_SLACK:  # late: count the gap from now
                                await clock.written(before, now)

                    request.extensions = {**request.extensions, "trace": trace}
                    self.requests += 1
                    try:
                        response = await client.send(request, follow_redirects=False)
                    except _Repace:
                        self.requests -= 1  # never written: the connection was dropped before its headers
                        continue
                    except httpx.TransportError as exc:
                        raise _Retryable(type(exc).__name__) from exc
                    if not on_wire:  # a transport that does not report the wire (tests' MockTransport)
                        await self._claimed(clock)
                break
            # Still in the slot: a Retry-After must hold the host before the next queued request books.
            if (throttling := _throttling(self.key, response)) or response.status_code >= 500:
                self.throttled += throttling is not None
                retry_after = retry_after_seconds(response)
                if retry_after is None and response.status_code == 429 and self._allowance:
                    self._spent_until = _renewal(response)
                    raise SourceUnavailable(self.name, 1, f"HTTP 429, the daily allowance is spent: {self._allowance}")
                if retry_after is not None:
                    if retry_after > MAX_RETRY_AFTER:
                        raise SourceUnavailable(
                            self.name, 1, f"HTTP {response.status_code} with Retry-After {retry_after:.0f} s"
                        )
                    await clock.pause(retry_after)
                raise _Retryable(throttling or f"HTTP {response.status_code}", retry_after, _short(response.text))
            if response.status_code >= 400:
                raise SourceRejected(self.name, response.status_code, _short(response.text))
            return response

    def _spent(self) -> str | None:
        """How a spent daily allowance is said (None while it is not spent)."""
        if time.time() >= self._spent_until:
            return None
        until = datetime.fromtimestamp(round(self._spent_until / 60) * 60, UTC).strftime("%H:%M UTC")
        return f"the daily allowance is spent until {until}: {self._allowance}"

    def notice(self, since: float | None = None) -> str | None:
        """What the reader of a run must know about this host now, though others may have stood in
        for it: its allowance spent, or it resting after failing; with `since` (a run's start, on
        time.monotonic's clock), also that it was down during the run, though back by now."""
        if spent := self._spent():
            return f"{self.name}: {spent}"
        if resting := self._resting():
            return str(resting)
        if since is not None and self._rest_after and self._down_why and self._resting_until - self._rest >= since:
            return f"{self.name} was unavailable during the run: {self._down_why}"
        return None

    def _resting(self) -> SourceUnavailable | None:
        """The error for a request to this host while it rests after failing (None when it does not)."""
        left = self._resting_until - time.monotonic()
        if not self._rest_after or self._failed_in_row < self._rest_after or left <= 0:
            return None
        return SourceUnavailable(self.name, 1, f"{self._down_why}; not asked for {left:.0f} s more")

    def _outcome(self, failure: str | None) -> None:
        """Count a request that succeeded (None) or failed every retry (its last error)."""
        if failure is None:
            self._failed_in_row = 0
            return
        self._failed_in_row += 1
        if self._failed_in_row >= self._rest_after:
            self._resting_until = time.monotonic() + self._rest
            self._down_why = f"down ({self._failed_in_row} requests in a row failed, the last: {failure})"

    def _wait(self, state: Any) -> float:
        exc = state.outcome.exception()
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return 0.0  # _send waits out the pause, which every concurrent request shares
        return self._backoff(state)

    async def request(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        parse: Callable[[httpx.Response], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Send one request under this host's rules, following redirects hop by hop (each hop is
        paced: arxiv.org/html/ID redirects to the latest version). Returns the response, or what
        `parse` makes of it: a body `parse` rejects with ValueError (cut off, garbled) is retried
        like a 503. Raises SourceUnavailable after the last retry."""
        request = client.build_request(method, url, **kwargs)
        for _ in range(MAX_REDIRECTS + 1):
            response, parsed = await self._with_retries(client, request, parse)
            if not (response.is_redirect and response.next_request is not None):
                return response if parse is None else parsed
            request = response.next_request
        raise SourceRejected(self.name, response.status_code, f"more than {MAX_REDIRECTS} redirects")

    async def _with_retries(
        self, client: httpx.AsyncClient, request: httpx.Request, parse: Callable[[httpx.Response], Any] | None
    ) -> tuple[httpx.Response, Any]:
        if resting := self._resting():
            raise resting
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(_Retryable),
                # A host that went down meanwhile (other requests failed every retry) is not asked again.
                stop=stop_after_attempt(self.retries + 1) | (lambda _: self._resting() is not None),
                wait=self._wait,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    response = await self._send(client, request)
                    if parse is None or response.is_redirect:
                        self._outcome(None)
                        return response, None
                    try:
                        parsed = parse(response)
                    except ValueError as exc:
                        raise _Retryable(f"malformed answer ({_short(str(exc), 80)})") from exc
                    self._outcome(None)
                    return response, parsed
        except _Retryable as exc:
            self._outcome(exc.last)
            raise SourceUnavailable(self.name, attempts, exc.last, exc.detail) from None
        except SourceRejected:
            self._outcome(None)  # an answer: the host is up
            raise
        raise AssertionError("unreachable")  # pragma: no cover


ARXIV_HOSTS = ("arxiv", "arxiv_html", "ar5iv")
RATE_EXCEEDED = b"Rate exceeded."


def _throttling(key: str, response: httpx.Response) -> str | None:
    """How `response` says "too many requests", or None. Besides 429, arXiv's edge throttles with a
    200 whose whole body is "Rate exceeded." and with a 406, and OpenAlex with a 403 (its error
    reference: "Rate limit exceeded; slow down"; a refused key is a 401 there)."""
    if response.status_code == 429:
        return "HTTP 429"
    if key == "openalex" and response.status_code == 403:
        return "HTTP 403 throttling"
    if key not in ARXIV_HOSTS:
        return None
    if response.status_code == 406:
        return "HTTP 406 throttling"
    if response.status_code == 200 and len(response.content) < 64 and response.content.strip() == RATE_EXCEEDED:
        return f"HTTP 200 throttling: {RATE_EXCEEDED.decode()}"
    return None


def _short(text: str, limit: int = 200) -> str:
    """A remote's text for an error: secrets masked before it is cut (half a key is still a leak)."""
    text = " ".join(scrub(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class OriginPools(httpx.AsyncBaseTransport):
    """A connection pool per origin behind the one client.

    httpcore scans all of a pool's connections, quadratically, whenever a request starts or ends;
    with a dozen hosts in one pool that scan took a third of a deep search's CPU. Each origin's
    `Host` bounds its own concurrency, so a pool per origin stays as small as its host allows."""

    LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=16)

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, int | None], httpx.AsyncHTTPTransport] = {}
        self._tls = httpx.create_ssl_context()  # loading the CA bundle costs ~15 ms: once, not per origin
        # The first pool imports httpcore (~50 ms): build it now rather than inside a paced request.
        self._spare: httpx.AsyncHTTPTransport | None = self._new_pool()

    def _new_pool(self) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(verify=self._tls, limits=self.LIMITS)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = (request.url.scheme, request.url.host, request.url.port)
        if origin not in self._pools:
            self._pools[origin], self._spare = self._spare or self._new_pool(), None
        return await self._pools[origin].handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools, self._spare = list(self._pools.values()), {}, None
        for pool in pools:
            await pool.aclose()


def make_client(timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The process's one HTTP client. Tests pass a MockTransport or talk to loopback servers."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,  # Host.request follows them, pacing every hop
        transport=transport or OriginPools(),
    )


class Net:
    """The HTTP client and the `Host` of every remote service, one of each per process."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        remember(settings)  # every key this process sends is masked in whatever text leaves it
        self.client = make_client(settings.http_timeout, transport)
        self.pacer = Pacer(settings.state_dir)
        self.retries = settings.http_retries
        self._timing = {"backoff": settings.http_backoff, "rest": settings.http_rest}
        self.offline = settings.offline  # then only the model endpoints ("model:..." hosts) are asked
        self._policies: dict[str, dict[str, Any]] = {
            # arXiv's terms give its legacy APIs one limit together: the query API (export.arxiv.org)
            # and OAI-PMH (oaipmh.arxiv.org) share one clock and one connection, wherever they are.
            "arxiv": {
                "label": "arXiv API",
                "interval": settings.arxiv_interval,
                "concurrency": 1,
                "exclusive": True,
                "site": "arxiv-legacy-apis",
            },
            "arxiv_html": {
                "label": "arXiv HTML",
                "interval": settings.arxiv_html_interval,
                "burst": settings.arxiv_html_burst,
                "concurrency": settings.arxiv_html_burst,
            },
            "ar5iv": {"label": "ar5iv", "interval": settings.ar5iv_interval, "concurrency": 2},
            "semantic_scholar": {"label": "Semantic Scholar", "interval": settings.s2_interval, "concurrency": 2},
            "openalex": {
                "label": "OpenAlex",
                "interval": settings.openalex_interval,
                "concurrency": 4,
                # Since 13 February 2026 OpenAlex wants a (free) key; without one it allows a few requests a day.
                "allowance": "a free key at https://openalex.org/settings/api gives far more (set OPENALEX_API_KEY)"
                if settings.openalex_api_key is None
                else "this OPENALEX_API_KEY's allowance; more at https://openalex.org/pricing",
            },
            "crossref": {"label": "Crossref", "interval": settings.crossref_interval, "concurrency": 1},
            "google": {"label": "Google (serper.dev)", "concurrency": settings.serper_concurrency},
        }
        self.hosts: dict[str, Host] = {}

    def host(self, name: str, **policy: Any) -> Host:
        """The shared `Host` for `name`; `policy` (label, interval, concurrency) applies on first use."""
        if name not in self.hosts:
            rules = {"label": name, **self._policies.get(name, {}), **policy}
            label, retries = rules.pop("label"), rules.pop("retries", self.retries)
            self.hosts[name] = Host(label, self.pacer, key=name, retries=retries, **self._timing, **rules)
        return self.hosts[name]

    async def request(self, host: str, method: str, url: str, **kwargs: Any) -> Any:
        """`Host.request` on the shared client: the response, or what `parse=` makes of it."""
        if self.offline and not host.startswith("model:"):
            raise Offline(self._policies.get(host, {}).get("label", host))
        return await self.host(host).request(self.client, method, url, **kwargs)

    def notices(self, since: float | None = None) -> dict[str, str]:
        """Host name -> what a run's reader must know about it (`Host.notice`: now, or since the run's
        start), for the hosts with something to say."""
        return {host.name: notice for host in self.hosts.values() if (notice := host.notice(since))}

    def request_counts(self) -> dict[str, int]:
        return {host.name: host.requests for host in self.hosts.values()}

    async def aclose(self) -> None:
        await self.client.aclose()
