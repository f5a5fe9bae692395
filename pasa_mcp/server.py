"""The MCP server: wires the tools, resources and prompt (pasa_mcp.mcp_tools) to stdio and streamable HTTP."""

from __future__ import annotations

import hashlib
import hmac
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ToolAnnotations
from mcp.types import Tool as MCPTool
from pydantic import ValidationError

from . import __version__
from .app import Pasa, open_app
from .config import Settings
from .errors import plain_errors
from .jobs import open_jobs
from .limits import URI_CHARS, TooLong, check_arguments, check_text
from .mcp_tools import live_view
from .mcp_tools.common import AppState, trim
from .mcp_tools.reading import find_citing_papers, get_bibtex, read_paper
from .mcp_tools.resources import paper_json, pasa_loop, search_bibtex, search_json, search_markdown
from .mcp_tools.schemas import compact_tool
from .mcp_tools.search import list_searches, paper_search, paper_search_cancel, paper_search_status
from .mcp_tools.steps import expand_citations, find_papers, generate_queries, get_paper, score_paper
from .scrub import remember, scrub

__all__ = ["AppState", "build_server", "serve_http", "serve_stdio"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")

INSTRUCTIONS = """\
PaSa deep paper search. For a detailed research question call paper_search: it runs the whole
agent (crawler queries, search, selector scores, citation expansion) as a job and returns the
selected papers, or `running` with a search_id to pass to paper_search_status. To stay in control,
use the step tools (generate_queries, find_papers, score_paper, get_paper, expand_citations); the
prompt `pasa_loop` explains the loop. Paper ids look like arxiv:2401.01234, doi:10.1/x or title:key."""


class SharedToken:
    """Bearer authentication with one shared secret (for `serve --http` beyond loopback)."""

    def __init__(self, token: str) -> None:
        self._digest = hashlib.sha256(token.encode()).digest()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._digest):
            return AccessToken(token="shared", client_id="pasa-mcp", scopes=[])
        return None


# Hints left out have the default the spec gives them: not read-only, destructive, open world.
READ = ToolAnnotations(read_only_hint=True)
LOCAL = ToolAnnotations(read_only_hint=True, open_world_hint=False)
TOOLS: list[tuple[Callable[..., Any], str, ToolAnnotations]] = [
    (
        paper_search,
        "Deep paper search",
        ToolAnnotations(destructive_hint=False),
    ),
    (paper_search_status, "Deep search status", LOCAL),
    (
        paper_search_cancel,
        "Cancel a deep search",
        ToolAnnotations(destructive_hint=False, idempotent_hint=True, open_world_hint=False),
    ),
    (generate_queries, "Generate search queries", READ),
    (find_papers, "Find papers", READ),
    (get_paper, "Get a paper", READ),
    (expand_citations, "Expand citations", READ),
    (score_paper, "Score papers", READ),
    (list_searches, "List deep searches", LOCAL),
    (read_paper, "Read a paper", READ),
    (find_citing_papers, "Find citing papers", READ),
    (get_bibtex, "BibTeX or RIS for papers", READ),
]


class _Server(MCPServer[AppState]):
    """MCPServer whose argument errors say, in plain words on one line, which argument and its bound
    (sizes too: pasa_mcp.limits), whose errors never carry a secret, and whose tool schemas are
    published compact (see mcp_tools.schemas)."""

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        try:
            check_text("a resource URI", str(uri), URI_CHARS)  # the SDK would repeat it whole
        except TooLong as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return await super().read_resource(uri, context)

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context: Any = None) -> Any:
        try:
            check_arguments(arguments or {})
        except TooLong as exc:
            raise MCPError(INVALID_PARAMS, f"invalid arguments for {trim(name, 60)}: {exc}") from None
        return await super().get_prompt(name, arguments, context)

    async def list_tools(self) -> list[MCPTool]:
        return [compact_tool(tool) for tool in await super().list_tools()]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            check_arguments(arguments or {})  # here, not in the schemas: tools/list stays small
        except TooLong as exc:
            raise ToolError(f"invalid arguments for {trim(name, 60)}: {exc}") from None
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(f"invalid arguments for {name}: {plain_errors(exc.__cause__)}") from exc.__cause__
            raise ToolError(scrub(str(exc))) from None


def build_server(
    settings: Settings | None = None,
    *,
    pasa: Pasa | None = None,
    token: str | None = None,
) -> MCPServer[AppState]:
    """The pasa MCP server. `pasa` hands in parts the caller opened (tests); `token` requires bearer auth."""
    settings = settings or (pasa.settings if pasa else Settings())
    remember(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        async with AsyncExitStack() as stack:
            app = pasa or await stack.enter_async_context(open_app(settings))
            running = await stack.enter_async_context(open_jobs(app.store))
            yield AppState(app, running)

    auth: dict[str, Any] = {}
    if token:
        # AuthSettings wants an issuer even though a shared token needs no OAuth routes (none are served).
        auth = {
            "token_verifier": SharedToken(token),
            "auth": AuthSettings(issuer_url="http://localhost", resource_server_url=None),
        }
    server = _Server(
        "pasa",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level="WARNING",
        extensions=[live_view.apps()],
        **auth,
    )
    for fn, title, hints in TOOLS:
        # A text result (BibTeX) needs no output schema: {"result": string} would say nothing more.
        structured = False if fn is get_bibtex else None
        meta = live_view.BINDING if fn in (paper_search, paper_search_status) else None
        server.add_tool(fn, title=title, annotations=hints, structured_output=structured, meta=meta)
    # The suffixed forms come first: `{search_id}` alone would also match "abc.md".
    server.resource("pasa://search/{search_id}.md", mime_type="text/markdown")(search_markdown)
    server.resource("pasa://search/{search_id}.bib", mime_type="application/x-bibtex")(search_bibtex)
    server.resource("pasa://search/{search_id}", mime_type="application/json")(search_json)
    server.resource("pasa://paper/{+id}", mime_type="application/json")(paper_json)
    server.prompt()(pasa_loop)
    return server


def serve_stdio(settings: Settings) -> None:
    """Serve one client on stdin/stdout (what desktop clients launch)."""
    build_server(settings).run()


def transport_security(host: str, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection: only these Host (and browser Origin) headers are served."""
    names = list(dict.fromkeys([*LOOPBACK, host, *allowed_hosts]))
    hosts = [f"[{n}]" if ":" in n else n for n in names]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{h}:*" for h in hosts],
        allowed_origins=[f"{scheme}://{h}:*" for h in hosts for scheme in ("http", "https")],
    )


def http_app(settings: Settings, *, host: str, token: str | None, allowed_hosts: Sequence[str] = ()) -> Any:
    """The streamable HTTP app at /mcp. Beyond loopback a bearer token is required."""
    if host not in LOOPBACK and not token:
        raise ValueError(f"serving on {host} needs a bearer token: set PASA_HTTP_TOKEN (clients send it)")
    server = build_server(settings, token=token)
    return server.streamable_http_app(transport_security=transport_security(host, allowed_hosts), host=host)


def serve_http(settings: Settings, *, host: str, port: int, allowed_hosts: Sequence[str] = ()) -> None:
    """Serve streamable HTTP at http://HOST:PORT/mcp until interrupted."""
    import uvicorn

    token = settings.http_token.get_secret_value() if settings.http_token else None
    app = http_app(settings, host=host, token=token, allowed_hosts=allowed_hosts)
    shown = f"[{host}]" if ":" in host else host
    auth = "bearer token required" if token else "no token"
    print(f"pasa-mcp {__version__}: MCP at http://{shown}:{port}/mcp ({auth})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
