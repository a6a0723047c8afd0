"""Start a private e2bq sandboxd and drive it with the unmodified e2b SDK, end to end.

Runs code that draws a chart (saved as chart.png), serves a folder from inside the sandbox and
fetches it over HTTP at the URL sandboxd publishes, and runs a background command to completion.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError("gave up waiting")


def main() -> None:
    port, key = free_port(), "e2b_" + secrets.token_hex(20)
    url = f"http://127.0.0.1:{port}"
    state = tempfile.mkdtemp(prefix="e2bq-quickstart-")
    host = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "e2bq.sandboxd",
            "--port",
            str(port),
            "--api-key",
            key,
            "--state-dir",
            state,
            "--log-level",
            "warning",
        ],
    )
    try:
        wait_until(lambda: httpx.get(url + "/health").status_code == 200, 60)
        os.environ.update(E2B_API_KEY=key, E2B_API_URL=url, E2B_SANDBOX_URL=url)
        from e2b_code_interpreter import Sandbox

        sbx = Sandbox.create(timeout=300, metadata={"example": "quickstart"})
        print(f"sandbox {sbx.sandbox_id} created on {url}")

        execution = sbx.run_code(
            "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 5, 6])\nplt.title('demo')\nplt.show()"
        )
        chart = next(r for r in execution.results if r.png)
        Path("chart.png").write_bytes(base64.b64decode(chart.png))
        kind = chart.chart.type if chart.chart else None
        print(f"chart.png saved ({len(chart.png)} base64 chars); chart type: {kind}")

        sbx.files.write("index.html", "<h1>hello from the sandbox</h1>")
        sbx.commands.run("python -m http.server 8000", background=True, timeout=0)
        public = httpx.get(
            f"{url}/sandboxes/{sbx.sandbox_id}/ports/8000", headers={"X-API-KEY": key}
        ).json()["url"]
        wait_until(lambda: httpx.get(public).status_code == 200, 20)
        print(f"server at {public} answered: {httpx.get(public).text.strip()}")

        job = sbx.commands.run("pip --version && sleep 1 && echo done", background=True)
        result = job.wait()
        last = result.stdout.strip().splitlines()[-1]
        print(f"background command pid {job.pid} ended with exit code {result.exit_code}: {last}")
        sbx.kill()
        print("sandbox killed")
    finally:
        host.terminate()
        host.wait(timeout=30)


if __name__ == "__main__":
    main()
