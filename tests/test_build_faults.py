"""Bad input and faults through the real registry: one error line, exit 2, nothing at the output
path, nothing corrupt in the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realenv import NO_ENGINE
from clirun import built_digest, run_ociasm, single_error
from fixtures import base


pytestmark = pytest.mark.real


def build_fails(project: Path, *args: str, env: dict | None = None, prefix: tuple[str, ...] = ()) -> str:
    out = project.parent / "out.tar"
    proc = run_ociasm("build", "--output", f"oci-archive:{out}", *args, cwd=project,
                      env={**NO_ENGINE, **(env or {})}, prefix=prefix)
    line = single_error(proc)
    assert not out.exists() and not [p for p in project.parent.iterdir() if p.name.startswith(".out.tar")]
    return line


def test_unknown_base_tag(hello: Path, fixture_registry) -> None:
    cog_yaml = hello / "cog.yaml"
    cog_yaml.write_text(cog_yaml.read_text().replace('"3.11"', '"3.12"'))
    line = build_fails(hello, "--registry-mirror", f"docker.io={fixture_registry.host}")
    assert "docker.io/library/python:3.12-slim not found" in line


def test_wrong_credentials(hello: Path, tmp_path: Path, auth_registry) -> None:
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps(
        {"auths": {auth_registry.host: {"username": "ociasm", "password": "wrong-password"}}}))
    line = build_fails(hello, "--registry-mirror", f"docker.io={auth_registry.host}",
                       "--insecure-registry", auth_registry.host, env={"DOCKER_CONFIG": str(config)})
    assert "authentication failed" in line and auth_registry.host in line
    assert "wrong-password" not in line


def test_unreachable_registry(hello: Path) -> None:
    line = build_fails(hello, "--registry-mirror", "docker.io=127.0.0.1:9")
    assert "cannot reach registry 127.0.0.1:9" in line


def test_digest_mismatch_never_enters_the_cache(hello: Path, tmp_path: Path, registry_factory,
                                                 base_layout: Path, cache_dir: Path) -> None:
    registry = registry_factory()
    base.push(registry.host, layout=base_layout)
    # Corrupt the base layer where the registry stores it: it serves the bytes as they are.
    index = json.loads((base_layout / "index.json").read_text())
    manifest = json.loads((base_layout / base.blob_path(index["manifests"][0])).read_text())
    layer_hex = manifest["layers"][0]["digest"].split(":")[1]
    stored = next((tmp_path / "registry-0").rglob(f"blobs/sha256/{layer_hex[:2]}/{layer_hex}/data"))
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    line = build_fails(hello, "--registry-mirror", f"docker.io={registry.host}")
    assert layer_hex[:12] in line and "digest" in line
    assert not (cache_dir / "blobs" / "sha256" / layer_hex).exists()
    assert list((cache_dir / "tmp").iterdir()) == []


def test_package_without_a_wheel(hello: Path, fixture_registry) -> None:
    (hello / "requirements.txt").write_text("pyyaml==5.4.1\n")  # sdist only for Python 3.11
    cog_yaml = hello / "cog.yaml"
    cog_yaml.write_text(cog_yaml.read_text().replace(
        'python_version: "3.11"', 'python_version: "3.11"\n  python_requirements: requirements.txt'))
    line = build_fails(hello, "--registry-mirror", f"docker.io={fixture_registry.host}")
    assert line.startswith("error: requirements.txt: package pyyaml has no wheel")


def test_unreadable_file_in_the_project(hello: Path, fixture_registry) -> None:
    (hello / "predict_helper.py").write_text("SECRET = 1\n")
    (hello / "predict_helper.py").chmod(0)
    # Root reads anything; without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH it is held to the file mode.
    no_dac = ("setpriv", "--inh-caps=-dac_override,-dac_read_search",
              "--bounding-set=-dac_override,-dac_read_search")
    line = build_fails(hello, "--registry-mirror", f"docker.io={fixture_registry.host}", prefix=no_dac)
    assert "cannot read" in line and "predict_helper.py: permission denied" in line


def test_fault_free_build_after_failures_uses_a_clean_cache(hello: Path, fixture_registry) -> None:
    """A failed build leaves the cache usable: the next build succeeds."""
    build_fails(hello, "--registry-mirror", "docker.io=127.0.0.1:9")
    built_digest(run_ociasm("build", "--output", f"oci-archive:{hello.parent / 'ok.tar'}",
                            "--registry-mirror", f"docker.io={fixture_registry.host}", cwd=hello, env=NO_ENGINE))
