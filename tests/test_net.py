"""Politeness of `net.Host` against a real HTTP server on loopback (uvicorn + starlette).

Intervals are scaled down (0.2 s for arXiv's 3 s); the server records when each request arrives.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from loopback import Server, loopback
from starlette.responses import PlainTextResponse, Response

from pasa_mcp.config import Settings
from pasa_mcp.net import MAX_RETRY_AFTER, Net, SourceRejected, SourceUnavailable, retry_after_seconds
from pasa_mcp.pacer import HostClock

pytestmark = pytest.mark.anyio

INTERVAL = 0.2
JITTER = 0.01  # loopback delivery and event-loop timer slack; far below the interval


@asynccontextmanager
async def client(settings: Settings) -> AsyncIterator[Net]:
    net = Net(settings)
    try:
        yield net
    finally:
        await net.aclose()


def gaps(times: list[float]) -> list[float]:
    times = sorted(times)
    return [b - a for a, b in zip(times, times[1:], strict=False)]


async def test_pacer_keeps_requests_from_concurrent_runs_an_interval_apart() -> None:
    server = Server()
    async with loopback(server) as url, client(Settings(arxiv_interval=INTERVAL)) as net:

        async def run() -> None:  # one agent run: a burst of concurrent lookups
            async with anyio.create_task_group() as tg:
                for _ in range(2):
                    tg.start_soon(net.request, "arxiv", "GET", f"{url}/api/query")

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(run)
    assert len(server.arrivals) == 6
    assert min(gaps(server.arrivals)) >= INTERVAL - JITTER
    assert net.hosts["arxiv"].requests == 6


async def test_every_redirect_hop_is_paced_like_a_request() -> None:
    # arxiv.org/html/ID answers 302 to /html/IDvN: two requests, so two paced hops.
    server = Server(
        reply=lambda n: (
            Response(status_code=302, headers={"location": "/html/2401.01234v2"})
            if n % 2 == 0
            else PlainTextResponse("page")
        )
    )
    async with loopback(server) as url, client(Settings(arxiv_html_interval=INTERVAL, arxiv_html_burst=1)) as net:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(2):
                    tg.start_soon(net.request, "arxiv_html", "GET", f"{url}/html/2401.01234")
    assert len(server.arrivals) == 4
    assert min(gaps(server.arrivals)) >= INTERVAL - JITTER
    assert net.hosts["arxiv_html"].requests == 4


async def test_endless_redirects_are_refused() -> None:
    server = Server(reply=lambda n: Response(status_code=302, headers={"location": f"/loop/{n}"}))
    async with loopback(server) as url, client(Settings(arxiv_html_interval=0)) as net:
        with pytest.raises(SourceRejected, match="more than 5 redirects"):
            await net.request("arxiv_html", "GET", f"{url}/start")
    assert len(server.arrivals) == 6


async def test_arxiv_host_uses_one_connection_at_a_time() -> None:
    server = Server(latency=0.05)
    async with loopback(server) as url, client(Settings(arxiv_interval=0, openalex_interval=0)) as net:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(net.request, "arxiv", "GET", f"{url}/api/query")
        assert server.max_in_flight == 1
        assert len(server.clients) == 1

        # The same measurement shows overlap for a host that allows it (OpenAlex: 4 at once).
        server.max_in_flight, server.clients = 0, set()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(net.request, "openalex", "GET", f"{url}/works")
        assert server.max_in_flight > 1
        assert len(server.clients) > 1


def throttle_first(retry_after: str) -> Callable[[int], Response]:
    def reply(n: int) -> Response:
        if n == 0:
            return PlainTextResponse("slow down", status_code=429, headers={"Retry-After": retry_after})
        return PlainTextResponse("ok")

    return reply


async def test_retry_after_is_waited_out_by_the_request_and_by_later_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    pause = 0.3
    server = Server(reply=throttle_first(str(pause)))
    paused = anyio.Event()  # the client has recorded the Retry-After (requests begun before may not know it)
    record = HostClock.pause

    async def recorded(clock: HostClock, seconds: float) -> None:
        await record(clock, seconds)
        paused.set()

    monkeypatch.setattr(HostClock, "pause", recorded)
    async with loopback(server) as url, client(Settings(openalex_interval=0)) as net:
        statuses: list[int] = []

        async def get() -> None:
            statuses.append((await net.request("openalex", "GET", f"{url}/works")).status_code)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(get)
                await paused.wait()
                tg.start_soon(get)
                tg.start_soon(get)
    (status, throttled_at), *_ = server.answered
    assert status == 429
    assert statuses == [200, 200, 200]
    assert len(server.arrivals) == 4  # the throttled request was retried once
    assert min(server.arrivals[1:]) >= throttled_at + pause - JITTER
    assert net.hosts["openalex"].throttled == 1


async def test_retry_after_also_holds_requests_already_queued_for_the_connection() -> None:
    pause = 0.3
    server = Server(reply=throttle_first(str(pause)), latency=0.02)
    async with loopback(server) as url, client(Settings(arxiv_interval=0)) as net:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(net.request, "arxiv", "GET", f"{url}/api/query")
    (status, throttled_at), *_ = server.answered
    assert status == 429
    assert min(server.arrivals[1:]) >= throttled_at + pause - JITTER


async def test_server_errors_are_retried_then_reported_with_host_and_last_status() -> None:
    server = Server(reply=lambda n: PlainTextResponse("down", status_code=503, headers={"Retry-After": "0"}))
    async with loopback(server) as url, client(Settings(http_retries=5, arxiv_interval=0)) as net:
        with anyio.fail_after(10), pytest.raises(SourceUnavailable) as caught:
            await net.request("arxiv", "GET", f"{url}/api/query")
    assert len(server.arrivals) == 6
    assert str(caught.value) == "arXiv API unavailable: 5 retries, last HTTP 503"


async def test_a_host_that_keeps_failing_rests_and_is_tried_again_after() -> None:
    from pasa_mcp import net as net_module

    healthy = {"now": False}

    def reply(n: int) -> Response:
        if healthy["now"]:
            return PlainTextResponse("ok")
        return PlainTextResponse("down", status_code=503, headers={"Retry-After": "0"})

    server = Server(reply=reply)
    async with loopback(server) as url, client(Settings(http_retries=1, http_rest=0.5, arxiv_interval=0)) as net:
        run_started = time.monotonic()
        with anyio.fail_after(20):
            for _ in range(net_module.REST_AFTER):  # each one fails every retry
                with pytest.raises(SourceUnavailable, match="1 retries, last HTTP 503"):
                    await net.request("arxiv", "GET", f"{url}/api/query")
            sent = len(server.arrivals)
            assert sent == 2 * net_module.REST_AFTER
            with pytest.raises(SourceUnavailable) as resting:  # down: refused without a request
                await net.request("arxiv", "GET", f"{url}/api/query")
            assert len(server.arrivals) == sent
            assert "arXiv API unavailable: down (3 requests in a row failed, the last: HTTP 503)" in str(resting.value)
            assert "down (3 requests in a row failed" in net.notices()["arXiv API"]  # what a run ending now says
            healthy["now"] = True
            await anyio.sleep(0.6)  # rested: asked again, and a success ends the count
            assert (await net.request("arxiv", "GET", f"{url}/api/query")).status_code == 200
            assert net.notices() == {}
            # Back now, but a run that began before it went down still says it was down (others stood in).
            was_down = "arXiv API was unavailable during the run: down (3 requests in a row failed, the last: HTTP 503)"
            assert net.notices(since=run_started) == {"arXiv API": was_down}
            assert net.notices(since=time.monotonic()) == {}
            healthy["now"] = False
            with pytest.raises(SourceUnavailable, match="1 retries"):  # one failure alone does not rest it
                await net.request("arxiv", "GET", f"{url}/api/query")
            with pytest.raises(SourceUnavailable, match="1 retries"):
                await net.request("arxiv", "GET", f"{url}/api/query")
    assert len(server.arrivals) == sent + 1 + 4


async def test_server_errors_without_retry_after_back_off_between_attempts() -> None:
    server = Server(reply=lambda n: PlainTextResponse("oops", status_code=500))
    async with loopback(server) as url, client(Settings(http_retries=1)) as net:
        with anyio.fail_after(10), pytest.raises(SourceUnavailable) as caught:
            await net.request("semantic_scholar", "GET", f"{url}/paper/x")
    assert len(server.arrivals) == 2
    assert gaps(server.arrivals)[0] >= 1.0 - JITTER  # tenacity's first exponential wait
    assert str(caught.value) == "Semantic Scholar unavailable: 1 retries, last HTTP 500"


async def test_client_errors_are_rejected_without_retry() -> None:
    server = Server(reply=lambda n: PlainTextResponse("no such paper", status_code=404))
    async with loopback(server) as url, client(Settings()) as net:
        with anyio.fail_after(10), pytest.raises(SourceRejected) as caught:
            await net.request("semantic_scholar", "GET", f"{url}/paper/x")
    assert len(server.arrivals) == 1
    assert caught.value.status == 404
    assert str(caught.value) == "Semantic Scholar rejected the request: HTTP 404 no such paper"


async def test_a_retry_after_beyond_the_limit_fails_at_once() -> None:
    server = Server(reply=throttle_first(str(int(MAX_RETRY_AFTER) * 10)))
    async with loopback(server) as url, client(Settings()) as net:
        with anyio.fail_after(10), pytest.raises(SourceUnavailable, match="Retry-After 1200 s"):
            await net.request("semantic_scholar", "GET", f"{url}/paper/x")
    assert len(server.arrivals) == 1


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    soon = time.time() + 60
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(soon))
    assert 55 <= retry_after_seconds(httpx.Response(429, headers={"Retry-After": stamp})) <= 60
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(429)) is None


async def test_a_garbled_body_is_retried_like_a_server_error() -> None:
    bodies = iter(['{"results": [1, 2', '{"results": [1, 2]}'])  # the first answer is cut off mid-way
    server = Server(reply=lambda n: PlainTextResponse(next(bodies)))
    async with loopback(server) as url, client(Settings(openalex_interval=0)) as net:
        with anyio.fail_after(10):
            answer = await net.request("openalex", "GET", f"{url}/works", parse=lambda r: r.json())
    assert answer == {"results": [1, 2]}
    assert len(server.arrivals) == 2


async def test_each_origin_keeps_its_own_connection_alive_between_requests() -> None:
    # One pool per origin (net.OriginPools): interleaved requests to two servers reuse one
    # connection each, and closing the client closes both pools.
    first, second = Server(), Server()
    async with loopback(first) as a, loopback(second) as b:
        net = Net(Settings())
        try:
            for _ in range(3):
                for url in (a, b):
                    assert (await net.client.get(url + "/x")).status_code == 200
        finally:
            await net.aclose()
        assert len(first.arrivals) == len(second.arrivals) == 3
        assert len(first.clients) == len(second.clients) == 1  # one kept-alive connection per origin
        assert net.client.is_closed


ARXIV_THROTTLES = {
    "a 200 saying Rate exceeded.": lambda: PlainTextResponse("Rate exceeded.\n"),
    "a 406 from the edge": lambda: PlainTextResponse("Not Acceptable", status_code=406),
}


@pytest.mark.parametrize("form", ARXIV_THROTTLES)
async def test_arxivs_other_throttling_forms_are_backed_off_and_retried(form: str) -> None:
    server = Server(reply=lambda n: ARXIV_THROTTLES[form]() if n == 0 else PlainTextResponse("<feed/>"))
    async with loopback(server) as url, client(Settings(arxiv_interval=0)) as net:
        with anyio.fail_after(10):
            answer = await net.request("arxiv", "GET", f"{url}/api/query", parse=lambda r: r.text)
    assert answer == "<feed/>"
    assert len(server.arrivals) == 2
    assert gaps(server.arrivals)[0] >= 1.0 - JITTER  # tenacity's first exponential wait
    assert net.hosts["arxiv"].throttled == 1


async def test_the_backoff_before_a_retry_is_a_setting() -> None:
    # A simulated world scaled in time sets it scaled too (tools/world: http_backoff = 1 s x its scale).
    server = Server(reply=lambda n: PlainTextResponse("down", status_code=503) if n < 2 else PlainTextResponse("ok"))
    async with loopback(server) as url, client(Settings(http_backoff=0.2, openalex_interval=0)) as net:
        with anyio.fail_after(10):
            assert (await net.request("openalex", "GET", f"{url}/works")).text == "ok"
    first, second = gaps(server.arrivals)
    assert 0.2 - JITTER <= first <= 0.4 + 0.5  # 0.2 s plus up to 0.2 s of jitter (and a loaded machine's delay)
    assert 0.4 - JITTER <= second <= 0.6 + 0.5  # doubled


async def test_lasting_throttling_is_reported_as_throttling_not_as_a_malformed_answer() -> None:
    server = Server(reply=lambda n: PlainTextResponse("Rate exceeded."))
    async with loopback(server) as url, client(Settings(http_retries=1, arxiv_html_interval=0)) as net:
        with anyio.fail_after(10), pytest.raises(SourceUnavailable) as caught:
            await net.request("arxiv_html", "GET", f"{url}/html/2401.01234", parse=lambda r: r.json())
    assert str(caught.value) == "arXiv HTML unavailable: 1 retries, last HTTP 200 throttling: Rate exceeded."


async def test_openalex_403_is_its_slow_down_and_is_backed_off_but_elsewhere_a_403_is_a_refusal() -> None:
    # OpenAlex's error reference: 403 "Rate limit exceeded; slow down" (a refused key is a 401).
    slow_down = b'{"error": "Rate limit exceeded", "message": "Too many requests per second."}'
    server = Server(reply=lambda n: Response(slow_down, status_code=403) if n % 2 == 0 else PlainTextResponse("{}"))
    async with loopback(server) as url, client(Settings(openalex_interval=0, s2_interval=0)) as net:
        with anyio.fail_after(10):
            assert (await net.request("openalex", "GET", f"{url}/works")).text == "{}"
            with pytest.raises(SourceRejected, match="HTTP 403"):
                await net.request("s2", "GET", f"{url}/graph/v1/paper/batch")
    assert len(server.arrivals) == 3
    assert net.hosts["openalex"].throttled == 1 and net.hosts["s2"].throttled == 0


async def test_other_hosts_keep_their_406_and_their_bodies() -> None:
    server = Server(reply=lambda n: PlainTextResponse("Rate exceeded.") if n == 0 else Response(status_code=406))
    async with loopback(server) as url, client(Settings(openalex_interval=0)) as net:
        with anyio.fail_after(10):
            assert (await net.request("openalex", "GET", f"{url}/works")).text == "Rate exceeded."
            with pytest.raises(SourceRejected, match="HTTP 406"):
                await net.request("openalex", "GET", f"{url}/works")
    assert len(server.arrivals) == 2
    assert net.hosts["openalex"].throttled == 0
