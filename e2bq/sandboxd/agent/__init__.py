"""The in-sandbox agent: envd (processes, filesystem, /files) and the code interpreter.

It runs inside a sandbox's jail as the sandbox's user, serving HTTP on a unix socket that sandboxd
proxies to. Every path it touches is a path inside the jail, so the files API cannot reach the host.
It imports nothing from the rest of e2bq: only this folder is mounted into the jail.
"""
