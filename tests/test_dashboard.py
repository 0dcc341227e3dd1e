"""`mfsearch dashboard` opened in a real headless Chromium (Debian's `chromium`; .ci/run installs it).

Driven over the DevTools protocol: the page loads from disk with no console error, no exception and
no network request, every chart draws, and each chart's screenshot is not blank.
"""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mfsearch.cli.main import main
from smoke_sweep import shared_smoke_sweep

pytestmark = pytest.mark.slow

BROWSER = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
                if p and Path(p).exists()), None)
CHARTS = ["chart-pareto", "chart-parallel", "chart-mixers", "chart-curves"]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> Path:
    from conftest import CIFAR10
    if BROWSER is None:
        pytest.skip("no Chromium found (/usr/bin/chromium): `apt-get install -y chromium` to run the browser test")
    pytest.importorskip("websockets", reason="the DevTools client needs `pip install websockets` (a dev extra)")
    if not (CIFAR10 / "train").is_dir():
        pytest.skip(f"real CIFAR-10 ImageFolder tree not found at {CIFAR10}")
    sweep = shared_smoke_sweep(tmp_path_factory, CIFAR10)
    out = tmp_path_factory.mktemp("dashboard") / "smoke.html"
    assert main(["dashboard", "smoke", "-o", str(out), "--tracking-uri", sweep.tracking_uri]) == 0
    return out


class DevTools:
    """A minimal DevTools-protocol client: one page, commands answered in order, events kept."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, timeout: float = 30, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.time() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.time())))
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {expression}")


@pytest.fixture
def page(tmp_path):
    proc = subprocess.Popen(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--remote-debugging-port=0", "--window-size=1400,1000",
         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = _devtools_port(proc)
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        target = next(t for t in targets if t["type"] == "page")
        from websockets.sync.client import connect
        with connect(target["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=20) as ws:
            client = DevTools(ws)
            for domain in ("Page", "Runtime", "Log", "Network"):
                client.send(f"{domain}.enable")
            yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _devtools_port(proc: subprocess.Popen, timeout: float = 30) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            break
    raise AssertionError(f"Chromium did not start its DevTools endpoint (exit code {proc.poll()})")


def _describe(event: dict) -> str:
    """One readable line for a console error, an uncaught exception or a log error."""
    params = event["params"]
    if event["method"] == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}"
    if event["method"] == "Runtime.consoleAPICalled":
        return "console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
    entry = params["entry"]
    return f"{entry['source']} error: {entry['text']} {entry.get('url', '')}".strip()


def test_dashboard_renders_every_chart_without_errors(dashboard, page, tmp_path):
    from PIL import Image, ImageStat

    page.send("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
    page.send("Page.navigate", url=dashboard.as_uri())
    page.wait_for("document.readyState === 'complete'")
    counts = page.wait_for(
        "(() => { const ids = %s; const ok = ids.map(id => { const d = document.getElementById(id);"
        " return d && d.classList.contains('js-plotly-plot') && d.querySelector('.main-svg') ? 1 : 0; });"
        " return ok.every(Boolean) ? ok.length : 0; })()" % json.dumps(CHARTS))
    assert counts == len(CHARTS)
    # What each chart drew: points, parallel-coordinate axes, bars, curves; and the baselines table.
    drawn = page.evaluate(
        "({points: document.querySelectorAll('#chart-pareto .scatterlayer .point').length,"
        " axes: document.querySelectorAll('#chart-parallel .y-axis').length,"
        " bars: document.querySelectorAll('#chart-mixers .bars .point').length,"
        " curves: document.querySelectorAll('#chart-curves .scatterlayer .trace').length,"
        " baselines: document.querySelectorAll('#baselines-table tbody tr').length})")
    assert drawn["points"] >= 5 and drawn["axes"] >= 4 and drawn["bars"] >= 1 and drawn["curves"] >= 5, drawn
    assert drawn["baselines"] == 2, drawn  # the smoke space's identityformer and caformer
    hover = page.evaluate("document.getElementById('chart-pareto').data.some("
                          "t => (t.hovertext || []).some(h => String(h).includes('stage 3:')))")
    assert hover, "the Pareto points' hover text carries the per-stage architecture"

    for chart in CHARTS:
        box = page.evaluate(f"(() => {{ const r = document.getElementById('{chart}').getBoundingClientRect();"
                            " return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; })()")
        assert box["width"] > 300 and box["height"] > 200, (chart, box)
        shot = page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={**box, "scale": 1})
        image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
        image.save(tmp_path / f"{chart}.png")
        colors = image.getcolors(maxcolors=1 << 20) or []
        # Ink: pixels clearly darker than the white background (axes, text, marks; the smoke
        # sweep's 1-epoch curves are single points, so the bar is low but far above blank).
        inked = sum(n for n, c in colors if sum(c) < 600) / (image.width * image.height)
        assert len(colors) > 20 and inked > 0.003 and max(ImageStat.Stat(image).stddev) > 5, \
            (chart, len(colors), inked)

    errors = [e for e in page.events if
              (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, "; ".join(_describe(e) for e in errors)
    requests = [e["params"]["request"]["url"] for e in page.events if e.get("method") == "Network.requestWillBeSent"]
    assert all(url.startswith(("file:", "data:", "blob:")) for url in requests), requests
