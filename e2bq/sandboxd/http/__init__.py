"""sandboxd's HTTP front: one ASGI app on one origin, as ``E2B_API_URL = E2B_SANDBOX_URL`` expects.

- ``app``: routes a request to the data plane when it names a sandbox, to the control plane else.
- ``control``: E2B's control plane (``X-API-KEY``): create, list, inspect, extend, kill sandboxes.
- ``proxy``: the data plane: checks a sandbox's token, streams the request to its agent and back.
- ``server``: uvicorn serving the app until SIGTERM.
"""
