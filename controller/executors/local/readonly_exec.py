"""Run a program with some folders read-only: `python readonly_exec.py FOLDER... -- PROGRAM ARG...`.

Started by `unshare --mount` (readonly.py), so the mounts below exist only for this program and
its children: each FOLDER is bind-mounted onto itself and remounted read-only, CAP_SYS_ADMIN is
dropped from the bounding set (even as root the program cannot remount it writable), then the
program replaces this process (same pid, same process group: a timeout still kills it). Standard
library only: it runs under `python -I` with nothing of the step's environment.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

PR_CAPBSET_DROP = 24  # prctl(2)
CAP_SYS_ADMIN = 21  # capability.h: what mount(2) needs


def main(args: list[str]) -> int:
    if "--" not in args:
        print("usage: readonly_exec.py FOLDER... -- PROGRAM ARG...", file=sys.stderr)
        return 2
    split = args.index("--")
    folders, argv = args[:split], args[split + 1 :]
    for folder in folders:
        for mount in (["--bind", folder, folder], ["-o", "remount,bind,ro", folder, folder]):
            done = subprocess.run(["mount", *mount], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"sluice: cannot make {folder} read-only: {done.stderr.strip()}", file=sys.stderr)
                return 126
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0:
        print(f"sluice: cannot drop CAP_SYS_ADMIN: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 126
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"sluice: cannot start {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
