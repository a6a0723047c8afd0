"""The seccomp filter every process in a sandbox runs under, compiled to raw BPF for bwrap.

Run by the sandbox runtime's Python (which sees Debian's python3-seccomp) when the runtime is
built: ``python seccomp_policy.py OUT.bpf``. Denied calls fail with EPERM; other architectures'
system calls (a 32-bit ``int 0x80`` on x86-64) kill the process.
"""

from __future__ import annotations

import contextlib
import errno
import sys

DENIED = (
    # mounts and filesystems
    "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr", "quotactl", "swapon", "swapoff",
    # namespaces (new user namespaces above all) and joining others
    "unshare", "setns",
    # the kernel's attack surface and other processes
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "ptrace",
    "process_vm_readv", "process_vm_writev", "kcmp", "open_by_handle_at", "name_to_handle_at",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "acct", "iopl", "ioperm", "lookup_dcookie", "syslog", "vhangup", "uselib", "nfsservctl",
    # the host's clock
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
)
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
TIOCSTI = 0x5412


def build(path: str) -> None:
    import seccomp

    policy = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED:
        # a call this kernel or libseccomp does not know cannot be made either
        with contextlib.suppress(RuntimeError, ValueError):
            policy.add_rule(seccomp.ERRNO(errno.EPERM), name)
    for flag in NAMESPACE_FLAGS:  # clone() making a namespace
        policy.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory a filter cannot read: make libc fall back to clone()
    policy.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    terminal_injection = seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, TIOCSTI)
    policy.add_rule(seccomp.ERRNO(errno.EPERM), "ioctl", terminal_injection)
    with open(path, "wb") as out:
        policy.export_bpf(out)


if __name__ == "__main__":
    build(sys.argv[1])
