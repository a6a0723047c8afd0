"""``e2bq mcp``: the toolkit as a Model Context Protocol server (needs the ``e2bq[mcp]`` extra).

``server`` maps the toolkit's tools to MCP tools and its background jobs to resources
(``jobs`` follows their ends), ``transports`` serves it over stdio or streamable HTTP, ``run``
builds it from the environment, and ``command`` is the click command, importable without the
``mcp`` package.
"""
