"""`ociasm build` through the real components: loopback registry, Docker engine, Cog runtime,
skopeo and umoci. Each test runs the real CLI in a subprocess with its own cache."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import requests

from realenv import NO_ENGINE, copy_model
from clirun import built_digest, run_ociasm
from fixtures import engine


pytestmark = pytest.mark.real


def mirror(registry) -> tuple[str, str]:
    return ("--registry-mirror", f"docker.io={registry.host}")


def layer_tars(layout: Path) -> list[bytes]:
    """Every layer of the single image in an OCI layout, uncompressed."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]))
    return [gzip.decompress(_blob(layout, l["digest"])) if l["mediaType"].endswith("gzip")
            else _blob(layout, l["digest"]) for l in manifest["layers"]]


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def test_daemonless_build_to_oci_layout_is_valid(hello: Path, tmp_path: Path, fixture_registry) -> None:
    layout = tmp_path / "out"
    proc = run_ociasm("build", "-t", "hello", "--output", f"oci:{layout}", *mirror(fixture_registry),
                      cwd=hello, env=NO_ENGINE)
    built_digest(proc)
    # umoci verifies every blob against its digest while unpacking, and applies the layers.
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", str(bundle)], check=True,
                   capture_output=True)
    rootfs = bundle / "rootfs"
    assert (rootfs / "src" / "predict.py").read_text() == (hello / "predict.py").read_text()
    assert json.loads((rootfs / "src" / ".cog" / "openapi_schema.json").read_text())["components"]["schemas"]["Input"]
    site = rootfs / "usr/local/lib/python3.11/dist-packages"
    assert list(site.glob("cog-*.dist-info"))
    assert not list(site.rglob("*.pyc")) and not list(site.rglob("__pycache__"))  # nothing host-compiled
    assert (rootfs / "usr/local/bin/normalizer").read_text().splitlines()[0] == "#!/usr/bin/python3.11"
    # skopeo copy re-verifies every layer it copies.
    subprocess.run(["skopeo", "copy", f"oci:{layout}:latest", f"dir:{tmp_path / 'copy'}"], check=True,
                   capture_output=True)
    config = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"oci:{layout}:latest"],
                                       check=True, capture_output=True, text=True).stdout)["config"]
    assert config["Cmd"] == ["python", "-m", "cog.server.http"] and config["WorkingDir"] == "/src"
    assert "COG_PREDICT_TYPE_STUB=predict.py:Predictor" in config["Env"]
    labels = config["Labels"]
    assert labels["run.cog.has_init"] == "true" and labels["run.cog.version"]
    assert json.loads(labels["run.cog.config"])["predict"] == "predict.py:Predictor"
    assert "cog==" in labels["run.cog.pip_freeze"]


def test_without_engine_and_output_writes_an_oci_archive(hello: Path, fixture_registry) -> None:
    proc = run_ociasm("build", "-t", "hello", *mirror(fixture_registry), cwd=hello, env=NO_ENGINE)
    built_digest(proc)
    assert "writing oci-archive:hello.tar" in proc.stderr
    with tarfile.open(hello / "hello.tar") as tar:
        assert {"index.json", "manifest.json", "oci-layout"} <= set(tar.getnames())


def test_dockerignored_files_are_in_no_layer(hello: Path, tmp_path: Path, fixture_registry) -> None:
    (hello / "data" / "cache" / "part.tmp").write_text("IGNORED-TMP-CONTENT")
    layout = tmp_path / "out"
    built_digest(run_ociasm("build", "--output", f"oci:{layout}", *mirror(fixture_registry),
                            cwd=hello, env=NO_ENGINE))
    ours = layer_tars(layout)[-1:]  # the base cannot contain them; scan what we wrote
    names: set[str] = set()
    for data in layer_tars(layout):
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names |= set(tar.getnames())
    for secret in (b"not-a-real-secret", b"a log line", b"IGNORED-TMP-CONTENT"):
        assert all(secret not in data for data in ours), secret
    assert not {"src/secret.txt", "src/debug.log", "src/data/cache/part.tmp"} & names
    assert {"src/data/greeting.txt", "src/predict.py"} <= names


def test_same_inputs_same_digest_with_cache_kept_or_cleared(hello: Path, tmp_path: Path,
                                                             fixture_registry, cache_dir: Path) -> None:
    def build(name: str) -> str:
        return built_digest(run_ociasm("build", "--output", f"oci-archive:{tmp_path / name}",
                                       *mirror(fixture_registry), cwd=hello, env=NO_ENGINE))

    first = build("a.tar")
    assert build("b.tar") == first                 # cache kept
    shutil.rmtree(cache_dir)
    assert build("c.tar") == first                 # cache cleared: everything rebuilt
    (hello / "predict.py").write_text((hello / "predict.py").read_text() + "\n# changed\n")
    assert build("d.tar") != first


def test_engine_load_serves_predictions_and_given_schema(hello: Path, fixture_registry,
                                                         docker_engine: str) -> None:
    tag = "ociasm-test-hello:e2e"
    given = json.loads((hello / "openapi_schema.json").read_text())
    proc = run_ociasm("build", "-t", tag, "--openapi-schema", "openapi_schema.json",
                      *mirror(fixture_registry), cwd=hello)
    built_digest(proc)
    assert "loaded ociasm-test-hello:e2e into the Docker engine" in proc.stderr
    try:
        with engine.serve(tag) as model:
            answer = model.predict({"text": "world", "times": 2})
            assert answer.status_code == 200, answer.text
            assert answer.json()["output"] == "hello world hello world"
            served = requests.get(f"{model.url}/openapi.json", timeout=10).json()
            assert served["components"]["schemas"]["Input"] == given["components"]["schemas"]["Input"]
    finally:
        engine.docker("rmi", "-f", tag)


def test_oci_archive_loads_with_docker_load(hello: Path, tmp_path: Path, fixture_registry,
                                            docker_engine: str) -> None:
    archive = tmp_path / "hello.tar"
    built_digest(run_ociasm("build", "-t", "ociasm-test-archive:1", "--output", f"oci-archive:{archive}",
                            *mirror(fixture_registry), cwd=hello, env=NO_ENGINE))
    out = engine.docker("load", "-i", str(archive))
    try:
        assert "ociasm-test-archive:1" in out
        assert engine.docker("run", "--rm", "--entrypoint", "cat", "ociasm-test-archive:1",
                             "/src/data/greeting.txt").strip() == "hello"
    finally:
        engine.docker("rmi", "-f", "ociasm-test-archive:1")


def test_numpy_requirements_predict(tmp_path: Path, fixture_registry, docker_engine: str) -> None:
    project = copy_model("numpy", tmp_path)
    tag = "ociasm-test-numpy:e2e"
    built_digest(run_ociasm("build", "-t", tag, *mirror(fixture_registry), cwd=project))
    try:
        with engine.serve(tag) as model:
            answer = model.predict({"n": 100})
            assert answer.status_code == 200, answer.text
            assert answer.json()["output"] == 4950
    finally:
        engine.docker("rmi", "-f", tag)
