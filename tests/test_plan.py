"""`ociasm plan`: what a build would do, from manifests and cache records only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realenv import NO_ENGINE
from clirun import built_digest, run_ociasm


pytestmark = pytest.mark.real


def plan(project: Path, registry) -> dict:
    proc = run_ociasm("plan", "--json", "--progress", "quiet", "--registry-mirror", f"docker.io={registry.host}",
                      cwd=project, env=NO_ENGINE)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_plan_fetches_nothing_and_tracks_the_cache(hello: Path, tmp_path: Path, fixture_registry,
                                                   cache_dir: Path) -> None:
    project = hello
    cold = plan(project, fixture_registry)
    assert cold["base"]["digest"] == fixture_registry.base_digest
    assert cold["base"]["reference"] == "docker.io/library/python:3.11-slim"
    assert [l["cached"] for l in cold["base"]["layers"]] == [False]
    assert [(l["name"], l["cached"]) for l in cold["layers"]] == [
        ("tini", None), ("dependencies", None), ("ldconfig", None), ("code", None)]
    assert not list((cache_dir / "blobs" / "sha256").iterdir())  # manifests only: no blob fetched

    built_digest(run_ociasm("build", "--output", f"oci:{tmp_path / 'out'}", "--registry-mirror",
                            f"docker.io={fixture_registry.host}", cwd=project, env=NO_ENGINE))
    warm = plan(project, fixture_registry)
    assert [l["cached"] for l in warm["base"]["layers"]] == [True]
    assert [(l["name"], l["cached"]) for l in warm["layers"]] == [
        ("tini", None), ("dependencies", True), ("ldconfig", None), ("code", True)]
    assert warm["layers"][1]["inputs"]["site_dir"] == "/usr/local/lib/python3.11/dist-packages"

    (project / "predict.py").write_text((project / "predict.py").read_text() + "# edit\n")
    edited = plan(project, fixture_registry)
    assert [(l["name"], l["cached"]) for l in edited["layers"]] == [
        ("tini", None), ("dependencies", True), ("ldconfig", None), ("code", False)]
