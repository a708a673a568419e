"""The fixtures themselves: registry auth/TLS, the pushed base, a deterministic base layer, and the
sample models' schemas as the real Cog runtime (coglet) applies them."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

import fixtures
from fixtures import base, engine

MODELS = Path(fixtures.__file__).parent / "models"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def test_registry_requires_credentials_and_serves_tls(registry_factory) -> None:
    registry = registry_factory(htpasswd=("u", "pw"), tls=True)
    assert registry.url.startswith("https://127.0.0.1:")
    ca = str(registry.ca_cert)
    assert requests.get(f"{registry.url}/v2/", verify=ca, timeout=5).status_code == 401
    assert requests.get(f"{registry.url}/v2/", verify=ca, auth=("u", "wrong"), timeout=5).status_code == 401
    assert requests.get(f"{registry.url}/v2/", verify=ca, auth=("u", "pw"), timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{registry.url}/v2/", timeout=5)
    registry.stop()
    assert registry.process.poll() is not None


def test_base_is_pushed_unchanged(fixture_registry, base_layout: Path) -> None:
    url = f"{fixture_registry.url}/v2/{base.REPOSITORY}/manifests/{base.TAG}"
    answer = requests.get(url, headers={"Accept": OCI_MANIFEST}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Docker-Content-Digest"] == fixture_registry.base_digest == base.manifest_digest(base_layout)
    assert hashlib.sha256(answer.content).hexdigest() == fixture_registry.base_digest.removeprefix("sha256:")


def test_auth_registry_holds_base(auth_registry) -> None:
    url = f"{auth_registry.url}/v2/{base.REPOSITORY}/manifests/{base.TAG}"
    answer = requests.head(url, headers={"Accept": OCI_MANIFEST}, auth=auth_registry.auth, verify=str(auth_registry.ca_cert), timeout=10)
    assert answer.headers["Docker-Content-Digest"] == auth_registry.base_digest


def test_base_layer_is_deterministic_and_clean(base_layout: Path, tmp_path: Path) -> None:
    manifest = json.loads((base_layout / base.blob_path({"digest": base.manifest_digest(base_layout)})).read_bytes())
    config = json.loads((base_layout / base.blob_path(manifest["config"])).read_bytes())
    with (tmp_path / "layer.tar.gz").open("wb") as out:
        diff_id, digest, size = base.write_layer(base.build_rootfs(), out)
    assert (diff_id, digest, size) == (config["rootfs"]["diff_ids"][0], manifest["layers"][0]["digest"], manifest["layers"][0]["size"])
    listing = subprocess.run(["tar", "tzf", str(tmp_path / "layer.tar.gz")], capture_output=True, text=True, check=True).stdout.split()
    assert "usr/bin/python3.11" in listing and "usr/bin/python" in listing
    assert not [name for name in listing if name.startswith(("./", "/", "dev/")) and name != "dev/"]
    assert base.EXTERNALLY_MANAGED not in listing


@pytest.fixture(scope="module")
def cog_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cog + numpy for the image's Python, installed on the host (containers have no network)."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        ["uv", "pip", "install", "--quiet", "--target", str(site), "--python-platform", "x86_64-manylinux_2_28",
         "--python-version", "3.11", "cog==0.23.1", "numpy==2.1.3"],
        check=True,
    )
    return site


@pytest.fixture(scope="module")
def base_image(docker_engine: str, base_layout: Path) -> str:
    tag = "ociasm-fixture/python:3.11-slim"
    base.load_into_engine(tag, base_layout)
    return tag


def serve_model(image: str, site: Path, model: Path, tmp_path: Path):
    src = tmp_path / "src"
    shutil.copytree(model, src)
    (src / ".cog").mkdir()
    shutil.copy(model / "openapi_schema.json", src / ".cog" / "openapi_schema.json")
    return engine.serve(
        image,
        run_args=["-v", f"{site}:/usr/local/lib/python3.11/dist-packages:ro", "-v", f"{src}:/src:ro", "-w", "/src",
                  "-e", "COG_PREDICT_TYPE_STUB=predict.py:Predictor"],
        command=["python", "-m", "cog.server.http"],
    )


def test_hello_schema_validates_in_real_cog(base_image: str, cog_site: Path, tmp_path: Path) -> None:
    with serve_model(base_image, cog_site, MODELS / "hello", tmp_path) as model:
        ok = model.predict({"text": "world", "times": 2})
        assert ok.status_code == 200 and ok.json()["output"] == "hello world hello world"
        too_many = model.predict({"text": "world", "times": 9})
        assert too_many.status_code == 422
        assert too_many.json()["detail"][0]["loc"] == ["body", "input", "times"]
        assert model.predict({"times": 2}).json()["detail"][0]["loc"] == ["body", "input", "text"]
        served = requests.get(f"{model.url}/openapi.json", timeout=10).json()
        assert served == json.loads((MODELS / "hello" / "openapi_schema.json").read_text())


def test_numpy_model_runs(base_image: str, cog_site: Path, tmp_path: Path) -> None:
    with serve_model(base_image, cog_site, MODELS / "numpy", tmp_path) as model:
        assert model.predict({"n": 100}).json()["output"] == 4950
        assert model.predict({"n": 0}).status_code == 422
