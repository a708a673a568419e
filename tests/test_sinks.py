"""The sinks, checked by the real consumers: umoci, skopeo and the Docker engine."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from ociasm.errors import DigestMismatch, OciasmError
from ociasm.image import OCI_LAYER_GZIP, Descriptor, Image, StoredLayer
from ociasm.progress import QuietProgress
from ociasm.sinks import Output, parse_output, repo_tag, write
from ociasm.sinks.archive import ArchiveStream, stream_archive, write_archive
from ociasm.sinks.daemon import engine_available, load
from ociasm.sinks.layout import REF_NAME, write_layout
from realenv import require_tools, unavailable

DOCKER = "/usr/bin/docker"
QUIET = QuietProgress()


@pytest.fixture
def engine():
    if not engine_available() or not Path(DOCKER).exists():
        unavailable(f"the Docker engine or {DOCKER}")
    tags: list[str] = []
    yield tags
    for t in tags:
        subprocess.run([DOCKER, "rmi", "-f", t], capture_output=True)


def tool(name: str) -> str:
    require_tools(name)
    return shutil.which(name)


def unique_tag(name: str = "ociasm-test-sinks") -> str:
    return f"{name}:{uuid.uuid4().hex[:10]}"


# Building small images: real gzip tar layers in a real blob store.

def tar_layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def add_layer(store, files: dict[str, bytes]) -> StoredLayer:
    raw = tar_layer(files)
    blob = gzip.compress(raw, mtime=0)
    digest = store.put_bytes(blob)
    return StoredLayer(Descriptor(OCI_LAYER_GZIP, digest, len(blob)),
                       "sha256:" + hashlib.sha256(raw).hexdigest(), store)


def make_image(layers, label: str = "x") -> Image:
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/true"], "Labels": {"test": label}},
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
    }
    return Image(config, tuple(layers))


@pytest.fixture
def store(tmp_path):
    from ociasm.store import BlobStore
    return BlobStore(tmp_path / "cache")


@pytest.fixture
def image(store) -> Image:
    base = add_layer(store, {"etc/base.txt": b"base\n", "usr/share/big.bin": os.urandom(300_000)})
    app = add_layer(store, {"src/predict.py": b"print('hi')\n"})
    return make_image([base, app], label=uuid.uuid4().hex)


class _Interrupting(io.BytesIO):
    """Gives its bytes, then a KeyboardInterrupt where EOF would be (a user's Ctrl-C)."""

    def read(self, n: int | None = -1) -> bytes:
        if chunk := super().read(n):
            return chunk
        raise KeyboardInterrupt


@dataclass(frozen=True)
class InterruptedLayer:
    """A layer whose bytes stop with a KeyboardInterrupt halfway."""

    inner: StoredLayer

    @property
    def descriptor(self) -> Descriptor:
        return self.inner.descriptor

    @property
    def diff_id(self) -> str:
        return self.inner.diff_id

    def open(self) -> BinaryIO:
        data = self.inner.store.read(self.descriptor.digest)
        return _Interrupting(data[: len(data) // 2])


def corrupt(store, layer: StoredLayer) -> None:
    path = store.path(layer.descriptor.digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def no_leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# Names and outputs.

def test_parse_output():
    assert parse_output("docker") == Output("docker", None)
    assert parse_output("oci:out/dir") == Output("oci", Path("out/dir"))
    assert parse_output("oci-archive:/tmp/x.tar") == Output("oci-archive", Path("/tmp/x.tar"))
    assert parse_output("docker-archive:x.tar") == Output("docker-archive", Path("x.tar"))
    for bad in ("oci", "oci:", "tarball:x", "docker:x", ""):
        with pytest.raises(OciasmError, match=r"^[^\n]*--output [^\n]*(oci-archive:FILE|PATH)[^\n]*$"):
            parse_output(bad)


def test_repo_tag():
    assert repo_tag("hello") == "hello:latest"
    assert repo_tag("hello:v1") == "hello:v1"
    assert repo_tag("localhost:5000/x/y:1") == "localhost:5000/x/y:1"
    assert repo_tag("localhost:5000/x/y") == "localhost:5000/x/y:latest"
    for bad in ("Hello", "x@sha256:" + "0" * 64, "a:b:c", "x:", "-x"):
        with pytest.raises(OciasmError):
            repo_tag(bad)


# OCI layout.

def test_layout_unpacks_with_umoci_and_copies_with_skopeo(tmp_path, image):
    layout = tmp_path / "layout"
    write_layout(image, layout, "v1", QUIET)
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert [m["annotations"][REF_NAME] for m in index["manifests"]] == ["v1"]
    assert index["manifests"][0]["digest"] == image.digest
    assert no_leftovers(tmp_path) == ["cache", "layout"]

    bundle = tmp_path / "bundle"
    subprocess.run([tool("umoci"), "unpack", "--rootless", "--image", f"{layout}:v1", str(bundle)],
                   check=True, capture_output=True)
    assert (bundle / "rootfs/etc/base.txt").read_bytes() == b"base\n"
    assert (bundle / "rootfs/src/predict.py").read_bytes() == b"print('hi')\n"

    copy = tmp_path / "copy"
    subprocess.run([tool("skopeo"), "copy", "-q", f"oci:{layout}:v1", f"dir:{copy}"],
                   check=True, capture_output=True)
    copied = json.loads((copy / "manifest.json").read_text())
    assert [l["digest"] for l in copied["layers"]] == [l.descriptor.digest for l in image.layers]


def test_layout_rewrite_keeps_other_tags_and_blobs(tmp_path, store, image):
    layout = tmp_path / "layout"
    write_layout(image, layout, "one", QUIET)
    base_blob = layout / "blobs/sha256" / image.layers[0].descriptor.digest.split(":")[1]
    before = base_blob.stat()

    second = make_image([image.layers[0], add_layer(store, {"src/predict.py": b"v2\n"})], "second")
    write_layout(second, layout, "two", QUIET)
    third = make_image([image.layers[0]], "third")
    write_layout(third, layout, "one", QUIET)  # replaces "one", keeps "two"

    index = json.loads((layout / "index.json").read_text())
    names = sorted((m["annotations"][REF_NAME], m["digest"]) for m in index["manifests"])
    assert names == [("one", third.digest), ("two", second.digest)]
    after = base_blob.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not [p for p in layout.iterdir() if p.name.startswith(".")]
    subprocess.run([tool("umoci"), "unpack", "--rootless", "--image", f"{layout}:two",
                    str(tmp_path / "b2")], check=True, capture_output=True)
    assert (tmp_path / "b2/rootfs/src/predict.py").read_bytes() == b"v2\n"


def test_layout_refuses_a_directory_that_is_not_a_layout(tmp_path, image):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff/file").write_text("mine")
    with pytest.raises(OciasmError, match="not an OCI layout"):
        write_layout(image, tmp_path / "stuff", "latest", QUIET)
    assert no_leftovers(tmp_path / "stuff") == ["file"]
    (tmp_path / "empty").mkdir()
    write_layout(image, tmp_path / "empty", "latest", QUIET)  # an empty directory becomes the layout
    assert {"oci-layout", "index.json", "blobs"} == set(no_leftovers(tmp_path / "empty"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_layout_error_mid_write_leaves_nothing(tmp_path, store, image):
    corrupt(store, image.layers[0])
    with pytest.raises(DigestMismatch):
        write_layout(image, tmp_path / "layout", "latest", QUIET)
    assert no_leftovers(tmp_path) == ["cache"]


def test_layout_interrupt_in_existing_layout_keeps_old_index(tmp_path, store, image):
    layout = tmp_path / "layout"
    write_layout(image, layout, "latest", QUIET)
    index = (layout / "index.json").read_bytes()
    big = add_layer(store, {"weights.bin": os.urandom(200_000)})
    broken = make_image([InterruptedLayer(big)])
    with pytest.raises(KeyboardInterrupt):
        write_layout(broken, layout, "latest", QUIET)
    assert (layout / "index.json").read_bytes() == index
    assert not (layout / "blobs/sha256" / big.descriptor.digest.split(":")[1]).exists()
    assert not [p for p in layout.iterdir() if p.name.startswith(".")]


# Archives.

def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_archive_is_deterministic_and_sized_up_front(tmp_path, image):
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    write_archive(image, a, ["x:1"], oci_layout=True, progress=QUIET)
    write_archive(image, b, ["x:1"], oci_layout=True, progress=QUIET)
    assert a.read_bytes() == b.read_bytes()
    assert a.stat().st_size == ArchiveStream(image, ["x:1"], oci_layout=True).size
    with tarfile.open(a) as tar:
        members = tar.getmembers()
        assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(0, 0, 0, "")}
        assert {m.mode for m in members if m.isfile()} == {0o644}
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["x:1"]
    assert manifest[0]["Config"] == "blobs/sha256/" + image.config_descriptor().digest[7:]


def test_oci_archive_accepted_by_skopeo(tmp_path, image):
    archive = tmp_path / "img.tar"
    write_archive(image, archive, ["ociasm-test/x:v3"], oci_layout=True, progress=QUIET)
    names = tar_names(archive)
    assert {"oci-layout", "index.json", "manifest.json"} <= set(names)
    copy = tmp_path / "copy"
    subprocess.run([tool("skopeo"), "copy", "-q", f"oci-archive:{archive}:v3", f"dir:{copy}"],
                   check=True, capture_output=True)
    copied = json.loads((copy / "manifest.json").read_text())
    assert copied["config"]["digest"] == image.config_descriptor().digest


def test_archive_error_or_interrupt_leaves_nothing(tmp_path, store, image):
    target = tmp_path / "out"
    target.mkdir()
    broken = make_image([InterruptedLayer(image.layers[0])])
    with pytest.raises(KeyboardInterrupt):
        write_archive(broken, target / "a.tar", ["x:1"], oci_layout=True, progress=QUIET)
    corrupt(store, image.layers[1])
    with pytest.raises(DigestMismatch):
        write_archive(image, target / "b.tar", ["x:1"], oci_layout=False, progress=QUIET)
    assert no_leftovers(target) == []


@pytest.mark.real
@pytest.mark.parametrize("kind", ["oci-archive", "docker-archive"])
def test_archive_loads_into_docker(tmp_path, engine, image, kind):
    tag = unique_tag()
    engine.append(tag)
    archive = tmp_path / "img.tar"
    line = write(image, parse_output(f"{kind}:{archive}"), tag, QUIET)
    assert str(archive) in line
    subprocess.run([DOCKER, "load", "-q", "-i", str(archive)], check=True, capture_output=True)
    assert_in_engine(tag, image)


def assert_in_engine(tag: str, image: Image) -> None:
    out = subprocess.run([DOCKER, "image", "inspect", tag], check=True, capture_output=True).stdout
    info = json.loads(out)[0]
    assert info["Id"] == image.config_descriptor().digest
    assert tag in info["RepoTags"]
    assert info["RootFS"]["Layers"] == image.diff_ids()


# The engine.

@pytest.mark.real
def test_load_streams_into_the_engine(engine, image):
    tag = unique_tag()
    engine.append(tag)
    assert write(image, Output("docker", None), tag, QUIET).startswith(f"loaded {tag}")
    assert_in_engine(tag, image)


@pytest.mark.real
def test_load_skipping_layers_the_engine_has(engine, store, image):
    first, second = unique_tag(), unique_tag()
    engine.extend([first, second])
    load(image, [first], QUIET)
    code = add_layer(store, {"src/predict.py": b"print('v2')\n"})
    update = make_image([image.layers[0], code], "update")
    out = io.BytesIO()
    stream_archive(update, out, [second], oci_layout=False, progress=QUIET,
                   skip_layers=frozenset({image.layers[0].descriptor.digest}))
    assert len(out.getvalue()) < image.layers[0].descriptor.size  # the base layer was left out
    subprocess.run([DOCKER, "load", "-q"], input=out.getvalue(), check=True, capture_output=True)
    assert_in_engine(second, update)


@pytest.mark.real
def test_load_reports_the_engines_error(engine, store, image):
    wrong = dict(image.config, rootfs={"type": "layers", "diff_ids": ["sha256:" + "1" * 64] * 2})
    tag = unique_tag()
    engine.append(tag)
    with pytest.raises(OciasmError, match="Docker engine refused the image: .*diffID"):
        load(Image(wrong, image.layers), [tag], QUIET)


def test_unreachable_engine(tmp_path, image):
    host = f"unix://{tmp_path}/no.sock"
    assert not engine_available(host)
    with pytest.raises(OciasmError, match=r"cannot reach the Docker engine at unix://.*oci-archive:FILE"):
        load(image, ["x:1"], QUIET, docker_host=host)
