"""A headless Chromium driven over the DevTools protocol, for testing the HTML gallery in a real browser.

Only the standard library and ``websockets`` (a ``dev`` dependency): the browser is started with
``--remote-debugging-port=0``, its port read from ``DevToolsActivePort`` in the profile folder, and the page's
DevTools socket found through ``/json/list``. Console errors, uncaught exceptions and failed resource loads are
collected as they arrive.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium (or Chrome) binary: ``$TVBENCH_CHROMIUM``, else the first of the usual names on PATH."""
    explicit = os.environ.get("TVBENCH_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


class HeadlessChromium:
    """One headless browser with one page. Use as a context manager; everything it writes stays in ``workdir``."""

    def __init__(self, binary: str, workdir: Path, size: tuple[int, int] = (1400, 1000), timeout: float = 60.0):
        self.timeout = timeout
        profile = Path(workdir) / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--no-default-browser-check", "--disable-extensions", "--remote-debugging-port=0",
                 "--remote-allow-origins=*", f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
        self.process = subprocess.Popen([binary, *flags, "about:blank"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self.events: list[dict] = []
        self._ids = itertools.count(1)
        try:
            port = self._port(profile / "DevToolsActivePort")
            self.socket = self._connect(port)
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def _port(self, marker: Path) -> int:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.process.returncode} before it was ready")
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    def _connect(self, port: int):
        from websockets.sync.client import connect

        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as reply:
                pages = [t for t in json.load(reply) if t.get("type") == "page"]
            if pages:
                return connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=self.timeout)
            time.sleep(0.1)
        raise TimeoutError("chromium opened no page")

    def _receive(self, until) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if until(message):
                return message
            if "method" in message:
                self.events.append(message)
        raise TimeoutError("no answer from chromium")

    def send(self, method: str, **params) -> dict:
        """Call a DevTools method and return its result (events that arrive meanwhile are kept)."""
        call = next(self._ids)
        self.socket.send(json.dumps({"id": call, "method": method, "params": params}))
        reply = self._receive(lambda message: message.get("id") == call)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def navigate(self, url: str) -> None:
        """Open ``url`` and wait for its load event (every image of the page loaded or failed)."""
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        self.send("Page.navigate", url=url)
        if not any(e["method"] == "Page.loadEventFired" for e in self.events):
            self.events.append(self._receive(lambda message: message.get("method") == "Page.loadEventFired"))

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited); a page exception raises."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"javascript error: {result['exceptionDetails'].get('text')} in {expression!r}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen so far, one line each."""
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in
                                                     params.get("args", [])))
            elif event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append("exception: " + str(details.get("exception", {}).get("description", details.get("text"))))
            elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                found.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        return found

    def close(self) -> None:
        socket = getattr(self, "socket", None)
        if socket is not None:
            socket.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "HeadlessChromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
