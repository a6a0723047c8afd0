"""The in-sandbox agent: envd (processes, filesystem, /files) and the code interpreter.

It runs inside a sandbox's jail as the sandbox's user, serving HTTP on a unix socket that sandboxd
proxies to. Every path it touches is a path inside the jail, so the files API cannot reach the host.
It imports nothing from the rest of e2bq: only this folder is mounted into the jail, where it is the
top-level package ``agent`` (``from agent.supervisor import start; start("agent.server")``).

- ``envd/``: E2B's envd API: processes, the filesystem service, file downloads and uploads.
- ``interpreter/``: E2B's code interpreter: ``/execute`` and ``/contexts``, one IPython kernel each.
- ``server``: both on one socket; ``forward``: TCP streams to servers listening inside the sandbox;
  ``supervisor``: the agent started again when code in the sandbox kills it.
- ``config`` (what sandboxd tells the agent), ``errors`` (the agent's one error root), ``paths``
  (user paths resolved inside the sandbox) and ``oom`` (user code, never the agent, goes first when
  memory runs out): shared by both halves.
"""
