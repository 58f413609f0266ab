"""Check the package as a user gets it: build it, install the wheel in a fresh virtual
environment, and run the README's quickstart against the installed copy.

``python -m build`` makes the sdist, then the wheel from the sdist (so both are checked). The
wheel must carry the type marker, the licence and the metadata a package index shows; installed
with the ``asyncio`` and ``emulator`` extras into a new virtual environment (dependencies from the
package index), it must run the README's first code block, from a directory outside the
checkout, and print the agent's greeting and reply, and ``polyai-messaging --version`` must
work.

Run: ``python scripts/check_wheel.py [--keep DIR]`` (needs ``build``, ``pip install build``, and
network access to the package index; takes a minute or two). Exit status 0 when all is well.
"""

from __future__ import annotations

import argparse
import email
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
WHEEL_MUST_HOLD = ("polyai_messaging/py.typed", "polyai_messaging/__init__.py")
CLASSIFIERS = ("Framework :: Trio", "Framework :: AsyncIO", "Typing :: Typed")


def run(command: list[str | Path], **options: object) -> str:
    """Run ``command`` without this checkout on the path; its stdout (raises on failure)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [str(part) for part in command],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        **options,  # type: ignore[call-overload]
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"failed ({result.returncode}): {' '.join(map(str, command))}")
    return result.stdout


def build(out: Path) -> tuple[Path, Path]:
    """The sdist and the wheel, built into ``out``."""
    run([sys.executable, "-m", "build", "--outdir", out, ROOT])
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise SystemExit(f"expected one sdist and one wheel, got {sdists + wheels}")
    return sdists[0], wheels[0]


def check_wheel_contents(wheel: Path) -> list[str]:
    """What is wrong with the wheel's files and metadata (nothing, ideally)."""
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(metadata_name))
    problems += [f"the wheel lacks {name}" for name in WHEEL_MUST_HOLD if name not in names]
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in names):
        problems.append("the wheel lacks the licence file")
    if any(name.startswith(("tests/", "docs/", "bench/")) for name in names):
        problems.append("the wheel holds tests, docs or benchmarks")
    if metadata.get("License-Expression") != "MIT":
        problems.append(f"License-Expression is {metadata.get('License-Expression')!r}")
    if metadata.get("Description-Content-Type") != "text/markdown":
        problems.append("the description is not declared as Markdown")
    classifiers = metadata.get_all("Classifier") or []
    problems += [f"classifier {c!r} is missing" for c in CLASSIFIERS if c not in classifiers]
    urls = metadata.get_all("Project-URL") or []
    for label in ("Documentation", "Source", "Changelog"):
        if not any(url.startswith(f"{label}, https://") for url in urls):
            problems.append(f"no {label} URL")
    return problems


def quickstart() -> str:
    """The README's first Python code block."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    return blocks[0]


def check_installed(wheel: Path, where: Path) -> list[str]:
    """Install the wheel in a fresh virtual environment and run the quickstart there."""
    venv = where / "venv"
    run([sys.executable, "-m", "venv", venv])
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    run([python, "-m", "pip", "install", "--quiet", f"{wheel}[asyncio,emulator]"])
    problems = []
    location = run([python, "-c", "import polyai_messaging; print(polyai_messaging.__file__)"])
    if not Path(location.strip()).is_relative_to(venv):
        problems.append(f"polyai_messaging was imported from {location.strip()}")
    output = run([python, "-c", quickstart()], cwd=where, timeout=120).splitlines()
    if len(output) != 2 or not all(line.startswith("Agent: ") for line in output):
        problems.append(f"the quickstart printed {output!r}")
    version = run([python, "-m", "polyai_messaging.cli", "--version"])
    if not version.startswith("polyai-messaging 0."):
        problems.append(f"--version printed {version!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", type=Path, help="build and install here, and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        where = args.keep or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        sdist, wheel = build(where / "dist")
        print(f"built {sdist.name} and {wheel.name}")
        problems = check_wheel_contents(wheel) + check_installed(wheel, where)
    for problem in problems:
        print(f"problem: {problem}")
    if not problems:
        print("the installed wheel runs the README's quickstart")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
