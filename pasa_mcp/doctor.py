"""`pasa-mcp doctor`: every part a search needs, checked one by one, each failure with its fix.

Models (per base URL): reachable, serving the configured model, which engine, the chat template (a
one-token chat request), P(True) of a known prompt (the selector). Sources: one small search each
(reachable, key accepted). The store: opens, schema version, writable, size. The local paper index:
what it holds (read only), or that there is none, which fails only where it is needed (offline, or
`local` among the search sources). Politeness: the intervals
set for arXiv and Semantic Scholar against their published limits, when the URLs are theirs. OpenAlex:
its key set and accepted (one DOI lookup), since every online deep search resolves cited titles there.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import asdict, dataclass
from typing import Annotated
from urllib.parse import urlsplit

import anyio
import tantivy
import typer

from .config import Settings
from .index.db import lookups_built, text_index_path
from .llm import ModelClient, ModelError, ModelNotRunning, ModelRejected, Role, Sampling, message_text
from .net import Net, SourceRejected, SourceUnavailable
from .pacer import Pacer
from .papers import Paper
from .protocol import query_prompt
from .selector import GeneralSelector, PasaSelector
from .sources.arxiv import ArxivAPI
from .sources.google import GoogleSearch
from .sources.openalex import OpenAlex
from .sources.semantic_scholar import SemanticScholar
from .store import SCHEMA_VERSION, Store, StoreError

# A paper no reading of the question could select, and a question: P(True) must merely be computable.
QUESTION = "Which papers propose sequence-to-sequence models built only from attention layers?"
TITLE = "Attention Is All You Need"
ABSTRACT = "The Transformer: an encoder-decoder network using self-attention only, no recurrence or convolution."
PROBE_DOI = "10.48550/arxiv.1706.03762"  # that paper's DOI at arXiv: a cheap OpenAlex lookup
# Published limits: arXiv API one request per 3 s; arxiv.org pages and Semantic Scholar one per second.
POLITE = (
    ("arxiv_interval", "arxiv_api_url", "export.arxiv.org", 3.0),
    ("arxiv_html_interval", "arxiv_html_url", "arxiv.org", 1.0),
    ("s2_interval", "s2_url", "api.semanticscholar.org", 1.0),
)


@dataclass
class Check:
    part: str  # what was checked: "crawler model http://…", "source arxiv", "store", "politeness"
    ok: bool
    detail: str
    fix: str = ""


async def check_model(settings: Settings, net: Net, role: Role, url: str) -> list[Check]:
    """The checks of one model base URL; stops at the first failure (the rest would fail alike)."""
    part = f"{role} model {url}"
    client = ModelClient.from_settings(settings.model_copy(update={f"{role}_urls": [url]}), net, role)
    checks: list[Check] = []
    backend = getattr(settings, f"{role}_backend")
    try:
        served = (await client.served_models())[client.urls[0]]
        engine = (await client.served_engines())[client.urls[0]] if client.vllm else "OpenAI-compatible"
        name_ok = client.model in served or engine in ("llama.cpp", "llama-cpp-python")  # one model, any name
        checks.append(
            Check(
                part,
                name_ok,
                f"{engine} server, serves {served}",
                "" if name_ok else f"set PASA_{role.upper()}_MODEL to one of {served}",
            )
        )
        if not name_ok:
            return checks
        if role == "crawler" or backend == "general":
            choice = await client.chat([{"role": "user", "content": query_prompt(QUESTION)}], Sampling(0.0, 1.0, 1))
            checks.append(Check(part, True, f"chat template applied (first token {message_text(choice)!r})"))
        if role == "selector":
            selector = PasaSelector(client) if backend == "pasa" else GeneralSelector(client)
            (score,) = await selector.score(QUESTION, [Paper(title=TITLE, abstract=ABSTRACT)])
            exact = "" if backend != "pasa" or client.usage.bounded == 0 else " (upper bound: True not in the top 20)"
            checks.append(Check(part, True, f"P(True) of a known prompt = {score:.4f}{exact}"))
    except ModelNotRunning as exc:
        checks.append(Check(part, False, str(exc), f"start it (`pasa-mcp models serve {role}`) or fix the URL"))
    except ModelRejected as exc:
        checks.append(Check(part, False, str(exc), _rejected_fix(role, exc.status)))
    except ModelError as exc:
        checks.append(Check(part, False, str(exc), f"check the server's log; PASA_{role.upper()}_BACKEND={backend}"))
    return checks


def _rejected_fix(role: str, status: int) -> str:
    if status in (401, 403):
        return f"set PASA_{role.upper()}_API_KEY to a key this server accepts"
    if status == 404:
        return f"set PASA_{role.upper()}_MODEL to a model the server serves (GET /v1/models)"
    return "the server's own message says what it refuses; see its documentation or the README's engine notes"


async def check_sources(settings: Settings, net: Net) -> list[Check]:
    arxiv = ArxivAPI(net, settings)
    made = {
        "arxiv": lambda: arxiv,
        "google": lambda: GoogleSearch(net, settings, arxiv),
        "semantic_scholar": lambda: SemanticScholar(net, settings),
        "openalex": lambda: OpenAlex(net, settings),
    }
    keys = {"google": "SERPER_API_KEY", "semantic_scholar": "S2_API_KEY", "openalex": "OPENALEX_API_KEY"}
    checks = []
    for name in settings.sources:
        part = f"source {name}"
        try:
            found = await made[name]().search("attention", limit=1, before=None)
            checks.append(Check(part, True, f"answered a one-result search ({len(found)} found)"))
        except SourceRejected as exc:
            fix = f"check {keys[name]}" if exc.status in (401, 403) and name in keys else "check its URL setting"
            checks.append(Check(part, False, str(exc), fix))
        except SourceUnavailable as exc:
            checks.append(Check(part, False, str(exc), "check the network and the URL setting; retry later"))
        except ValueError as exc:
            checks.append(Check(part, False, str(exc), f"set {keys.get(name, 'the key')} or drop {name}"))
    return checks


def check_store(settings: Settings) -> Check:
    path = settings.store_path
    try:
        store = Store(path)
    except (StoreError, sqlite3.Error, OSError) as exc:
        return Check("store", False, f"{path}: {exc}", "set PASA_STORE_PATH to a writable file (not a directory)")
    try:
        version = store.schema_version
        if version != SCHEMA_VERSION:
            return Check("store", False, f"{path}: schema {version}, this version uses {SCHEMA_VERSION}", "upgrade")
        store.db.conn.execute("BEGIN IMMEDIATE")
        store.db.conn.execute("ROLLBACK")
        size = path.stat().st_size / 1e6 if path.exists() else 0.0
        return Check("store", True, f"{path}: schema {version}, writable, {size:.1f} MB, {store.count_papers()} papers")
    except (sqlite3.Error, OSError) as exc:
        return Check("store", False, f"{path}: {exc}", "check the file's permissions and free disk space")
    finally:
        store.close()


def check_index(settings: Settings) -> Check:
    """The local paper index, opened read-only (its own open would build what an import left undone)."""
    path, part = settings.index_path, "local index"
    build = "build one: `pasa-mcp index import-arxiv FILE` or `pasa-mcp index harvest`"
    if not path.exists():
        if settings.offline or "local" in settings.sources:
            why = "offline mode" if settings.offline else "the `local` search source"
            return Check(part, False, f"none at {path}, and {why} needs it", build)
        return Check(part, True, f"none at {path} (optional: ids and titles then resolve over the network)")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            papers, newest = db.execute("SELECT count(*), max(published) FROM papers").fetchone()
            through = db.execute("SELECT value FROM state WHERE key = 'indexed_through'").fetchone()
            lookups = lookups_built(db)
        finally:
            db.close()
    except (sqlite3.Error, OSError) as exc:
        return Check(part, False, f"{path}: {exc}", "move it aside, or set PASA_INDEX_PATH to another file")
    text = text_index_path(path)
    try:
        documents = tantivy.Index.open(str(text)).searcher().num_docs
    except ValueError:  # no full-text index there
        documents = 0
    detail = f"{path}: {papers} papers ({documents} in the full-text index), newest published {newest}"
    if papers and through and not documents:
        fix = "run `pasa-mcp index import-arxiv` or `index harvest` once: its first write indexes every row again"
        return Check(part, False, f"{detail}; the full-text index {text} is gone", fix)
    if not lookups:
        fix = "run the import again (or any `pasa-mcp index` command): the lookups are built when the index is opened"
        return Check(part, False, f"{detail}; title and DOI lookups not built (an import was interrupted)", fix)
    return Check(part, True, detail)


def check_politeness(settings: Settings) -> list[Check]:
    checks = []
    for setting, url_setting, host, minimum in POLITE:
        value, url = getattr(settings, setting), getattr(settings, url_setting)
        if urlsplit(url).hostname != host:
            checks.append(Check(f"politeness {setting}", True, f"{value} s ({url} is not {host}: no limit to check)"))
        elif value < minimum:
            fix = f"set PASA_{setting.upper()} to at least {minimum}"
            checks.append(Check(f"politeness {setting}", False, f"{value} s is below {host}'s {minimum} s", fix))
        else:
            checks.append(Check(f"politeness {setting}", True, f"{value} s (limit {minimum} s)"))
    return checks


async def check_openalex(settings: Settings, net: Net) -> Check:
    """Every online deep search resolves cited titles, DOIs and reference lists on OpenAlex, which has
    wanted a (free) key since 13 February 2026 and allows a few requests a day without one."""
    part = "openalex (titles, DOIs, reference lists)"
    if settings.offline:
        return Check(part, True, "not asked offline")
    if settings.openalex_api_key is None:
        detail = "no key: since 13 February 2026 OpenAlex wants a free key and allows a few requests a day without"
        return Check(part, False, detail, "get one at https://openalex.org/settings/api, set OPENALEX_API_KEY")
    try:
        await OpenAlex(net, settings).papers_by_doi([PROBE_DOI])
    except SourceRejected as exc:
        fix = "check OPENALEX_API_KEY" if exc.status in (401, 403) else "check its URL setting"
        return Check(part, False, str(exc), fix)
    except SourceUnavailable as exc:
        return Check(part, False, str(exc), "check the network and the URL setting; retry later")
    return Check(part, True, "key set, a DOI lookup answered")


def check_state_dir(settings: Settings) -> Check:
    """The pacing files shared by the user's pasa-mcp processes must be writable, or no search can pace."""
    directory = Pacer(settings.state_dir).directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".doctor-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Check("pacing state", False, f"{directory}: {reason}", "set PASA_STATE_DIR to a writable directory")
    clocks = sum(1 for path in directory.glob("*.json"))
    return Check("pacing state", True, f"{directory}: writable, {clocks} host clocks shared by this user's processes")


async def run_checks(settings: Settings) -> list[Check]:
    checks = [check_store(settings), check_index(settings), check_state_dir(settings), *check_politeness(settings)]
    net = Net(settings)
    try:
        checks.append(await check_openalex(settings, net))
        for role in ("crawler", "selector"):
            for url in getattr(settings, f"{role}_urls"):
                checks += await check_model(settings, net, role, url)  # type: ignore[arg-type]
        checks += await check_sources(settings, net)
    finally:
        await net.aclose()
    return checks


def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check every part a search needs (models, sources, store, local index, politeness); exit 1 if any fails."""
    from .cli import _settings, out

    settings = _settings()
    checks = anyio.run(run_checks, settings)
    if json_out:
        sys.stdout.write(json.dumps({"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}) + "\n")
    else:
        for check in checks:
            line = f"{'ok  ' if check.ok else 'FAIL'} {check.part}: {check.detail}"
            out.print(line + (f" -> fix: {check.fix}" if check.fix else ""), highlight=False, soft_wrap=True)
        failed = sum(not c.ok for c in checks)
        out.print(f"{len(checks) - failed} ok, {failed} failed", highlight=False)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
