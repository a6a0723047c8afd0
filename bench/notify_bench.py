"""Waiting for jobs and calling back: how soon wait_job and a callback learn of a job's end.

Against the embedded default (private Redis, sandboxd, one threads-pool worker), all in this run:
- wait_job's wake-up: from the job's end (``finished_at``, the worker's clock on this machine) until
  wait_job returns, for jobs that end while it waits — beside a Celery no-op round trip (send, run,
  result back) on the same broker and worker;
- a callback's arrival: from the job's end until a receiver in this process has the signed POST;
- the Redis commands a background job costs, with and without a callback (each job's events
  cost one XADD per transition, inside the scripts that make them).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis
from common import RedisCounter, header, row, summary, toolkit_stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--commands", type=int, default=200, help="jobs per Redis-commands batch")
    args = parser.parse_args()
    os.environ["E2BQ_CALLBACK_SECRET"] = "bench-secret"  # clients and the embedded worker alike
    arrived: dict[str, float] = {}
    server = _receiver(arrived)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    with toolkit_stack() as (stack, toolkit, _sid):
        header("waiting for jobs, callbacks (client → Redis → Celery worker → sandboxd)")
        app = toolkit.dispatcher.app
        toolkit.run_python_code("1+1")
        queue = os.environ.get("E2BQ_QUEUE", "e2bq")
        noop = []
        for _ in range(args.jobs):
            start = time.perf_counter()
            app.send_task("celery.accumulate", args=(1,), queue=queue).get(timeout=60)
            noop.append(time.perf_counter() - start)

        floor = _xread_floor(stack.env["E2BQ_REDIS_URL"], args.jobs)
        woke, from_entry, called = [], [], []
        for _ in range(args.jobs):
            # long enough that wait_job is blocked on the stream when the job ends
            job_id = toolkit.run_python_code_background("import time; time.sleep(0.1)", callback_url=url)[
                "job_id"
            ]
            ended = toolkit.wait_job(job_id, timeout=60)
            returned = time.time()
            woke.append(returned - float(ended["finished_at"] or 0))
            end_entry = toolkit.events.history(job_id)[-1]["id"]  # its ms part is Redis' clock at the XADD
            from_entry.append(returned - int(end_entry.split("-")[0]) / 1000)
            deadline = time.monotonic() + 30
            while job_id not in arrived and time.monotonic() < deadline:
                time.sleep(0.001)
            called.append(arrived.get(job_id, float("nan")) - float(ended["finished_at"] or 0))
        row("wait_job: end → return", summary(woke), f"Celery no-op round trip {summary(noop)}")
        row(
            "wait_job: the end's stream entry → return",
            summary(from_entry),
            f"bare XREAD BLOCK woken by an XADD from another thread {summary(floor)}",
        )
        row("callback: job's end → signed POST received", summary(called), "")

        counter = RedisCounter(stack.env["E2BQ_REDIS_URL"])

        def batch(callback: str | None) -> None:
            ids = [
                toolkit.run_python_code_background("1+1", callback_url=callback)["job_id"]
                for _ in range(args.commands)
            ]
            for job_id in ids:
                toolkit.wait_job(job_id, timeout=120)

        plain = counter.per_call(lambda: batch(None), 1) / args.commands
        with_callback = counter.per_call(lambda: batch(url), 1) / args.commands
        row(
            f"Redis commands per job ({args.commands} x run_code 1+1, submitted then wait_job each)",
            f"{plain:.1f}; with a callback_url {with_callback:.1f}",
            "",
        )
    server.shutdown()


def _xread_floor(url: str, n: int) -> list[float]:
    """How soon a blocked XREAD returns after another connection's XADD: the floor under wait_job."""
    reader, writer = redis.Redis.from_url(url), redis.Redis.from_url(url)
    samples = []
    for _ in range(n):
        last = reader.xrevrange("bench:floor", count=1)
        cursor = last[0][0] if last else "0-0"
        sent: list[float] = []
        timer = threading.Timer(0.02, _add, args=(writer, sent))
        timer.start()
        reader.xread({"bench:floor": cursor}, block=5000)
        samples.append(time.perf_counter() - sent[0])
        timer.join()
    reader.delete("bench:floor")
    return samples


def _add(writer: redis.Redis, sent: list[float]) -> None:
    sent.append(time.perf_counter())
    writer.xadd("bench:floor", {"a": 1})


def _receiver(arrived: dict[str, float]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived.setdefault(self.headers.get("X-E2BQ-Job-Id") or "", time.time())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    main()
