"""scripts/launcher.sh, the quickstart's last step: `sluice` usable from any shell afterwards.

Run on a copy of the script in a throwaway checkout whose `.venv/bin/sluice` starts this checkout's
CLI, with HOME in a temporary folder, so nothing of the user's is touched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from controller import __version__

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def _checkout(tmp_path: Path) -> Path:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "launcher.sh", checkout / "scripts" / "launcher.sh")
    venv_bin = checkout / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    script = venv_bin / "sluice"
    script.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m controller.cli.main "$@"\n')
    script.chmod(0o755)
    return checkout


def _launch(checkout: Path, home: Path, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "launcher.sh")],
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": path},
        check=False,
    )


def test_links_into_local_bin_when_it_is_on_path(tmp_path: Path) -> None:
    checkout, home = _checkout(tmp_path), tmp_path / "home"
    path = f"{home}/.local/bin:{SYSTEM_PATH}"
    done = _launch(checkout, home, path)
    link = home / ".local/bin/sluice"
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sluice is on your PATH: {link} -> {checkout}/.venv/bin/sluice\n"
    assert link.is_symlink() and link.resolve() == (checkout / ".venv/bin/sluice").resolve()
    used = subprocess.run(
        ["sh", "-c", "cd / && sluice --version"], capture_output=True, text=True, env={"PATH": path}
    )
    assert used.stdout == f"sluice {__version__}\n", used.stderr
    assert _launch(checkout, home, path).returncode == 0, "running it again replaces its own link"


def test_leaves_a_foreign_file_alone(tmp_path: Path) -> None:
    checkout, home = _checkout(tmp_path), tmp_path / "home"
    (home / ".local/bin").mkdir(parents=True)
    mine = home / ".local/bin/sluice"
    mine.write_text("#!/bin/sh\necho mine\n")
    done = _launch(checkout, home, f"{home}/.local/bin:{SYSTEM_PATH}")
    assert done.returncode == 0
    assert "exists and is not a link, left alone" in done.stdout
    assert mine.read_text() == "#!/bin/sh\necho mine\n"


def test_says_the_path_line_when_local_bin_is_not_on_path(tmp_path: Path) -> None:
    checkout, home = _checkout(tmp_path), tmp_path / "home"
    done = _launch(checkout, home, SYSTEM_PATH)
    assert done.returncode == 0
    assert f'export PATH="{checkout}/.venv/bin:$PATH"' in done.stdout
    assert f"source {checkout}/.venv/bin/activate" in done.stdout
    assert not (home / ".local").exists(), "nothing created"
