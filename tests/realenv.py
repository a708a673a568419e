"""What tests that use real components share: CI's fail-not-skip rule, the sample models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import fixtures

IN_CI = os.environ.get("CI") == "true"
MODELS = Path(fixtures.__file__).parent / "models"
# An engine address nothing answers at: proves a build needs no daemon.
NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def unavailable(reason: str) -> None:
    """Fail under CI, skip elsewhere: a real component the test needs is missing."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: .ci/run must provide it)", pytrace=False)
    pytest.skip(reason)  # outside CI only: under CI=true the line above failed the test


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        unavailable(f"missing {', '.join(missing)} (run scripts/setup-env.sh)")


def copy_model(name: str, parent: Path) -> Path:
    project = parent / name
    shutil.copytree(MODELS / name, project)
    return project
