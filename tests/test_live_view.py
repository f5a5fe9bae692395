"""The live view (MCP Apps): bound to paper_search and paper_search_status over a real MCP session,
served as a self-contained ui:// page, and rendered in headless Chromium (Debian's package) with
recorded results from tools/world, speaking the Apps protocol to a stand-in host page."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from mcp import Client

from pasa_mcp.config import Settings
from pasa_mcp.mcp_tools.live_view import URI, page
from pasa_mcp.server import build_server

RECORDED = json.loads((Path(__file__).parent / "live_view_recorded.json").read_text(encoding="utf-8"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=10000",
]

# A stand-in host: answers ui/initialize, sends the running search's result, answers the view's
# tools/call requests with the recorded finished search and BibTeX, presses the BibTeX button, then
# copies what the view shows into #dump for --dump-dom.
HOST = """<!doctype html><html><body style="margin:0">
<iframe id="view" style="border:0;width:880px;height:1500px" srcdoc="{view}"></iframe>
<pre id="dump"></pre>
<script>
const recorded = {recorded};
const frame = document.getElementById("view");
const post = (m) => frame.contentWindow.postMessage({{jsonrpc: "2.0", ...m}}, "*");
const asked = [];
window.addEventListener("message", (event) => {{
  const m = event.data;
  if (m.method === "ui/initialize") post({{id: m.id, result: {{protocolVersion: m.params.protocolVersion,
    hostInfo: {{name: "test-host", version: "1"}}, hostCapabilities: {{}}, hostContext: {{}}}}}});
  if (m.method === "ui/notifications/initialized")
    post({{method: "ui/notifications/tool-result", params: {{content: [], structuredContent: recorded.running}}}});
  if (m.method === "tools/call") {{
    asked.push(m.params.name + " " + JSON.stringify(m.params.arguments));
    const result = m.params.name === "get_bibtex"
      ? {{content: [{{type: "text", text: recorded.bibtex}}]}}
      : {{content: [], structuredContent: recorded.finished}};
    post({{id: m.id, result}});
    const press = () => frame.contentDocument.getElementById("bibtex").click();
    if (m.params.name === "paper_search_status") setTimeout(press, 50);
    if (m.params.name === "get_bibtex") setTimeout(() => {{
      const doc = frame.contentDocument;
      document.getElementById("dump").textContent = JSON.stringify({{
        text: doc.body.innerText, bib: doc.getElementById("bib").value, asked,
        links: [...doc.querySelectorAll("#tree a")].map((a) => a.href)}});
    }}, 50);
  }}
}});
</script></body></html>"""


def host_page(tmp_path: Path) -> Path:
    path = tmp_path / "host.html"
    path.write_text(HOST.format(view=html.escape(page(), quote=True), recorded=json.dumps(RECORDED)), encoding="utf-8")
    return path


@pytest.mark.anyio
async def test_the_view_is_bound_and_self_contained(tmp_path: Path) -> None:
    async with Client(build_server(Settings(store_path=tmp_path / "store.sqlite3"))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        bound = {name for name, t in tools.items() if (t.meta or {}).get("ui", {}).get("resourceUri") == URI}
        assert bound == {"paper_search", "paper_search_status"}
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert listed[URI].mime_type == "text/html;profile=mcp-app"
        (content,) = (await client.read_resource(URI)).contents
    text = content.text
    assert text == page() and text.startswith("<!doctype html>")
    assert "<script src" not in text and "<link" not in text and "@import" not in text and "url(" not in text


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    profile = tmp_path / "profile"
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, host_page(tmp_path).as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_the_view_renders_progress_the_tree_and_bibtex_in_chromium(tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom").stdout
    start = dom.index('<pre id="dump">') + len('<pre id="dump">')
    shown = json.loads(html.unescape(dom[start : dom.index("</pre>", start)]))
    finished = RECORDED["finished"]
    text = shown["text"]
    assert finished["question"] in text and "finished" in text and f"{finished['counts']['selected']} selected" in text
    for paper in finished["papers"]:
        assert paper["title"] in text and f"{paper['score']:.2f}" in text
    queries = {p["found_by"][len("search: ") :] for p in finished["papers"] if p["found_by"].startswith("search: ")}
    assert queries and all(f"query: {q}" in text for q in queries)
    arxiv = [p["id"] for p in finished["papers"] if p["id"].startswith("arxiv:")]
    assert {f"https://arxiv.org/abs/{i.removeprefix('arxiv:')}" for i in arxiv} <= set(shown["links"])
    assert shown["bib"] == RECORDED["bibtex"]
    status_call, bib_call = shown["asked"]
    assert status_call.startswith("paper_search_status ") and json.loads(status_call.split(" ", 1)[1]) == {
        "search_id": finished["search_id"],
        "wait_seconds": 20,
        "limit": 200,
    }
    assert json.loads(bib_call.split(" ", 1)[1]) == {"papers": [p["id"] for p in finished["papers"]]}


def test_the_view_screenshot(tmp_path: Path) -> None:
    shot = tmp_path / "live-view.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=900,1100", "--hide-scrollbars")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a page with content, not a blank one
