import asyncio
from e2b_code_interpreter import AsyncSandbox
from e2bq import E2BToolkit

async def attempt(sid, opts, reads):
    sb = await AsyncSandbox.connect(sid, **opts)
    for p in reads:
        try:
            st = await sb.files.read(p, format="stream")
            async for _ in st: pass
        except Exception as e:
            pass
    try:
        await sb.commands.run("echo hi")
        return "ok"
    except Exception as e:
        return type(e).__name__

def test_probe(toolkit: E2BToolkit) -> None:
    sid = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    opts = toolkit.settings.sdk_options()
    toolkit.run_command("echo x > f.txt")
    for reads in (["/proc/1/environ"], ["/proc/1/environ", "f.txt"], ["f.txt", "/proc/1/environ"], ["/proc/self/status"], ["/proc/1/cmdline"], ["/proc/1/environ", "/proc/1/environ"]):
        print(reads, asyncio.run(attempt(sid, opts, reads)))
