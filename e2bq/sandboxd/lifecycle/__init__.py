"""The life of a sandbox on this host: created, looked up, extended, expired and killed.

- ``sandboxes``: every live sandbox of one sandboxd, with its tokens, lifetime and agent client.
- ``launcher``: starts a jail with everything around it (disk, cgroups, network) and ends it.
- ``pool``: jails launched ahead of need, so that a create answers at once.
- ``ports``: servers inside a sandbox published at a URL the caller can reach.
"""
