"""A kernel of any language is as confined as the Python one: the sandbox's unprivileged user, no
capabilities, no new privileges, none of the host's files or sandboxd's secrets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2b_code_interpreter import Execution, Sandbox

from e2bq.sandboxd.agent.interpreter.languages import LANGUAGES, runtime_of
from e2bq.sandboxd.settings import HostSettings
from tests.procs import DEFAULT_ROOTFS
from tests.security.harness import ANSWER_TIMEOUT, HOST_SECRETS

pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class Probe:
    language: str
    status: str  # code that shows its own process's /proc/self/status
    exists: str  # code that shows whether {path} exists, with a format slot for the path
    environment: str  # code that shows its whole environment


PROBES = [
    Probe("bash", "cat /proc/$$/status", 'test -e "{path}" && echo true || echo false', "env"),
    Probe(
        "javascript",
        'import * as fs from "fs"; fs.readFileSync("/proc/self/status", "utf8")',
        'import * as fs from "fs"; fs.existsSync("{path}")',
        "JSON.stringify(process.env)",
    ),
    Probe(
        "typescript",
        'import * as fs from "fs"; fs.readFileSync("/proc/self/status", "utf8")',
        'import * as fs from "fs"; fs.existsSync("{path}")',
        "JSON.stringify(process.env)",
    ),
    Probe(
        "r",
        'cat(readLines("/proc/self/status"), sep = "\\n")',
        'cat(tolower(file.exists("{path}")))',
        'cat(paste(names(Sys.getenv()), Sys.getenv()), sep = "\\n")',
    ),
    Probe(
        "java",
        'System.out.print(java.nio.file.Files.readString(java.nio.file.Path.of("/proc/self/status")))',
        'System.out.print(new java.io.File("{path}").exists())',
        "System.out.print(System.getenv().toString())",
    ),
]


def _params() -> list[object]:
    runtime = runtime_of(str(HostSettings.from_env().python))
    return [
        pytest.param(
            probe,
            id=probe.language,
            marks=pytest.mark.skipif(bool(LANGUAGES[probe.language].missing(runtime)), reason="missing"),
        )
        for probe in PROBES
    ]


def _shown(execution: Execution) -> str:
    assert execution.error is None, execution.error
    texts = [result.text for result in execution.results if result.text]
    return (texts[0] if texts else "".join(execution.logs.stdout)).strip().strip("'\"")


@pytest.mark.parametrize("probe", _params())
def test_kernel_runs_unprivileged_and_sees_nothing_of_the_host(
    probe: Probe, make_sandbox: Callable[..., Sandbox], canary: Path
) -> None:
    sandbox = make_sandbox()
    run = sandbox.run_code
    status = _shown(run(probe.status, language=probe.language, timeout=ANSWER_TIMEOUT)).replace("\\n", "\n")
    fields = {k: v.split() for k, _, v in (line.partition(":") for line in status.splitlines())}
    assert fields["Uid"] == ["1000"] * 4
    assert fields["Gid"] == ["1000"] * 4
    assert int(fields["CapEff"][0], 16) == 0
    assert int(fields["CapPrm"][0], 16) == 0
    assert fields["NoNewPrivs"] == ["1"]
    # on a template, /etc/shadow and /root are the template's own (root's, unreadable): not the host's
    for path in (str(canary),) if DEFAULT_ROOTFS is not None else (str(canary), "/etc/shadow", "/root"):
        assert _shown(run(probe.exists.format(path=path), language=probe.language)) in ("false", "FALSE")
    environment = _shown(run(probe.environment, language=probe.language))
    assert environment  # the probe did show it
    for secret in HOST_SECRETS.values():
        assert secret not in environment
