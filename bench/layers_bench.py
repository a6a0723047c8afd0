"""One call's way, layer by layer: where the time of ``run_code``, ``commands.run`` and a queued call goes.

Runs the embedded default (private Redis, one sandboxd, one threads-pool worker) and measures each
layer of the path on its own, in the same run, interleaved in rounds so that the machine's load
falls on all of them alike:

    toolkit.run_python_code  client → Redis → worker → SDK → sandboxd → agent → kernel
    Celery no-op round trip  client → Redis → worker → Redis → client, no work
    SDK run_code             SDK → sandboxd → agent → kernel
    raw HTTP to sandboxd     one httpx request to sandboxd's /execute, no SDK
    raw HTTP to the agent    the same request straight to the agent's unix socket, no sandboxd
    jupyter_client           the sandbox's own kernel, over its ipc sockets, no agent

and the same for ``commands.run("true")`` down to a fork-exec of ``true`` inside the jail. It also
counts the Redis commands one queued call costs (``INFO commandstats``, less the idle rate of the
heartbeats and polls), beside a Celery no-op's.

    python bench/layers_bench.py [--runs 300] [--json FIGURES.json]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from common import RedisCounter, header, ms, pct, row, toolkit_stack
from targets import Figures

ENVD_PORT = 49983
INTERPRETER_PORT = 49999
START = "/process.Process/Start"


def interleaved(
    layers: dict[str, Callable[[], object]], runs: int, block: int = 20
) -> dict[str, list[float]]:
    """``runs`` timings of each layer, taken in rounds of ``block`` per layer."""
    samples: dict[str, list[float]] = {name: [] for name in layers}
    for fn in layers.values():
        fn()  # warm: connections, imports, first-call caches
    while len(next(iter(samples.values()))) < runs:
        for name, fn in layers.items():
            for _ in range(block):
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
    return samples


def envelope(message: dict[str, object]) -> bytes:
    """A Connect streaming request body: one uncompressed message."""
    data = json.dumps(message).encode()
    return b"\x00" + struct.pack(">I", len(data)) + data


def kernel_client(state_dir: Path, sandbox_id: str) -> object:
    """A jupyter_client to the sandbox's default kernel, over its ipc sockets seen from the host."""
    from jupyter_client.blocking import BlockingKernelClient

    tmp = state_dir / sandbox_id / "data" / "tmp"
    # /tmp/e2bq-kernels when the kernel was forked in, /tmp/e2bq-kernels-XXXX when the agent spawned it
    files = sorted(tmp.glob("e2bq-kernels*/kernel-*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise RuntimeError(f"no kernel connection file under {tmp}")
    info = json.loads(files[0].read_text())
    info["ip"] = str(tmp / Path(info["ip"]).relative_to("/tmp"))
    client = BlockingKernelClient()
    client.load_connection_info(info)
    client.start_channels()
    client.wait_for_ready(timeout=30)
    return client


IN_JAIL = """
import subprocess, time, statistics
def p50(cmd):
    samples = []
    for _ in range(60):
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
print(p50(["/bin/true"]), p50(["/bin/bash", "-l", "-c", "true"]), p50(["/bin/bash", "-c", "true"]))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--json", default=None, help="write the figures to this file (merged)")
    args = parser.parse_args()
    figures = Figures()

    with toolkit_stack() as (stack, toolkit, sid):
        from e2b_code_interpreter import Sandbox

        app = toolkit.dispatcher.app
        queue = os.environ.get("E2BQ_QUEUE", "e2bq")
        sbx = Sandbox.connect(sid)
        sbx.run_code("1+1")
        token = sbx._envd_access_token or ""
        host = httpx.Client(base_url=stack.host.url, timeout=30)
        socket = stack.host.state_dir / sid / "sockets" / "agent.sock"
        agent = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket)), base_url="http://agent", timeout=30
        )
        kernel = kernel_client(stack.host.state_dir, sid)
        body = {"code": "1+1", "context_id": None, "language": None, "env_vars": None}
        code_headers = {
            "E2b-Sandbox-Id": sid,
            "E2b-Sandbox-Port": str(INTERPRETER_PORT),
            "X-Access-Token": token,
        }
        command = envelope({"process": {"cmd": "/bin/bash", "args": ["-l", "-c", "true"]}, "stdin": False})
        command_headers = {
            "E2b-Sandbox-Id": sid,
            "E2b-Sandbox-Port": str(ENVD_PORT),
            "X-Access-Token": token,
            "Content-Type": "application/connect+json",
            "Connect-Protocol-Version": "1",
        }

        def queued() -> None:
            assert toolkit.run_python_code("1+1")["status"] == "success"

        def noop() -> None:
            app.send_task("celery.accumulate", args=(1,), queue=queue).get(timeout=30)

        def executed(client: httpx.Client, headers: dict[str, str]) -> Callable[[], None]:
            def run() -> None:
                response = client.post("/execute", json=body, headers=headers)
                assert b'"result"' in response.content, response.content[:200]

            return run

        def started(client: httpx.Client) -> Callable[[], None]:
            def run() -> None:
                response = client.post(START, content=command, headers=command_headers)
                assert response.status_code == 200 and b"exitCode" not in response.content, response.content[
                    :300
                ]

            return run

        def direct_kernel() -> None:
            kernel.execute_interactive("1+1", timeout=30, output_hook=lambda m: None)  # type: ignore[attr-defined]

        code = interleaved(
            {
                "queue": queued,
                "noop": noop,
                "sdk": lambda: sbx.run_code("1+1"),
                "host": executed(host, code_headers),
                "agent": executed(agent, {}),
                "kernel": direct_kernel,
            },
            args.runs,
        )
        header('one run_code("1+1"), layer by layer (p50 of each layer alone; what it adds to the next)')
        chain = [
            ("queue", "toolkit.run_python_code: client → Redis → worker → SDK → …", "sdk"),
            ("sdk", "SDK run_code → sandboxd → agent → kernel", "host"),
            ("host", "raw HTTP POST /execute to sandboxd (no SDK)", "agent"),
            ("agent", "raw HTTP POST /execute to the agent's socket (no sandboxd)", "kernel"),
            ("kernel", "jupyter_client → the sandbox's kernel (ipc; no agent)", None),
        ]
        for key, name, inner in chain:
            adds = (
                f"adds {ms(pct(code[key], 50) - pct(code[inner], 50))} over the next"
                if inner
                else "the floor"
            )
            row(name, f"p50 {ms(pct(code[key], 50))}  p95 {ms(pct(code[key], 95))}", adds)
        row(
            "Celery no-op round trip, same worker and queue",
            f"p50 {ms(pct(code['noop'], 50))}",
            "the queue's floor",
        )
        figures.record("queue_run_code_p50", pct(code["queue"], 50))
        figures.record("celery_noop_p50", pct(code["noop"], 50))
        figures.record("sdk_run_code_p50", pct(code["sdk"], 50))
        figures.record("kernel_direct_p50", pct(code["kernel"], 50))

        commands = interleaved(
            {
                "sdk": lambda: sbx.commands.run("true"),
                "host": started(host),
                "agent": started(agent),
            },
            max(60, args.runs // 3),
        )
        true_p50, login_p50, bash_p50 = (float(x) for x in sbx.run_code(IN_JAIL).logs.stdout[0].split())
        local = []
        for _ in range(100):
            start = time.perf_counter()
            subprocess.run(["true"], check=True)
            local.append(time.perf_counter() - start)
        header('one commands.run("true"), layer by layer')
        row(
            "SDK commands.run → sandboxd → agent → bash -l -c true",
            f"p50 {ms(pct(commands['sdk'], 50))}",
            f"adds {ms(pct(commands['sdk'], 50) - pct(commands['host'], 50))} over raw HTTP",
        )
        row(
            "raw Connect POST Process/Start to sandboxd",
            f"p50 {ms(pct(commands['host'], 50))}",
            f"adds {ms(pct(commands['host'], 50) - pct(commands['agent'], 50))} over the agent's socket",
        )
        row(
            "raw Connect POST Process/Start to the agent's socket",
            f"p50 {ms(pct(commands['agent'], 50))}",
            f"adds {ms(pct(commands['agent'], 50) - login_p50)} over bash -l in the jail",
        )
        row(
            "inside the jail: subprocess.run(bash -l -c true)",
            f"p50 {ms(login_p50)}",
            f"bash -c true: {ms(bash_p50)}; /bin/true: {ms(true_p50)}",
        )
        row('on the host: subprocess.run(["true"])', f"p50 {ms(pct(local, 50))}", "the issue's baseline")
        figures.record("sdk_command_p50", pct(commands["sdk"], 50))
        figures.record("fork_exec_p50", pct(local, 50))
        figures.record("jail_login_shell_p50", login_p50)

        counter = RedisCounter(stack.env["E2BQ_REDIS_URL"])
        per_call = counter.per_call(queued, 50)
        per_noop = counter.per_call(noop, 50)
        header("Redis commands per call (INFO commandstats, less the idle rate)")
        row('toolkit.run_python_code("1+1")', f"{per_call:.1f}", f"Celery no-op round trip: {per_noop:.1f}")
        figures.record("redis_per_call", per_call)
        figures.record("redis_per_noop", per_noop)
        kernel.stop_channels()  # type: ignore[attr-defined]
        toolkit.shutdown_all_sandboxes()
    figures.dump(args.json)


if __name__ == "__main__":
    main()
