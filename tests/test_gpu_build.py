"""GPU models and cog-base images through the real CLI, loopback registries and the Docker engine.

The bases are synthetic (fixtures/cuda.py): `nvidia/cuda:<tag>` is a Debian rootfs without Python,
pushed under that name into a loopback registry reached through the mirror option; the interpreter
archive is served by a loopback HTTP server; cog-base images live in a registry named by
COG_REGISTRY_HOST. torch wheels cannot be downloaded here, so torch-pinned models are checked
through `plan`, and the engine test uses a model without torch.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from clirun import built_digest, run_ociasm, single_error
from fixtures import base, cuda, engine
from fixtures.registry import free_port, start_registry
from realenv import NO_ENGINE, copy_model, require_tools

pytestmark = pytest.mark.real

TORCH_INDEX = "--extra-index-url https://download.pytorch.org/whl/cu121/"
# Nothing listens here: the default cog-base attempt must fail fast, and no wheel index may be used.
DEAD = f"127.0.0.1:{free_port()}"
NO_WHEELS = {"UV_INDEX_URL": f"http://{DEAD}/simple", "UV_DEFAULT_INDEX": f"http://{DEAD}/simple",
             "PIP_INDEX_URL": f"http://{DEAD}/simple"}
FALLBACK_WARNING = "warning: Could not find a suitable base image, continuing without base image support"


@pytest.fixture(scope="module")
def cuda_registry(tmp_path_factory: pytest.TempPathFactory, base_layout: Path):
    """A loopback registry with library/python:3.11-slim and the synthetic nvidia/cuda tags."""
    require_tools("skopeo", "docker-registry", "mmdebstrap")
    with start_registry(tmp_path_factory.mktemp("cuda-registry")) as registry:
        base.push(registry.host, layout=base_layout)
        cuda.push_cuda(registry.host)
        yield registry


@pytest.fixture(scope="module")
def python_archive() -> str:
    """OCIASM_PYTHON_ARCHIVE for the fixture interpreter, served over loopback HTTP."""
    archive = cuda.build_python_archive()
    with cuda.serve_directory(archive.parent) as url:
        yield f"{url}/{archive.name}#sha256={cuda.sha256_file(archive)}"


def gpu_model(project: Path, requirements: str = "") -> Path:
    lines = ['build:', '  gpu: true', '  python_version: "3.11"']
    if requirements:
        lines.append("  python_requirements: requirements.txt")
        (project / "requirements.txt").write_text(requirements)
    (project / "cog.yaml").write_text("\n".join([*lines, 'predict: "predict.py:Predictor"', ""]))
    return project


def ociasm(project: Path, registry, *args: str, env: dict[str, str] | None = None):
    """The CLI with the registry as Docker Hub's mirror and no reachable cog-base registry by default;
    a daemonless run unless the command loads into the engine."""
    engine_env = {} if "docker" in args else NO_ENGINE
    return run_ociasm(*args, "--progress", "plain", "--registry-mirror", f"docker.io={registry.host}",
                      cwd=project, env={"COG_REGISTRY_HOST": DEAD, **engine_env, **(env or {})})


def base_diff_ids() -> list[str]:
    layout = base.build_layout()
    blob = lambda digest: json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    return blob(blob(base.manifest_digest(layout))["config"]["digest"])["rootfs"]["diff_ids"]


def test_plan_shows_cuda_base_and_torch_index_without_any_wheel(hello: Path, cuda_registry, cache_dir: Path) -> None:
    project = gpu_model(hello, "torch==2.3\n")
    proc = ociasm(project, cuda_registry, "plan", "--json", env=NO_WHEELS)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["base"]["reference"] == "docker.io/nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04"
    assert plan["base"]["cog_base"] is False
    assert plan["cuda"] == {"cuda": "12.1", "cudnn": "8"}
    assert plan["indexes"] == [TORCH_INDEX]
    assert [l["name"] for l in plan["layers"]] == ["tini", "python", "dependencies", "ldconfig", "code"]
    assert plan["layers"][2]["inputs"]["requirements"] == [TORCH_INDEX, "torch==2.3.1"]
    assert plan["layers"][1]["inputs"]["version"] == "3.11.14"
    assert FALLBACK_WARNING in proc.stderr and "cog-base:cuda12.1-python3.11-torch2.3.1" not in proc.stdout
    assert not list((cache_dir / "blobs" / "sha256").glob("*"))  # manifests only

    text = ociasm(project, cuda_registry, "plan", env=NO_WHEELS)
    assert text.returncode == 0, text.stderr
    assert "base   docker.io/nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04" in text.stdout
    assert f"index  {TORCH_INDEX}" in text.stdout


@pytest.mark.parametrize("requirements, args, message", [
    ("torch\n", (), "error: cog.yaml:4: torch version must be specified when using CUDA"),
    ("torch==0.4.1\n", (), "error: cog.yaml:4: cog doesn't know what CUDA version is compatible with torch==0.4.1"),
    ("", ("--use-cog-base-image", "--use-cuda-base-image", "false"),
     "error: The flags --use-cog-base-image and --use-cuda-base-image are mutually exclusive"),
    ("", ("--use-cuda-base-image", "maybe"), "error: --use-cuda-base-image 'maybe': expected auto, true or false"),
])
def test_gpu_errors_are_one_line(hello: Path, requirements: str, args: tuple[str, ...], message: str) -> None:
    proc = run_ociasm("plan", *args, cwd=gpu_model(hello, requirements), env=NO_ENGINE)
    assert single_error(proc).startswith(message)


def test_cuda_base_false_builds_gpu_models_on_python_slim(hello: Path, cuda_registry) -> None:
    proc = ociasm(gpu_model(hello), cuda_registry, "plan", "--json", "--use-cuda-base-image", "false")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["base"]["reference"] == "docker.io/library/python:3.11-slim"
    assert [l["name"] for l in plan["layers"]] == ["tini", "dependencies", "ldconfig", "code"]


def test_gpu_model_on_a_cuda_base_without_python_serves_a_prediction(
        hello: Path, cuda_registry, python_archive: str, docker_engine: str) -> None:
    project = gpu_model(hello)
    tag = "ociasm-test-gpu-hello:e2e"
    proc = ociasm(project, cuda_registry, "build", "-t", tag, "--output", "docker",
                  env={"OCIASM_PYTHON_ARCHIVE": python_archive})
    built_digest(proc)
    assert "base docker.io/nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04" in proc.stderr
    try:
        inspect = json.loads(engine.docker("image", "inspect", tag))[0]["Config"]
        config = json.loads(inspect["Labels"]["run.cog.config"])
        assert config["build"] == {"gpu": True, "python_version": "3.11", "cuda": "11.8", "cudnn": "8"}
        env = dict(e.split("=", 1) for e in inspect["Env"])
        assert env["CUDA_VERSION"] == "11.8.0" and env["NVIDIA_DRIVER_CAPABILITIES"] == "all"
        assert env["PATH"].startswith("/usr/local/bin:/usr/local/nvidia/bin:")
        prefix = "/root/.local/share/uv/python/cpython-3.11.2-linux-x86_64-gnu"
        assert engine.docker("run", "--rm", "--entrypoint", "readlink", tag, "/usr/local/bin/python").strip() \
            == f"{prefix}/bin/python3.11"
        with engine.serve(tag) as model:
            response = model.predict({"text": "gpu", "times": 2})
            assert response.status_code == 200, response.text
            assert response.json()["output"] == "hello gpu hello gpu"
    finally:
        engine.docker("rmi", "-f", tag)


def test_cog_base_is_picked_when_present_and_skipped_when_absent(
        hello: Path, cuda_registry, tmp_path: Path, docker_engine: str) -> None:
    with start_registry(tmp_path / "cog-registry") as cog_registry:
        env = {"COG_REGISTRY_HOST": cog_registry.host}
        absent = ociasm(hello, cuda_registry, "plan", "--json", env=env)
        assert absent.returncode == 0, absent.stderr
        assert json.loads(absent.stdout)["base"]["reference"] == "docker.io/library/python:3.11-slim"
        assert f"{FALLBACK_WARNING} (image {cog_registry.host}/cog-base:python3.11 not found" in absent.stderr

        explicit = ociasm(gpu_model(copy_model("hello", tmp_path / "gpu")), cuda_registry, "plan",
                          "--use-cog-base-image", env=env)
        assert single_error(explicit).startswith(
            f"error: --use-cog-base-image: cog-base image {cog_registry.host}/cog-base:cuda11.8-python3.11 "
            "is not available")

        cuda.push_cog_base(cog_registry.host, "python3.11")
        tag = "ociasm-test-cog-base:e2e"
        proc = ociasm(hello, cuda_registry, "build", "-t", tag, "--output", "docker", env=env)
        built_digest(proc)
        assert FALLBACK_WARNING not in proc.stderr
    try:
        labels = json.loads(engine.docker("image", "inspect", tag))[0]["Config"]["Labels"]
        diff_ids = base_diff_ids()
        assert labels["run.cog.cog-base-image-name"] == f"{cog_registry.host}/cog-base:python3.11"
        assert labels["run.cog.cog-base-image-last-layer-sha"] == diff_ids[-1]
        assert labels["run.cog.cog-base-image-last-layer-idx"] == str(len(diff_ids) - 1)
        with engine.serve(tag) as model:
            assert model.predict({"text": "base"}).json()["output"] == "hello base"
    finally:
        engine.docker("rmi", "-f", tag)


def test_gpu_model_on_a_cuda_cog_base_uses_the_python_it_links(
        hello: Path, cuda_registry, python_archive: str, tmp_path: Path, docker_engine: str) -> None:
    """A CUDA cog-base image carries a uv-managed Python linked from /usr/local/bin/python: the deps
    layer must target it (no second interpreter layer) and the labels name the cog-base image."""
    project = gpu_model(hello)
    layout = tmp_path / "cuda-with-python"
    built_digest(ociasm(project, cuda_registry, "build", "--no-use-cog-base-image", "--output", f"oci:{layout}",
                        env={"OCIASM_PYTHON_ARCHIVE": python_archive}))
    with start_registry(tmp_path / "cog-registry") as cog_registry:
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:latest",
                        f"docker://{cog_registry.host}/cog-base:cuda11.8-python3.11"], check=True)
        tag = "ociasm-test-cuda-cog-base:e2e"
        proc = ociasm(project, cuda_registry, "build", "-t", tag, "--output", "docker",
                      env={"COG_REGISTRY_HOST": cog_registry.host})
        built_digest(proc)
    assert "adding Python" not in proc.stderr and FALLBACK_WARNING not in proc.stderr
    try:
        labels = json.loads(engine.docker("image", "inspect", tag))[0]["Config"]["Labels"]
        assert labels["run.cog.cog-base-image-name"] == f"{cog_registry.host}/cog-base:cuda11.8-python3.11"
        site = "/root/.local/share/uv/python/cpython-3.11.2-linux-x86_64-gnu/lib/python3.11/site-packages"
        assert engine.docker("run", "--rm", "--entrypoint", "python", tag, "-c",
                             "import os, cog; print(os.path.realpath(cog.__file__))").strip() == f"{site}/cog/__init__.py"
        with engine.serve(tag) as model:
            assert model.predict({"text": "cog-base"}).json()["output"] == "hello cog-base"
    finally:
        engine.docker("rmi", "-f", tag)
