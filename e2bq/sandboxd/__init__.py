"""``e2bq sandboxd``: a local sandbox host that speaks E2B's wire protocol.

The unmodified e2b SDK drives it with ``E2B_API_URL=E2B_SANDBOX_URL=http://HOST:PORT`` and
``E2B_API_KEY=<its key>``. Each sandbox is a bubblewrap jail running an agent (``agent/``).
"""
