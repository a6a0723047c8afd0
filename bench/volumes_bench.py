"""sandboxd's volumes through the unmodified SDK, each figure beside its baseline in the same run.

- ``Volume.create`` (a sparse ext4 image formatted and mounted) beside ``Volume.list`` (the HTTP floor).
- ``Sandbox.create`` mounting a volume beside one mounting none (both launched cold, no warm pool,
  taken in alternating order).
- 8 MiB through the volume content API (``write_file``/``read_file``) beside the same bytes through
  the sandbox's own files API (envd).
- Inside a sandbox, 64 MiB written with ``dd ... conv=fsync`` to the volume beside its home (both
  ext4 images on loop devices).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable

from common import header, host, ms, pct, row, summary
from targets import Figures


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", default=None, help="write the figures to this file (merged)")
    args = parser.parse_args()
    figures = Figures()

    from e2b import Volume
    from e2b_code_interpreter import Sandbox

    with host():
        header("sandboxd: volumes (unmodified e2b SDK → local host)")
        creates, lists, made = [], [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            made.append(Volume.create(f"bench-{uuid.uuid4().hex[:8]}"))
            creates.append(time.perf_counter() - start)
            lists.append(timed(Volume.list))
        floor = f"Volume.list: p50 {ms(pct(lists, 50))}"
        row("Volume.create (1 GiB sparse ext4 image)", summary(creates), floor)
        figures.record("volume_create_p50", pct(creates, 50))

        vol = made[0]
        with_mount: list[float] = []
        without: list[float] = []
        for turn in range(2 * args.rounds):  # alternated, each first half the time: order matters here
            first = (turn // 2 + turn) % 2 == 0
            mounts = {"volume_mounts": {"/mnt/v": vol}} if first else {}
            start = time.perf_counter()
            sandbox = Sandbox.create(timeout=120, **mounts)
            (with_mount if first else without).append(time.perf_counter() - start)
            sandbox.kill()
        plain = f"none mounted: p50 {ms(pct(without, 50))}"
        row("Sandbox.create, a volume mounted", summary(with_mount), plain)

        payload = bytes(range(256)) * (8 * 4096)  # 8 MiB
        sandbox = Sandbox.create(volume_mounts={"/mnt/v": vol}, timeout=600)
        api_write, api_read, envd_write, envd_read = [], [], [], []
        for _ in range(args.rounds):
            api_write.append(timed(lambda: vol.write_file("/blob", payload)))
            api_read.append(timed(lambda: vol.read_file("/blob", format="bytes")))
            envd_write.append(timed(lambda: sandbox.files.write("/home/user/blob", payload)))
            envd_read.append(timed(lambda: sandbox.files.read("/home/user/blob", format="bytes")))
        envd = f"sandbox files.write: p50 {ms(pct(envd_write, 50))}"
        row("8 MiB volume write_file", summary(api_write), envd)
        row("8 MiB volume read_file", summary(api_read), f"sandbox files.read: p50 {ms(pct(envd_read, 50))}")

        to_volume, to_home = [], []
        dd = "dd if=/dev/zero of={} bs=1M count=64 conv=fsync status=none && rm {}"
        for _ in range(args.rounds):
            to_volume.append(timed(lambda: sandbox.commands.run(dd.format("/mnt/v/dd", "/mnt/v/dd"))))
            to_home.append(timed(lambda: sandbox.commands.run(dd.format("/home/user/dd", "/home/user/dd"))))
        row("64 MiB dd+fsync into the volume", summary(to_volume), f"into home: p50 {ms(pct(to_home, 50))}")
        sandbox.kill()
        for each in made:
            Volume.destroy(each.volume_id)
    figures.dump(args.json)


if __name__ == "__main__":
    main()
