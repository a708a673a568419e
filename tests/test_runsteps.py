"""`build.run` through the real engine's BuildKit, spliced into a daemonless image: secret
mounts reach only their step and no byte of the secret reaches the result, the cache or the
output; a changed secret re-runs its step; without an engine the build stops before any work."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import secrets
import tarfile
from pathlib import Path

import pytest

from clirun import built_digest, run_ociasm, single_error
from realenv import NO_ENGINE

pytestmark = pytest.mark.real

COG_YAML = """build:
  python_version: "3.11"
  run:
    - "echo built > /etc/marker"
    - command: "sha256sum /run/secrets/tok | cut -c1-16 > /etc/tok.sha"
      mounts:
        - type: secret
          id: tok
          target: /run/secrets/tok
predict: "predict.py:Predictor"
"""


def _blobs(layout: Path) -> list[bytes]:
    """Every blob of an OCI layout, layers decompressed, plus its index."""
    found = [(layout / "index.json").read_bytes()]
    for blob in (layout / "blobs" / "sha256").iterdir():
        data = blob.read_bytes()
        found.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return found


def _files(layout: Path, *names: str) -> dict[str, bytes]:
    """The last version of `names` across the image's layers."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text())
    found: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        data = gzip.decompress((layout / "blobs" / "sha256" / layer["digest"][7:]).read_bytes())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                if member.name in names and member.isreg():
                    found[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return found


def _cache_bytes(cache: Path) -> list[bytes]:
    out = []
    for path in cache.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            out.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return out


def _sha16(value: bytes) -> bytes:
    return hashlib.sha256(value).hexdigest()[:16].encode() + b"\n"


def test_run_steps_with_a_secret(hello: Path, tmp_path: Path, fixture_registry, docker_engine: str,
                                 cache_dir: Path) -> None:
    (hello / "cog.yaml").write_text(COG_YAML)
    token = tmp_path / "token"
    value = f"ociasm-secret-{secrets.token_hex(16)}".encode()
    token.write_bytes(value)

    def build(name: str, *secret: str, env: dict[str, str] | None = None):
        layout = tmp_path / name
        proc = run_ociasm("build", "-t", "runsteps", "--output", f"oci:{layout}", "--progress", "plain",
                          "--registry-mirror", f"docker.io={fixture_registry.host}", "--secret", *secret,
                          cwd=hello, env=env)
        return layout, proc, built_digest(proc)

    layout, proc, first = build("first", f"id=tok,src={token}")
    files = _files(layout, "etc/marker", "etc/tok.sha")
    assert files == {"etc/marker": b"built\n", "etc/tok.sha": _sha16(value)}
    everything = [*_blobs(layout), *_cache_bytes(cache_dir), proc.stdout.encode(), proc.stderr.encode()]
    assert not [data for data in everything if value in data]
    config = next(json.loads(d) for d in _blobs(layout) if d.startswith(b'{"architecture"'))
    assert [h["created_by"] for h in config["history"][-3:-1]] == [
        "RUN echo built > /etc/marker",
        "RUN --mount=type=secret,id=tok,target=/run/secrets/tok sha256sum /run/secrets/tok | cut -c1-16 > /etc/tok.sha"]

    _, again, digest = build("again", f"id=tok,src={token}")
    assert digest == first and "build.run[0]: cached" in again.stderr  # unchanged secret: not re-run

    changed = value + b"-rotated"
    _, rerun, digest = build("rotated", "id=tok,env=OCIASM_TEST_TOKEN",
                             env={"OCIASM_TEST_TOKEN": changed.decode()})
    assert digest != first and "build.run[0]: cached" not in rerun.stderr
    assert _files(tmp_path / "rotated", "etc/tok.sha") == {"etc/tok.sha": _sha16(changed)}
    assert not [d for d in [*_blobs(tmp_path / "rotated"), *_cache_bytes(cache_dir)] if changed in d]


def test_run_without_an_engine_stops_before_any_work(hello: Path, tmp_path: Path, cache_dir: Path) -> None:
    (hello / "cog.yaml").write_text(COG_YAML)
    token = tmp_path / "token"
    token.write_text("x")
    out = tmp_path / "out"
    proc = run_ociasm("build", "--output", f"oci:{out}", "--secret", f"id=tok,src={token}",
                      "--registry-mirror", "docker.io=127.0.0.1:9", cwd=hello, env=NO_ENGINE)
    error = single_error(proc)
    assert error == ("error: cog.yaml:3: build.run[0] `echo built > /etc/marker`, build.run[1] "
                     "`sha256sum /run/secrets/tok | cut -c1-16…` must run in a container (ociasm runs them "
                     "with BuildKit), but no Docker engine answers at unix:///nonexistent/docker.sock "
                     "(start one, or point DOCKER_HOST at one)")
    assert not out.exists() and not [p for p in cache_dir.rglob("*") if p.is_file()]


def test_a_failing_step_is_named(hello: Path, tmp_path: Path, fixture_registry, docker_engine: str) -> None:
    (hello / "cog.yaml").write_text('build:\n  python_version: "3.11"\n  run:\n    - "true"\n'
                                    '    - "echo going wrong; exit 3"\npredict: "predict.py:Predictor"\n')
    proc = run_ociasm("build", "--output", f"oci:{tmp_path / 'out'}", cwd=hello,
                      env={"OCIASM_REGISTRY_MIRRORS": f"docker.io={fixture_registry.host}"})
    error = single_error(proc)
    assert error.startswith("error: build.run[1] `echo going wrong; exit 3` failed in the build container:")
    assert "exit code: 3" in error
    assert not (tmp_path / "out").exists()
