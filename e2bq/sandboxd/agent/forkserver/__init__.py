"""A fork server (zygote): agents and kernels forked into jails from one process that imported
them once.

Starting an IPython kernel costs about half a second of CPU and the agent a fifth, most of it
imports, and each one's Python heap is private. sandboxd runs one fork server, started from the
sandbox runtime's interpreter (the same path, the same files, inside every jail) with the jail's
base environment. It imports what a kernel and the agent need, freezes its heap for the garbage
collector, then for every request forks a child that enters the target jail (``enter``) and
becomes the agent (``agent``) or the kernel (``kernel``): the imported code is shared
copy-on-write between every sandbox and the fork server.

Only sandboxd talks to it, over a unix socket in a root-only folder that no jail mounts. The main
loop reads nothing of a request: it accepts and forks, and the child reads, so no sandbox's data
ever lands in the memory that later children inherit.

When templates give each template its own root filesystem, a fork server runs per template,
chrooted into that template's root before it imports anything, so that what it shares is what
that template's jails run.

This package runs under the runtime's Python; it imports only the standard library and the
agent's interpreter modules.
"""
