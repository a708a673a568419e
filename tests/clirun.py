"""Run the real `ociasm` command line in a subprocess, as users and CI do."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def run_ociasm(*args: str, cwd: Path, env: dict[str, str] | None = None,
               prefix: tuple[str, ...] = (), timeout: float = 600) -> subprocess.CompletedProcess:
    """`prefix` wraps the command (e.g. setpriv); `env` adds to the current environment."""
    return subprocess.run([*prefix, sys.executable, "-m", "ociasm", *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def single_error(proc: subprocess.CompletedProcess) -> str:
    """The one error line of a failed run (warnings may precede it); asserts the contract."""
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [l for l in proc.stderr.splitlines() if not l.startswith(("warning: ", "["))]
    assert len(errors) == 1 and errors[0].startswith("error: "), proc.stderr
    return errors[0]


def built_digest(proc: subprocess.CompletedProcess) -> str:
    """The manifest digest a successful build prints as its last stdout line: `TAG DIGEST`."""
    assert proc.returncode == 0, proc.stderr
    match = re.fullmatch(r"\S+ (sha256:[0-9a-f]{64})", proc.stdout.strip().splitlines()[-1])
    assert match, proc.stdout
    return match.group(1)
