"""envd, E2B's in-sandbox daemon, on the envd port (49983) as the e2b SDK calls it.

- ``connect``: the Connect protocol (JSON codec) the process and filesystem services speak.
- ``process``: ``process.Process``: start, reconnect, list, feed and signal processes.
- ``filesystem``: ``filesystem.Filesystem``: stat, list, make, move, remove and watch paths, with
  ``entries`` (``EntryInfo`` from ``lstat``) and ``watch`` (directory snapshots compared).
- ``files``: plain-HTTP ``GET``/``POST /files``, streamed to disk by ``upload``.
"""
