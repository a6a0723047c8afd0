"""The attack suite's working parts: reaching a private sandboxd with the unmodified SDK, running
an attack whose failure is the expected outcome, and checking that nobody else noticed it."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import httpx
from e2b import CommandExitException, CommandResult
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, wait_for

# Secrets in sandboxd's own environment; none may be found inside a sandbox.
HOST_SECRETS = {
    "E2BQ_CANARY_SECRET": f"e2bq-canary-{uuid.uuid4().hex}",
    "HOST_CANARY_TOKEN": f"host-canary-{uuid.uuid4().hex}",
}
# Generous: an attack may slow its own sandbox down, never make a neighbour unresponsive.
ANSWER_TIMEOUT = 90


# Forks sleeping children until fork fails or 1,000 run: bounded, so harmless without a limit.
FORK_PROBE = """
import json, os, time
children, failure = [], None
for _ in range(1000):
    try:
        pid = os.fork()
    except OSError as exc:
        failure = exc.errno
        break
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, 9)
for pid in children:
    os.waitpid(pid, 0)
print(json.dumps({"started": len(children), "errno": failure}))
"""


def sdk_options(host: SandboxHostProcess) -> dict[str, Any]:
    """What points the unmodified SDK at ``host`` (the keyword form of E2B_API_KEY & co)."""
    return {"api_key": host.api_key, "api_url": host.url, "sandbox_url": host.url}


def create_sandbox(host: SandboxHostProcess, **options: Any) -> Sandbox:
    options.setdefault("timeout", 300)
    options.setdefault("request_timeout", ANSWER_TIMEOUT)
    return Sandbox.create(**sdk_options(host), **options)


def kill_quietly(sandbox: Sandbox) -> None:
    with contextlib.suppress(Exception):
        sandbox.kill()


def run(sandbox: Sandbox, command: str, *, timeout: float = ANSWER_TIMEOUT, **options: Any) -> CommandResult:
    """Run ``command`` to its end; a non-zero exit is an outcome to look at, not an error."""
    try:
        return sandbox.commands.run(command, timeout=timeout, request_timeout=ANSWER_TIMEOUT, **options)
    except CommandExitException as exited:
        return exited


def fork_probe(sandbox: Sandbox) -> dict[str, int | None]:
    """How many processes the sandbox could start at once, and the errno that stopped it."""
    sandbox.files.write("/tmp/fork_probe.py", FORK_PROBE)
    result = run(sandbox, "python /tmp/fork_probe.py")
    assert result.exit_code == 0, result.stderr
    outcome: dict[str, int | None] = json.loads(result.stdout)
    return outcome


def run_attack(sandbox: Sandbox, command: str, *, timeout: float = ANSWER_TIMEOUT) -> CommandResult | None:
    """Like :func:`run`, for an attack that may take its own sandbox down: None if it did."""
    try:
        return run(sandbox, command, timeout=timeout)
    except Exception as lost:  # the stream broke: the sandbox's agent went down with the attack
        try:
            wait_for(lambda: sandbox_is_gone(sandbox), 30, "the sandbox to be reported gone")
        except TimeoutError:
            raise AssertionError(f"the command's stream broke, yet the sandbox lives on: {lost!r}") from lost
        return None


def sandbox_is_gone(sandbox: Sandbox) -> bool:
    try:
        return not sandbox.is_running(request_timeout=ANSWER_TIMEOUT)
    except Exception:  # the data plane says the sandbox was not found
        return True


def assert_host_and_neighbour_answer(host: SandboxHostProcess, neighbour: Sandbox) -> None:
    """sandboxd is alive and answers; the neighbour runs code and commands as usual."""
    assert host.proc.poll() is None, f"sandboxd died: {host.log.read_text(errors='replace')[-3000:]}"
    assert httpx.get(host.url + "/health", timeout=ANSWER_TIMEOUT).status_code == 200
    execution = neighbour.run_code("1+1", timeout=ANSWER_TIMEOUT, request_timeout=ANSWER_TIMEOUT)
    assert execution.error is None, execution.error
    assert execution.text == "2"
    result = neighbour.commands.run("true", timeout=ANSWER_TIMEOUT, request_timeout=ANSWER_TIMEOUT)
    assert result.exit_code == 0


def answers_or_is_gone(sandbox: Sandbox) -> str:
    """After an attack on itself a sandbox still works or has been ended, never half-alive.

    Returns ``"answers"`` or ``"gone"``; fails when it stays listed but does not answer.
    """

    def settled() -> str | None:
        if sandbox_is_gone(sandbox):
            return "gone"
        result = sandbox.commands.run("echo alive", timeout=30, request_timeout=30)
        return "answers" if result.stdout == "alive\n" else None

    return str(wait_for(settled, 2 * ANSWER_TIMEOUT, f"sandbox {sandbox.sandbox_id} to answer or be gone"))
