"""``e2bq sandboxd``: a local sandbox host that speaks E2B's wire protocol.

The unmodified e2b SDK drives it with ``E2B_API_URL=E2B_SANDBOX_URL=http://HOST:PORT`` and
``E2B_API_KEY=<its key>``. Its code, from the network in to the sandbox:

- ``http/``: the HTTP front: E2B's control plane, and the data-plane proxy to each sandbox's agent.
- ``lifecycle/``: the live sandboxes: create, look up, extend, expire and kill them; the warm pool;
  the ports a sandbox publishes.
- ``jail/``: one bubblewrap jail per sandbox and what bounds it: cgroups, a disk image, the network
  fence, seccomp, the limits themselves.
- ``agent/``: the program each jail runs, envd and the code interpreter. It imports nothing from the
  rest of e2bq: only that folder is mounted into the jail.

Beside them: ``cli`` (the ``sandboxd`` command), ``settings``, ``metrics``, ``doctor`` (what the host
needs) and ``runtime`` (the Python environment every sandbox sees read-only).
"""
