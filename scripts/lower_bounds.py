"""Check that the lower bounds in ``pyproject.toml`` are true: run the suite on exactly them.

Creates a fresh virtual environment, installs every runtime dependency (and every extra but
``test``) at the version its ``>=`` bound names, the test tools at their latest, the project
itself without dependencies, and runs ``python -m pytest -q`` there.

Run: ``python scripts/lower_bounds.py [--keep DIR] [PYTEST ARGS...]`` (needs network access to the
package index; takes a few minutes).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_BOUND = re.compile(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][^,;\s]*)\s*$")


def pinned(requirements: list[str]) -> list[str]:
    """``name>=X`` requirements as ``name==X`` (others, such as the project's own extras,
    left out)."""
    out = []
    for requirement in requirements:
        match = _BOUND.match(requirement)
        if match is not None and not match.group(1).startswith("polyai-messaging"):
            out.append(f"{match.group(1)}=={match.group(2)}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="build the environment here and keep it")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest")
    args = parser.parse_args()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    minimum = pinned(project["dependencies"])
    for name, requirements in extras.items():
        if name != "test":
            minimum += pinned(requirements)
    tools = [r for r in extras["test"] if not r.startswith("polyai-messaging")]
    with tempfile.TemporaryDirectory() as scratch:
        venv = args.keep or Path(scratch) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        pip = [python, "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *minimum, *tools], check=True)
        subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
        print("installed:", " ".join(minimum), flush=True)
        return subprocess.run(
            [python, "-m", "pytest", "-q", *args.pytest_args], cwd=ROOT, check=False
        ).returncode


if __name__ == "__main__":
    sys.exit(main())
