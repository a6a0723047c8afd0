"""The languages a code context can run: one table, language -> kernel, and how each is installed.

Every kernel speaks Jupyter's protocol, so the rest of the interpreter (contexts, executions, the
MIME mapping) is the same for all of them; what differs is here: the command that starts the
kernel, the ZMQ transport it understands, what it needs installed, and the code that sets and
restores environment variables for one execution in that language.

Where the kernels come from (sandboxd's ``install-runtime`` puts the Python and npm ones into the
sandbox runtime; the Makefile's ``SYSTEM_PACKAGES`` brings the Debian ones):

- ``python``: ipykernel, from the runtime's lock (``runtime-requirements.in``).
- ``bash``: bash_kernel (PyPI), from the same lock.
- ``javascript``, ``typescript``: tslab (npm, locked in ``sandboxd/runtime-npm/``) in
  ``<runtime>/node_modules``, run
  by the system's node (Debian's ``nodejs``).
- ``r``: IRkernel (Debian's ``r-cran-irkernel`` and ``r-base-core``).
- ``java``: JJava (PyPI ``jjava``: its wheel carries the kernel's jar) on the system's JDK (Debian's
  ``default-jdk-headless``: the kernel uses JShell). As in E2B's Java kernel, environment variables
  are Java system properties (``System.getProperty``), since a JVM cannot change its environment.

This module imports only the standard library (and ``mime``, which does too).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .mime import MAIN_RESULT_MARK

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Language:
    """How to run one language's kernel.

    ``argv`` gets the runtime folder, its Python and the connection file. ``transport`` is the ZMQ
    transport the kernel can bind: ``ipc`` (sockets in the agent's private folder) for kernels built
    on ipykernel; ``tcp`` on the jail's own loopback for those that spell addresses their own way.
    ``needs`` are the files the kernel cannot start without, and ``install`` says how to get them.
    ``set_env``/``restore_env`` give one execution its environment variables; ``startup`` (or None)
    runs once when the kernel is up, with the sandbox's variables. A kernel that reports a failed
    cell only by its reply is given ``quiet_after_error`` before the next request (tslab aborts
    whatever arrives in the 200 ms after an error).
    """

    name: str
    kernel: str
    argv: Callable[[Path, str, str], list[str]]
    transport: str
    needs: Callable[[Path], list[Path]]
    install: str
    set_env: Callable[[dict[str, str]], str] | None
    restore_env: str
    startup: Callable[[dict[str, str]], str] | None = None
    quiet_after_error: float = 0.0  # seconds the kernel aborts every request after a failed cell

    def missing(self, runtime: Path) -> list[Path]:
        """The files this language needs that are not there."""
        return [path for path in self.needs(runtime) if not os.path.exists(path)]


def runtime_of(python: str) -> Path:
    """The runtime folder a runtime's ``bin/python`` belongs to."""
    return Path(python).parent.parent


def bad_env_names(names: list[str]) -> list[str]:
    """The names no shell, R or Java can take as an environment variable."""
    return [name for name in names if not _NAME.match(name)]


_ERROR_LINE = re.compile(r"^\s*((?:[A-Za-z_$][\w$.]*)?(?:Error|Exception)): ?(.*)$", re.MULTILINE)


def error_from_stderr(stderr: str) -> tuple[str, str, str]:
    """An error's name, value and traceback from what a kernel wrote to stderr about it
    (``TypeError: x is not a function`` and the stack below it; a type checker's message as is)."""
    text = stderr.strip()
    if match := _ERROR_LINE.search(text):
        return match.group(1), match.group(2), text
    first = text.splitlines()[0] if text else "the cell failed"
    return "Error", first, text


def _literal(value: str) -> str:
    """A string literal JavaScript, TypeScript, R and Java all read as ``value`` (JSON's escapes
    are theirs too; non-ASCII text stays as it is, so no ``\\u`` escape reaches Java's lexer)."""
    return json.dumps(value, ensure_ascii=False)


def _bash_set(values: dict[str, str]) -> str:
    lines = ["__e2bq_restore="]
    for name, value in values.items():
        lines.append(
            f'if [ -n "${{{name}+x}}" ]; then __e2bq_restore+="export {name}=$(printf %q "${name}");";'
            f' else __e2bq_restore+="unset {name};"; fi'
        )
        lines.append(f"export {name}=$'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'")
    return "\n".join(lines)


_BASH_RESTORE = 'eval "$__e2bq_restore"; unset __e2bq_restore'


def _js_set(values: dict[str, str]) -> str:
    # valid JavaScript and TypeScript alike (tslab type-checks TypeScript): no annotations, and the
    # saved values hang off globalThis through Reflect, which TypeScript types as any.
    pairs = ", ".join(f"[{_literal(k)}, {_literal(v)}]" for k, v in values.items())
    return (
        "(() => { const saved = new Map(); "
        f"for (const [k, v] of [{pairs}]) {{ saved.set(k, process.env[k]); process.env[k] = v; }} "
        'Reflect.set(globalThis, "__e2bq_env", saved); })()'
    )


_JS_RESTORE = (
    '(() => { const saved = Reflect.get(globalThis, "__e2bq_env"); if (!saved) return; '
    'Reflect.deleteProperty(globalThis, "__e2bq_env"); '
    "saved.forEach((v, k) => { if (v === undefined) delete process.env[k]; else process.env[k] = v; }); })()"
)


def _r_set(values: dict[str, str]) -> str:
    names = ", ".join(_literal(k) for k in values)
    pairs = ", ".join(f"{_literal(k)} = {_literal(v)}" for k, v in values.items())
    return (
        f"invisible(local({{ old <- Sys.getenv(c({names}), unset = NA, names = TRUE); "
        f"assign('.e2bq_env', old, envir = globalenv()); Sys.setenv({pairs}) }}))"
    )


_R_RESTORE = (
    "invisible(local({ old <- get0('.e2bq_env', envir = globalenv()); if (!is.null(old)) { "
    "rm('.e2bq_env', envir = globalenv()); for (k in names(old)) "
    "if (is.na(old[[k]])) Sys.unsetenv(k) else do.call(Sys.setenv, setNames(list(old[[k]]), k)) } }))"
)


def _java_set(values: dict[str, str]) -> str:
    puts = "".join(
        f"saved.put({_literal(k)}, System.getProperty({_literal(k)})); "
        f"System.setProperty({_literal(k)}, {_literal(v)}); "
        for k, v in values.items()
    )
    return (
        "{ java.util.Map<String, String> saved = new java.util.HashMap<>(); "
        f'{puts}System.getProperties().put("__e2bq_env", saved); }}'
    )


_JAVA_RESTORE = (
    '{ Object saved = System.getProperties().remove("__e2bq_env"); '
    "if (saved instanceof java.util.Map<?, ?> map) for (var e : map.entrySet()) { "
    "if (e.getValue() == null) System.clearProperty((String) e.getKey()); "
    "else System.setProperty((String) e.getKey(), (String) e.getValue()); } }"
)


def _java_startup(envs: dict[str, str]) -> str:
    """The sandbox's variables as system properties, as E2B's Java kernel shows them."""
    usable = {k: v for k, v in envs.items() if not bad_env_names([k])}
    sets = "".join(f"System.setProperty({_literal(k)}, {_literal(v)}); " for k, v in usable.items())
    return "{ " + sets + "}"


# tslab prints a cell's last value with the console.log it was given when it started (console.log
# of that value), where E2B's kernels return it as the cell's result. So, once per kernel: user code
# gets a console of its own on the same stdout and stderr, and the console tslab kept (the global
# one, whose bound log tslab holds) writes its stdout as a display marked as the main result, which
# ``mime`` turns into ``execute_result``'s line. Valid JavaScript and TypeScript alike: no
# annotations, and what TypeScript would type strictly is reached through Reflect (typed any).
_TSLAB_LAST_VALUE = (
    "(() => {\n"
    '  const path = require("path");\n'
    "  // the running kernel's own module (argv[1] is <runtime>/node_modules/tslab/bin/tslab)\n"
    '  const jupyter = require(path.join(path.dirname(process.argv[1]), "..", "dist", "jupyter.js"));\n'
    '  const { Console } = require("console");\n'
    '  const { Writable } = require("stream");\n'
    '  const kept = Reflect.get(globalThis, "console");\n'
    '  Reflect.set(globalThis, "console", new Console({ stdout: process.stdout, stderr: process.stderr }));\n'
    "  const value = new Writable({\n"
    "    write(chunk, _encoding, done) {\n"
    '      const send = Reflect.get(jupyter, "lastWriteDisplayData");\n'
    '      const text = String(chunk).replace(/\\n$/, "");\n'
    f"      const metadata = {{ {MAIN_RESULT_MARK}: true }};\n"
    '      if (send) send({ data: { "text/plain": text }, metadata, transient: {} }, false);\n'
    "      done();\n"
    "    },\n"
    "  });\n"
    '  Reflect.set(kept, "_stdout", value);\n'
    "})()"
)


def _tslab(js: bool) -> Callable[[Path, str, str], list[str]]:
    def argv(runtime: Path, _python: str, connection_file: str) -> list[str]:
        main = runtime / "node_modules" / "tslab" / "bin" / "tslab"
        flags = ["--js"] if js else []
        return ["/usr/bin/node", str(main), "kernel", "--config-path", connection_file, *flags]

    return argv


def _jjava_dir(runtime: Path) -> Path:
    return runtime / "share" / "jupyter" / "kernels" / "java"


_TSLAB_INSTALL = "apt-get install nodejs npm; sandboxd install-runtime (tslab into <runtime>/node_modules)"


def _tslab_language(name: str, *, js: bool) -> Language:
    """JavaScript or TypeScript: one tslab kernel, told which by ``--js``."""
    return Language(
        name=name,
        kernel=f"tslab ({'JavaScript' if js else 'TypeScript'})",
        argv=_tslab(js=js),
        transport="tcp",
        needs=lambda runtime: [Path("/usr/bin/node"), runtime / "node_modules" / "tslab" / "bin" / "tslab"],
        install=_TSLAB_INSTALL,
        set_env=_js_set,
        restore_env=_JS_RESTORE,
        startup=lambda _envs: _TSLAB_LAST_VALUE,
        quiet_after_error=0.25,
    )


LANGUAGES: dict[str, Language] = {
    "python": Language(
        name="python",
        kernel="ipykernel",
        argv=lambda _runtime, python, cf: [python, "-m", "ipykernel_launcher", "-f", cf],
        transport="ipc",
        needs=lambda runtime: [runtime / "bin" / "python"],
        install="sandboxd install-runtime",
        set_env=None,  # the Python kernel has its own helpers (kernel_startup)
        restore_env="",
    ),
    "bash": Language(
        name="bash",
        kernel="bash_kernel",
        argv=lambda _runtime, python, cf: [python, "-m", "bash_kernel", "-f", cf],
        transport="ipc",
        needs=lambda runtime: [runtime / "bin" / "python", Path("/bin/bash")],
        install="sandboxd install-runtime (bash_kernel is in the runtime's lock)",
        set_env=_bash_set,
        restore_env=_BASH_RESTORE,
    ),
    "javascript": _tslab_language("javascript", js=True),
    "typescript": _tslab_language("typescript", js=False),
    "r": Language(
        name="r",
        kernel="IRkernel",
        argv=lambda _runtime, _python, cf: ["/usr/bin/R", "--slave", "-e", "IRkernel::main()", "--args", cf],
        transport="tcp",
        needs=lambda _runtime: [Path("/usr/bin/R"), Path("/usr/lib/R/site-library/IRkernel")],
        install="apt-get install r-base-core r-cran-irkernel",
        set_env=_r_set,
        restore_env=_R_RESTORE,
    ),
    "java": Language(
        name="java",
        kernel="JJava",
        # the kernel's jar itself, as its launcher jar would start it: one JVM instead of two
        argv=lambda runtime, _python, cf: [
            "/usr/bin/java",
            "--add-opens",
            "jdk.jshell/jdk.jshell=ALL-UNNAMED",
            "-jar",
            str(_jjava_dir(runtime) / "jjava.jar"),
            cf,
        ],
        transport="tcp",
        needs=lambda runtime: [Path("/usr/bin/jshell"), _jjava_dir(runtime) / "jjava.jar"],
        install="apt-get install default-jdk-headless; sandboxd install-runtime (jjava is in its lock)",
        set_env=_java_set,
        restore_env=_JAVA_RESTORE,
        startup=_java_startup,
    ),
}

# E2B's SDKs and users also say these.
ALIASES = {"js": "javascript", "ts": "typescript", "sh": "bash", "shell": "bash"}
