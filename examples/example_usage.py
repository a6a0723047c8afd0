"""The API reference's "Example Usage", run as written (only the import line changed), then checked.

Run it against the embedded default: ``e2bq up -- python examples/example_usage.py``.
"""

from __future__ import annotations

import time

import httpx

from e2bq import E2BToolkit, SandboxManager

# Initialize
manager = SandboxManager(api_key="your_api_key", default_timeout=360)
toolkit = E2BToolkit(manager, auto_create_default=True)

# Execute Python code
result = toolkit.run_python_code(
    code="""
import matplotlib.pyplot as plt
plt.plot([1, 2, 3], [4, 5, 6])
plt.savefig('chart.png')
"""
)

# Run a web server
server = toolkit.run_server(
    command="python -m http.server 8000",
    port=8000
)
print(f"Server URL: {server['url']}")

# Background job
job = toolkit.run_command_background("pip install pandas")
status = toolkit.get_job_status(job["job_id"])

# --- What happened -------------------------------------------------------------------------------
print(f"run_python_code: {result['status']}")
saved = toolkit.download_file_from_sandbox("chart.png", local_path="chart.png")
print(f"chart.png saved locally: {saved['status']}, {saved.get('size')} bytes")
page = httpx.get(server["url"], timeout=10)
print(f"GET {server['url']} -> {page.status_code}, lists chart.png: {'chart.png' in page.text}")
print(f"background job {job['job_id']}: {status['status']} ({status.get('state')})")
deadline = time.monotonic() + 300
while status["status"] == "running" and time.monotonic() < deadline:
    time.sleep(0.5)
    status = toolkit.get_job_status(job["job_id"])
last_line = status.get("output", "").strip().splitlines()[-1:]
print(f"background job ended: {status['status']}; last output: {last_line}")
print(f"sandboxes: {[s['sandbox_id'] for s in toolkit.list_managed_sandboxes()['sandboxes']]}")
print(f"kill server job: {toolkit.kill_job(server['job_id'])['status']}")
print(f"shutdown: {toolkit.shutdown_all_sandboxes()['status']}")
