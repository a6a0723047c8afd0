"""Sandboxes on a built template beside sandboxes on the host's system folders, in the same run.

A cold create (no warm pool) followed by the sandbox's first ``run_code``, alternating between a
built template (``--template``, from ``--templates-dir``) and the host's own system folders (the
built-in name ``code-interpreter``, with no build of that name); then the memory of idle sandboxes
of each kind, and the disk a sandbox's own layer takes. Skipped, saying so, when the template is not
built: ``e2bq template build base`` first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from common import header, host, row, summary
from sandboxd_bench import jail_memory_kib

HOST_ROOT = "code-interpreter"  # built in: served on the host's system folders while not built


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--templates-dir", default=os.environ.get("E2BQ_SANDBOXD_TEMPLATES_DIR", "/var/lib/e2bq/templates")
    )
    parser.add_argument("--template", default="base")
    parser.add_argument("--creates", type=int, default=20, help="cold creates of each kind, alternating")
    parser.add_argument("--idle", type=int, default=10, help="idle sandboxes of each kind measured")
    args = parser.parse_args()
    folder = Path(args.templates_dir)
    if not (folder / args.template / "template.json").is_file() or (folder / HOST_ROOT).exists():
        print(
            f"\n(template bench skipped: no template {args.template!r} built in {folder}; "
            f"`e2bq template build {args.template}` first)"
        )
        return
    os.environ["E2BQ_SANDBOXD_TEMPLATES_DIR"] = str(folder)

    from e2b_code_interpreter import Sandbox

    with host("--warm-pool", "0", "--max-sandboxes", str(2 * args.idle + 5)) as running:
        header(
            f"sandboxd: a sandbox on template {args.template!r} (its own root) vs the host's system folders"
        )
        Sandbox.create(template=HOST_ROOT, timeout=60).kill()
        samples: dict[str, list[float]] = {args.template: [], HOST_ROOT: []}
        for _ in range(args.creates):
            for name in samples:
                start = time.perf_counter()
                sandbox = Sandbox.create(template=name, timeout=60)
                sandbox.run_code("1 + 1")
                samples[name].append(time.perf_counter() - start)
                sandbox.kill()
        row("cold create + first run_code", summary(samples[args.template]), summary(samples[HOST_ROOT]))
        for name in (args.template, HOST_ROOT):
            idle = [Sandbox.create(template=name, timeout=120) for _ in range(args.idle)]
            for sandbox in idle:
                sandbox.run_code("1 + 1")
            time.sleep(2)
            kib = [jail_memory_kib(running.state_dir, sandbox.sandbox_id) for sandbox in idle]
            if name == args.template:
                idle[0].commands.run("python3 -c 'print(1)' >/dev/null")
                system = running.state_dir / idle[0].sandbox_id / "data" / "system"
                layer = sum(path.lstat().st_blocks * 512 for path in system.rglob("*"))
            for sandbox in idle:
                sandbox.kill()
            memory = f"{statistics.median(kib) / 1024:.1f} MiB"
            if name == args.template:
                template_memory = memory
            else:
                row(f"idle memory per sandbox (PSS, median of {args.idle})", template_memory, memory)
        sandbox = Sandbox.create(template=args.template, timeout=120)
        first_root = time.perf_counter()
        sandbox.commands.run("true", user="root")  # the first brings the root broker in
        first_root = time.perf_counter() - first_root
        root, user = [], []
        for _ in range(args.creates):
            for who, samples_of in (("root", root), ("user", user)):
                start = time.perf_counter()
                sandbox.commands.run("true", user=who)
                samples_of.append(time.perf_counter() - start)
        sandbox.kill()
        row('`commands.run("true", user="root")`', summary(root), f"as user: {summary(user)}")
        row("first root command of a sandbox (the broker forked in)", f"{first_root * 1000:.0f} ms", "")
        row(
            "disk of a new sandbox's own root layer",
            f"{layer / 1024:.0f} KiB",
            "the template: shared, counted once",
        )


if __name__ == "__main__":
    main()
