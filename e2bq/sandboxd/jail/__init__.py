"""What walls in one sandbox: the bubblewrap jail and the limits the host enforces around it.

- ``bwrap``: the bwrap command line: namespaces, the allow-listed root, the sandbox's folders.
- ``cgroups``: memory, process count and CPU share per sandbox (cgroup v1 or v2).
- ``disk``: an ext4 image per sandbox, its writable space and its disk limit.
- ``network``: outbound internet through slirp4netns, behind a firewall that fences the host off.
- ``limits``: the limits themselves: host-wide defaults and what a sandbox may ask for.
- ``seccomp_policy``: the system calls refused inside, compiled to BPF when the runtime is built.
"""
