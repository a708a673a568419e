"""`ociasm push` against the real `docker-registry`, through a loopback proxy that counts the bytes
the registry receives (fixtures/proxy.py) and breaks requests on cue. Each push is the real CLI in
a subprocess with the test's own cache and an empty Docker config."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from clirun import run_ociasm, single_error
from fixtures import base, engine
from fixtures.proxy import Proxy
from fixtures.tokenauth import SERVICE, TokenService
from ociasm.image import OCI_LAYER, Descriptor, Image, StoredLayer
from ociasm.progress import QuietProgress
from ociasm.push import CHUNK_SIZE_ENV
from ociasm.sinks.layout import write_layout
from ociasm.store import BlobStore
from realenv import require_tools

pytestmark = pytest.mark.real

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
CHUNK = 8 << 20  # the tests' chunk size ($OCIASM_PUSH_CHUNK_SIZE), to keep their blobs small
BIG = 2 * CHUNK + (4 << 20)  # three PATCH chunks


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No credentials but the ones a test writes (never the developer's); small upload chunks."""
    path = tmp_path / "docker-config"
    path.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(path))
    monkeypatch.setenv(CHUNK_SIZE_ENV, str(CHUNK))
    return path


@pytest.fixture
def proxy(registry_factory, base_layout: Path):
    """An empty registry holding only the base (library/python:3.11-slim), behind a counting proxy."""
    registry = registry_factory()
    base.push(registry.host, layout=base_layout)
    p = Proxy(registry.host)
    yield p
    p.close()


def push(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_ociasm("push", *args, "--progress", "plain", cwd=cwd)


def pushed(proc: subprocess.CompletedProcess, ref: str) -> str:
    """The digest in the `REF@DIGEST` line a successful push prints."""
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith(f"{ref}@") and DIGEST.fullmatch(line.partition("@")[2]), line
    return line.partition("@")[2]


def manifest(host: str, repository: str, reference: str) -> tuple[dict, bytes]:
    resp = requests.get(f"http://{host}/v2/{repository}/manifests/{reference}",
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=30)
    resp.raise_for_status()
    return resp.json(), resp.content


def uploaded_digests(proxy: Proxy) -> set[str]:
    """Blobs whose bytes went to the registry (digests of the final PUTs that carried or followed bytes)."""
    return {m.group(0) for e in proxy.requests("PUT", r"/blobs/uploads/")
            if e.status == 201 and (m := DIGEST.search(e.query.replace("%3A", ":")))}


def make_layout(root: Path, payload: int) -> tuple[Path, Image]:
    """An OCI layout of a one-layer image whose layer is an uncompressed tar of `payload` random bytes."""
    root.mkdir(parents=True, exist_ok=True)
    data, tar_path = root / "weights.bin", root / "layer.tar"
    with open(data, "wb") as f:
        for _ in range(0, payload, 1 << 24):
            f.write(os.urandom(min(1 << 24, payload - f.tell())))
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(data, arcname="weights.bin")
    store = BlobStore(root / "store")
    with open(tar_path, "rb") as f:
        digest, size = store.put_stream(f)
    layer = StoredLayer(Descriptor(OCI_LAYER, digest, size), digest, store)
    image = Image({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                   "rootfs": {"type": "layers", "diff_ids": [digest]}}, (layer,))
    write_layout(image, root / "layout", "latest", QuietProgress())
    return root / "layout", image


@pytest.fixture(scope="module")
def big_layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Image]:
    return make_layout(tmp_path_factory.mktemp("big"), BIG - 3 * 512 - 1024)


@pytest.fixture(scope="module")
def small_layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Image]:
    return make_layout(tmp_path_factory.mktemp("small"), 300_000)


