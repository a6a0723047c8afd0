"""A folder of the agent's own inside the sandbox, whatever the sandbox's code left at its path.

The kernels' folder sits in the sandbox's ``/tmp``, where its code may have put a file or a symlink
(to ``/etc``, say) before a filesystem pause: the folder must be a real one, the agent's, 0700.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path


def private_folder(path: Path) -> Path:
    """Make ``path`` a real folder owned by this process's uid, mode 0700; replace what stands there
    otherwise (never following a symlink). Raises OSError if that cannot be done."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None and (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()):
        with contextlib.suppress(FileNotFoundError):  # the kernel and the agent may both be at it
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(path)
            else:
                path.unlink()
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    return path
