from __future__ import annotations

from e2b_code_interpreter import Sandbox


def test_command_runs_in_the_sandbox_home(sandbox: Sandbox) -> None:
    result = sandbox.commands.run("echo hi; pwd; id -un")
    assert result.exit_code == 0
    assert result.stdout == "hi\n/home/user\nuser\n"