def test_second_push_sends_only_the_code_layer_and_a_new_repository_mounts_everything(hello: Path, proxy: Proxy,
                                                                                     registry_factory):
    mirror = ("--registry-mirror", f"docker.io={proxy.host}", "--no-use-cog-base-image")
    ref = f"{proxy.host}/models/hello:v1"
    first = pushed(push(ref, *mirror, cwd=hello), ref)
    doc, raw = manifest(proxy.host, "models/hello", "v1")
    assert first == "sha256:" + hashlib.sha256(raw).hexdigest()
    base_layers = manifest(proxy.host, base.REPOSITORY, base.TAG)[0]["layers"]
    ours = doc["layers"][len(base_layers):]  # dependencies ... code
    assert doc["layers"][:len(base_layers)] == base_layers and len(ours) >= 2
    # The base came from this registry: mounted from its repository, not uploaded. Its layer was
    # downloaded once, to read its Python; with that known, a push leaves it in the registry.
    mounts = [e for e in proxy.requests("POST", "/models/hello/blobs/uploads/") if "mount=" in e.query]
    assert {e.query.partition("mount=sha256%3A")[2][:64] for e in mounts if e.status == 201} == \
        {layer["digest"][7:] for layer in base_layers}
    assert uploaded_digests(proxy) == {layer["digest"] for layer in ours} | {doc["config"]["digest"]}
    assert proxy.uploaded() == sum(layer["size"] for layer in ours) + doc["config"]["size"] + len(raw)
    for layer in base_layers:
        BlobStore().path(layer["digest"]).unlink()

    proxy.reset()
    (hello / "predict.py").write_text((hello / "predict.py").read_text() + "\n# a code-only change\n")
    ref2 = f"{proxy.host}/models/hello:v2"
    second = pushed(push(ref2, *mirror, cwd=hello), ref2)
    doc2, raw2 = manifest(proxy.host, "models/hello", "v2")
    assert second != first and doc2["layers"][:-1] == doc["layers"][:-1]
    code2 = doc2["layers"][-1]
    assert uploaded_digests(proxy) == {code2["digest"], doc2["config"]["digest"]}
    assert proxy.uploaded() == code2["size"] + doc2["config"]["size"] + len(raw2)
    assert not proxy.requests("GET", "/blobs/") and not any(BlobStore().has(l["digest"]) for l in base_layers)

    # Another registry: the base layer streams from its registry into the upload, never stored.
    other = registry_factory()
    ref_other = f"{other.host}/models/hello:v2"
    proxy.reset()
    assert pushed(push(ref_other, *mirror, cwd=hello), ref_other) == second
    assert [e.path for e in proxy.requests("GET", "/blobs/")] == \
        [f"/v2/{base.REPOSITORY}/blobs/{layer['digest']}" for layer in base_layers]
    assert not any(BlobStore().has(layer["digest"]) for layer in base_layers)
    assert manifest(other.host, "models/hello", "v2")[1] == raw2

    proxy.reset()
    ref3 = f"{proxy.host}/elsewhere/hello:v2"
    assert pushed(push(ref3, *mirror, cwd=hello), ref3) == second
    mounted = [e for e in proxy.requests("POST", "/elsewhere/hello/blobs/uploads/") if e.status == 201]
    assert len(mounted) == len(doc2["layers"]) + 1 and all("mount=" in e.query for e in mounted)  # and the config
    assert proxy.uploaded() == len(raw2) and not uploaded_digests(proxy)

    proxy.reset()
    assert pushed(push(ref3, *mirror, cwd=hello), ref3) == second  # nothing to do: one HEAD
    assert proxy.uploaded() == 0 and not proxy.requests("HEAD", "/blobs/")
    require_tools("skopeo")
    inspect = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref3}"],
                             capture_output=True, text=True, check=True)
    assert json.loads(inspect.stdout)["Digest"] == second


