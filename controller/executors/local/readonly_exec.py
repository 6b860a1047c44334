"""Run a program with folders mounted read-only:
`python readonly_exec.py [--chdir DIR] FOLDER AT ... -- PROGRAM ARG...`.

Started by `unshare --mount` (readonly.py), so the mounts below exist only for this program and
its children: each FOLDER is bind-mounted at AT (itself, or an empty folder the step is told to use)
and remounted read-only, CAP_SYS_ADMIN is
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
    chdir = None
    if args[:1] == ["--chdir"] and len(args) > 1:  # where the program starts, once the mounts exist
        chdir, args = args[1], args[2:]
    split = args.index("--") if "--" in args else -1
    if split < 0 or split % 2:
        print("usage: readonly_exec.py [--chdir DIR] FOLDER AT ... -- PROGRAM ARG...", file=sys.stderr)
        return 2
    pairs, argv = args[:split], args[split + 1 :]
    for folder, at in zip(pairs[::2], pairs[1::2], strict=True):
        for mount in (["--bind", folder, at], ["-o", "remount,bind,ro", at, at]):
            done = subprocess.run(["mount", *mount], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"sluice: cannot mount {folder} read-only: {done.stderr.strip()}", file=sys.stderr)
                return 126
    if chdir is not None:
        try:
            os.chdir(chdir)
        except OSError as exc:
            print(f"sluice: cannot enter {chdir}: {exc.strerror}", file=sys.stderr)
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
