"""A real HTTP receiver for job-end callbacks, in a thread of the test process, and a plain Celery
worker for ``on_done`` tasks (``tests/ondone_app.py``) — both stopped at the end of their block."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from e2bq import verify_callback
from e2bq.launch.process import spawn, stop


def received_key(job_id: str) -> str:
    """Where the on_done task of ``tests/ondone_app.py`` keeps what it received for ``job_id``."""
    return f"tests:ondone:{job_id}"


@dataclass(frozen=True)
class Received:
    """One POST: its body, headers, whether its signature checked, the status it was answered."""

    body: bytes
    headers: dict[str, str]
    signed: bool
    answered: int
    at: float

    @property
    def record(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


class Receiver:
    """Answers the n-th POST with ``answers[n]`` (200 once they run out; 401 when the signature
    does not check) and records every one."""

    def __init__(self, secret: str, answers: tuple[int, ...] = ()) -> None:
        self.secret, self.answers = secret, list(answers)
        self.received: list[Received] = []
        self.changed = threading.Condition()
        self.url = ""

    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.signed and 200 <= r.answered < 300]

    def wait_for(self, accepted: int, timeout: float) -> list[Received]:
        """The accepted deliveries, once there are ``accepted`` of them (AssertionError after ``timeout``)."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.accepted()) >= accepted, timeout):
                got = len(self.accepted())
                raise AssertionError(f"{got} of {accepted} callbacks in {timeout} s: {self.received}")
        return self.accepted()

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        signed = verify_callback(self.secret, body, headers)
        with self.changed:
            status = (self.answers.pop(0) if self.answers else 200) if signed else 401
            self.received.append(Received(body, headers, signed, status, time.time()))
            self.changed.notify_all()
        return status


@contextlib.contextmanager
def receiver(secret: str, answers: tuple[int, ...] = ()) -> Iterator[Receiver]:
    """A Receiver listening on 127.0.0.1 (a free port) for the block."""
    state = Receiver(secret, answers)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = state.handle(body, dict(self.headers.items()))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/e2bq"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def ondone_worker(tmp: Path, env: dict[str, str], queue: str) -> Iterator[None]:
    """A plain Celery worker of ``tests/ondone_app.py`` taking ``queue``, ready for the block."""
    log = tmp / f"ondone-{queue}.log"
    cmd = [
        sys.executable, "-m", "celery", "-A", "tests.ondone_app", "worker", "--pool", "solo",
        "-Q", queue, "--loglevel", "info", "-n", f"ondone-{queue}@%h",
    ]
    root = str(Path(__file__).resolve().parent.parent)
    proc = spawn(
        cmd,
        log=log,
        env={**env, "PYTHONPATH": root},
        ready=lambda: " ready." in log.read_text(errors="replace"),
        timeout=60,
        what="on_done worker",
    )
    try:
        yield
    finally:
        stop(proc)