def _push_killed(layout: Path, ref: str, proxy: Proxy, cwd: Path, kill_when) -> None:
    """Run a push and SIGKILL it from inside the proxy when `kill_when(exchange)` says so."""
    proc = subprocess.Popen([sys.executable, "-m", "ociasm", "push", "--from", f"oci:{layout}", ref,
                             "--progress", "plain"], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def kill(ex) -> bool:
        if kill_when(ex):
            proc.send_signal(signal.SIGKILL)
            return False  # drop the request: it never reaches the registry
        return True

    proxy.before.append(kill)
    proxy.on_body.append(kill)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    proxy.reset()


def config_sent(proxy: Proxy, image: Image) -> int:
    config = image.config_descriptor()
    return config.size if config.digest in uploaded_digests(proxy) else 0


def _check_pushed(ref: str, image: Image, tmp_path: Path) -> None:
    """skopeo copy verifies every blob it copies against its digest."""
    require_tools("skopeo")
    subprocess.run(["skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", f"docker://{ref}",
                    f"oci:{tmp_path / 'copy'}:x"], check=True, capture_output=True)
    index = json.loads((tmp_path / "copy" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest


def test_push_killed_between_chunks_resumes_where_the_registry_stands(big_layout, proxy: Proxy, tmp_path: Path):
    layout, image = big_layout
    layer = image.layers[0].descriptor
    ref = f"{proxy.host}/resume/between:1"
    patches = lambda: len(proxy.requests("PATCH"))  # noqa: E731
    _push_killed(layout, ref, proxy, tmp_path, lambda ex: ex.method == "PATCH" and ex.sent == 0 and patches() == 2)

    proc = push("--from", f"oci:{layout}", ref, cwd=tmp_path)
    assert pushed(proc, ref) == image.digest
    assert "resuming at 8.4 MB" in proc.stderr
    # Only what the registry lacked: the layer from its second chunk on, the manifest (and the
    # config, unless the killed run had sent it already).
    assert proxy.uploaded() == layer.size - CHUNK + len(image.manifest_bytes()) + config_sent(proxy, image)
    assert [e.length for e in proxy.requests("PATCH")] == [CHUNK, layer.size - 2 * CHUNK]
    _check_pushed(ref, image, tmp_path)


def test_push_killed_mid_chunk_restarts_the_blob_the_registry_forgot(big_layout, proxy: Proxy, tmp_path: Path):
    layout, image = big_layout
    layer = image.layers[0].descriptor
    ref = f"{proxy.host}/resume/midchunk:1"
    # Half-way through the second chunk: distribution then drops the whole upload session.
    _push_killed(layout, ref, proxy, tmp_path,
                 lambda ex: ex.method == "PATCH" and len(proxy.requests("PATCH")) == 2 and ex.sent >= CHUNK // 2)

    proc = push("--from", f"oci:{layout}", ref, cwd=tmp_path)
    assert pushed(proc, ref) == image.digest
    assert "the registry forgot" in proc.stderr
    assert proxy.uploaded() == layer.size + len(image.manifest_bytes()) + config_sent(proxy, image)
    _check_pushed(ref, image, tmp_path)


def test_registry_errors_are_retried_then_succeed_or_fail_in_one_line(small_layout, big_layout, proxy: Proxy,
                                                                         tmp_path: Path):
    layout, image = small_layout
    ref = f"{proxy.host}/flaky/app:1"
    proxy.fail("PUT", r"/blobs/uploads/", 500, 3)
    proxy.fail("PUT", r"/manifests/", 500, 3)
    proc = push("--from", f"oci:{layout}", ref, cwd=tmp_path)
    assert pushed(proc, ref) == image.digest
    assert [e.status for e in proxy.requests("PUT", "/manifests/")] == [500, 500, 500, 201]
    assert proc.stderr.count("HTTP 500") >= 6

    # A registry without chunked uploads: refuses the first PATCH; the blob goes in one PUT.
    proxy.reset()
    big, big_image = big_layout
    proxy.fail("PATCH", r"/blobs/uploads/", 405, 1)
    assert pushed(push("--from", f"oci:{big}", f"{proxy.host}/flaky/big:1", cwd=tmp_path),
                  f"{proxy.host}/flaky/big:1") == big_image.digest
    assert [e.status for e in proxy.requests("PATCH")] == [405]

    proxy.reset()
    proxy.fail("PUT", r"/manifests/", 500, 100)
    error = single_error(push("--from", f"oci:{layout}", f"{proxy.host}/flaky/app:2", cwd=tmp_path))
    assert error == (f"error: registry {proxy.host} refused the manifest of {proxy.host}/flaky/app:2: "
                     f"HTTP 500 UNKNOWN: injected by the test proxy")


def test_push_needs_an_image_name(hello: Path, tmp_path: Path):
    error = single_error(run_ociasm("push", "--no-use-cog-base-image", cwd=hello))
    assert error.startswith("error: cog.yaml: no image to push to: pass one (ociasm push IMAGE)")
    error = single_error(run_ociasm("push", "--from", f"oci:{tmp_path}", cwd=tmp_path))
    assert "name the image to push it to" in error
    error = single_error(run_ociasm("push", "--from", f"oci:{tmp_path}", "127.0.0.1:1/x", cwd=tmp_path))
    assert error == f"error: OCI layout {tmp_path} has no index.json: give the directory of an OCI image layout"
    error = single_error(run_ociasm("push", "127.0.0.1:1/x", "--output", "docker", cwd=tmp_path))
    assert error == "error: --output is for build: push sends the image to IMAGE"


# ---- TLS + htpasswd: the auth_registry session fixture -------------------------------------------

def login(docker_config: Path, host: str, user: str, password: str) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))


@contextmanager
def docker_trusts(host: str, ca_cert: Path):
    """The engine reads /etc/docker/certs.d/HOST/ca.crt on every pull: no restart needed."""
    certs = Path("/etc/docker/certs.d") / host
    certs.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy(ca_cert, certs / "ca.crt")
        yield
    finally:
        shutil.rmtree(certs, ignore_errors=True)


def test_push_to_tls_htpasswd_registry_pulls_and_serves(hello: Path, auth_registry, docker_config: Path,
                                                        docker_engine: str, tmp_path: Path):
    host, (user, password) = auth_registry.host, auth_registry.auth
    login(docker_config, host, user, password)
    ref = f"{host}/tls/hello:1"
    proc = push(ref, "--registry-mirror", f"docker.io={host}", "--no-use-cog-base-image",
                "--ca-cert", str(auth_registry.ca_cert), cwd=hello)
    digest = pushed(proc, ref)
    assert password not in proc.stdout + proc.stderr
    assert re.search(r": mounted from library/python", proc.stderr)

    require_tools("skopeo")
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(auth_registry.ca_cert, certs / "ca.crt")
    inspect = subprocess.run(["skopeo", "inspect", "--cert-dir", str(certs), "--creds", f"{user}:{password}",
                              f"docker://{ref}"], capture_output=True, text=True, check=True)
    assert json.loads(inspect.stdout)["Digest"] == digest

    image = f"{host}/tls/hello@{digest}"
    with docker_trusts(host, auth_registry.ca_cert):
        try:
            engine.docker("pull", image)  # the client reads $DOCKER_CONFIG: the same login
            with engine.serve(image) as model:
                answer = model.predict({"text": "world", "times": 2})
                assert answer.status_code == 200, answer.text
                assert answer.json()["output"] == "hello world hello world"
        finally:
            subprocess.run([engine.DOCKER, "rmi", "-f", image], capture_output=True)


def test_push_auth_and_tls_failures_are_one_clear_line(small_layout, auth_registry, docker_config: Path,
                                                       tmp_path: Path):
    layout, image = small_layout
    host, (user, password) = auth_registry.host, auth_registry.auth
    ref = f"{host}/denied/app:1"
    ca = ("--ca-cert", str(auth_registry.ca_cert))

    error = single_error(push("--from", f"oci:{layout}", ref, *ca, cwd=tmp_path))
    assert error == (f"error: image {ref}: authentication failed for {host} (no credentials in "
                     f"{docker_config / 'config.json'}): check the image name, or log in (docker login {host})")

    login(docker_config, host, user, "not-the-password")
    proc = push("--from", f"oci:{layout}", ref, *ca, cwd=tmp_path)
    assert single_error(proc) == (f"error: image {ref}: authentication failed for {host}: "
                                  f"check credentials (docker login {host})")
    assert "not-the-password" not in proc.stdout + proc.stderr

    login(docker_config, host, user, password)
    error = single_error(push("--from", f"oci:{layout}", ref, cwd=tmp_path))
    assert error == (f"error: cannot reach registry {host}: TLS certificate verify failed: self-signed "
                     f"certificate (trust its CA with --ca-cert FILE, or --insecure-registry {host})")
    # Marked insecure, its certificate goes unverified (never its credentials unsent).
    assert pushed(push("--from", f"oci:{layout}", ref, "--insecure-registry", host, cwd=tmp_path), ref) == image.digest
    assert pushed(push("--from", f"oci:{layout}", ref, *ca, cwd=tmp_path), ref) == image.digest


# ---- bearer tokens: a real docker-registry with token auth (fixtures/tokenauth.py) -----------------

@pytest.fixture
def token_registry(registry_factory, tmp_path: Path):
    """A registry that wants bearer tokens from a loopback token service, behind the proxy."""
    service = TokenService(tmp_path / "token", {"pusher": "s3cret", "reader": "r3ad"}, readers=frozenset({"reader"}))
    registry = registry_factory(auth=service.registry_auth())
    p = Proxy(registry.host)
    yield service, p
    p.close()
    service.close()


def test_bearer_tokens_are_asked_per_scope_and_mounts_read_their_source(small_layout, token_registry,
                                                                        docker_config: Path, tmp_path: Path):
    layout, image = small_layout
    service, proxy = token_registry
    one, two = f"{proxy.host}/team/one:1", f"{proxy.host}/team/two:1"
    login(docker_config, proxy.host, "pusher", "s3cret")
    assert pushed(push("--from", f"oci:{layout}", one, cwd=tmp_path), one) == image.digest
    assert {g.scopes for g in service.grants} == {("repository:team/one:pull,push",)}

    service.grants.clear()
    proxy.reset()
    proc = push("--from", f"oci:{layout}", two, cwd=tmp_path)
    assert pushed(proc, two) == image.digest
    # A mount needs pull on its source as well as push here; the registry checks both.
    assert {"repository:team/two:pull,push", "repository:team/one:pull"} in [set(g.scopes) for g in service.grants]
    assert proc.stderr.count(": mounted from team/one") == 2  # the layer and the config
    assert proxy.uploaded() == len(image.manifest_bytes())

    # The registry stops taking a token mid-upload (it expired): a fresh one is fetched, the chunk re-sent.
    big, big_image = make_layout(tmp_path / "big", BIG - 4096)
    proxy.reset()
    service.grants.clear()
    challenge = (f'Bearer realm="{service.realm}",service="{SERVICE}",'
                 f'scope="repository:team/big:pull,push"')
    proxy.fail("PATCH", "/blobs/uploads/", 401, 1, {"WWW-Authenticate": challenge})
    assert pushed(push("--from", f"oci:{big}", f"{proxy.host}/team/big:1", cwd=tmp_path),
                  f"{proxy.host}/team/big:1") == big_image.digest
    assert [e.status for e in proxy.requests("PATCH")][:2] == [401, 202] and len(service.grants) == 2

    login(docker_config, proxy.host, "reader", "r3ad")
    error = single_error(push("--from", f"oci:{layout}", f"{proxy.host}/team/three:1", cwd=tmp_path))
    assert error == (f"error: registry {proxy.host} denied pushing to {proxy.host}/team/three:1: check the "
                     f"repository name and that your login may push to it")

    login(docker_config, proxy.host, "pusher", "wrong")
    proc = push("--from", f"oci:{layout}", f"{proxy.host}/team/three:1", cwd=tmp_path)
    assert single_error(proc) == (f"error: image {proxy.host}/team/three:1: authentication failed for "
                                  f"{proxy.host}: check credentials (docker login {proxy.host})")
