"""The interpreter layer (layers/python.py): which archive, checksum refusal, layout in the image,
cache. Archives are small synthetic ones in python-build-standalone's layout, served over loopback."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from fixtures.cuda import serve_directory
from ociasm.errors import OciasmError
from ociasm.layers import python as python_layer
from ociasm.progress import make_progress
from ociasm.store import BlobStore

NAME = "cpython-3.11.9+20240101-x86_64-unknown-linux-gnu-install_only.tar.gz"
PREFIX = "/root/.local/share/uv/python/cpython-3.11.9-linux-x86_64-gnu"


def _archive(members: dict[str, bytes | str | None]) -> bytes:
    """name -> file bytes, symlink target (str) or None (a directory)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, value in members.items():
            info = tarfile.TarInfo(name)
            if value is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size, info.mode = len(value), 0o755 if name.endswith("3.11") else 0o644
                tar.addfile(info, io.BytesIO(value))
    return gzip.compress(raw.getvalue(), mtime=0)


GOOD = {"python": None, "python/bin": None, "python/bin/python3.11": b"\x7fELF fake",
        "python/bin/python3": "python3.11", "python/lib/python3.11/os.py": b"# os\n",
        "python/lib/python3.11/site-packages": None}


@pytest.fixture
def served(tmp_path: Path):
    """Write archives into a served directory; yields (put(name, bytes) -> URL#sha256)."""
    root = tmp_path / "www"
    root.mkdir()
    with serve_directory(root) as url:
        def put(data: bytes, name: str = NAME) -> str:
            (root / name).write_bytes(data)
            return f"{url}/{name}#sha256={hashlib.sha256(data).hexdigest()}"
        yield put


def _members(store: BlobStore, layer) -> dict[str, tarfile.TarInfo]:
    with store.open(layer.descriptor.digest) as f, tarfile.open(fileobj=io.BytesIO(gzip.decompress(f.read()))) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_pinned_distribution_is_what_cogs_uv_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(python_layer.ARCHIVE_ENV, raising=False)
    monkeypatch.delenv(python_layer.MIRROR_ENV, raising=False)
    dist = python_layer.distribution("3.11")
    assert dist.url == ("https://github.com/astral-sh/python-build-standalone/releases/download/20260114/"
                        "cpython-3.11.14%2B20260114-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz")
    assert dist.sha256 == "7fb42e7ac220ec607c5eddbf0361e523279f8cee17fd994bf5fe521676a63950"
    assert dist.prefix == "/root/.local/share/uv/python/cpython-3.11.14-linux-x86_64-gnu"
    target = dist.target("2.35")
    assert (target.interpreter, target.site_dir, target.platform) == (
        f"{dist.prefix}/bin/python3.11", f"{dist.prefix}/lib/python3.11/site-packages", "x86_64-manylinux_2_35")
    monkeypatch.setenv(python_layer.MIRROR_ENV, "https://mirror.example.com/pbs/")
    assert python_layer.distribution("3.12").url.startswith("https://mirror.example.com/pbs/20260114/cpython-3.12.12")


@pytest.mark.parametrize("value, message", [
    ("http://x/" + NAME, "expected URL#sha256=HEX"),
    ("http://x/python.tar.gz#sha256=" + "0" * 64, "expected URL#sha256=HEX"),
    ("http://x/" + NAME + "#sha256=" + "0" * 64, None),
    ("http://x/" + NAME.replace("3.11.9", "3.12.1") + "#sha256=" + "0" * 64, "is Python 3.12, but build.python_version is 3.11"),
])
def test_archive_override(monkeypatch: pytest.MonkeyPatch, value: str, message: str | None) -> None:
    monkeypatch.setenv(python_layer.ARCHIVE_ENV, value)
    if message is None:
        assert python_layer.distribution("3.11").prefix == PREFIX
    else:
        with pytest.raises(OciasmError, match=message):
            python_layer.distribution("3.11")


def test_unpinned_minor_asks_for_an_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(python_layer.ARCHIVE_ENV, raising=False)
    with pytest.raises(OciasmError, match="no python-build-standalone build is pinned for it"):
        python_layer.distribution("3.9")


def test_layer_unpacks_under_uvs_prefix_with_cogs_links(served, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv(python_layer.ARCHIVE_ENV, served(_archive(GOOD)))
    dist = python_layer.distribution("3.11")
    store = BlobStore(tmp_path / "cache")
    key = python_layer.recipe_key(dist)
    assert python_layer.cached(store, key) is None
    layer = python_layer.build(store, key, dist, make_progress("quiet"))
    members = _members(store, layer)
    assert members[f"{PREFIX[1:]}/bin/python3.11"].mode == 0o755
    assert members[f"{PREFIX[1:]}/bin/python3"].linkname == "python3.11"
    assert members["usr/bin/python3"].linkname == f"{PREFIX}/bin/python3.11"
    assert members["usr/local/bin/python"].linkname == f"{PREFIX}/bin/python3.11"
    assert members["root"].mode == 0o700 and members["root/.local"].mode == 0o755
    assert f"{PREFIX[1:]}/lib/python3.11/site-packages" in members
    assert python_layer.cached(store, key) == layer  # a rebuild needs no download


def test_checksum_mismatch_is_refused(served, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = served(_archive(GOOD)).split("#")[0]
    monkeypatch.setenv(python_layer.ARCHIVE_ENV, f"{url}#sha256={'a' * 64}")
    dist = python_layer.distribution("3.11")
    store = BlobStore(tmp_path / "cache")
    with pytest.raises(OciasmError, match=f"has sha256 [0-9a-f]{{64}}, expected {'a' * 64}: not used"):
        python_layer.build(store, python_layer.recipe_key(dist), dist, make_progress("quiet"))
    assert python_layer.cached(store, python_layer.recipe_key(dist)) is None


@pytest.mark.parametrize("members, message", [
    ({"python": None, "python/lib/os.py": b""}, "has no bin/python3.11"),
    ({"usr/bin/python3.11": b"x"}, "not an install_only archive"),
    ({"python": None, "python/bin/python3.11": b"x", "python/evil": "/etc/passwd"}, "refusing member 'python/evil'"),
    ({"python": None, "python/bin/python3.11": b"x", "python/up": "../../etc"}, "refusing member 'python/up'"),
    ({"python": None, "python/../../x": b"x"}, "not an install_only archive"),
])
def test_malformed_archives_are_refused(served, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        members, message) -> None:
    monkeypatch.setenv(python_layer.ARCHIVE_ENV, served(_archive(members)))
    dist = python_layer.distribution("3.11")
    with pytest.raises(OciasmError, match=message):
        python_layer.build(BlobStore(tmp_path / "cache"), "k", dist, make_progress("quiet"))


def test_unreachable_archive_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(python_layer.ARCHIVE_ENV, f"http://127.0.0.1:9/{NAME}#sha256={'0' * 64}")
    dist = python_layer.distribution("3.11")
    with pytest.raises(OciasmError, match=f"cannot download Python archive .*set {python_layer.MIRROR_ENV}"):
        python_layer.build(BlobStore(tmp_path / "cache"), "k", dist, make_progress("quiet"))


def test_image_env_puts_usr_local_bin_first() -> None:
    assert python_layer.image_env(["A=1", "PATH=/usr/local/cuda/bin:/usr/bin"]) == [
        "A=1", "PATH=/usr/local/bin:/usr/local/cuda/bin:/usr/bin"]
    assert python_layer.image_env([]) == ["PATH=/usr/local/bin"]


def test_a_base_with_a_linked_interpreter_is_targeted_there() -> None:
    """Cog's CUDA images and cog-base images link /usr/local/bin/python into uv's prefix."""
    from ociasm.base import python_target

    present = {"usr/local/bin/python", "usr/bin/python3", "var/lib/dpkg/status"}
    links = {"usr/local/bin/python": f"{PREFIX}/bin/python3.11", "usr/bin/python3": f"{PREFIX}/bin/python3.11"}
    target = python_target(present, "Package: libc6\nVersion: 2.35-0ubuntu3\n", {}, "3.11", "cog-base", links)
    assert (target.interpreter, target.site_dir, target.bin_dir, target.glibc, target.has_python_command) == (
        f"{PREFIX}/bin/python3.11", f"{PREFIX}/lib/python3.11/site-packages", f"{PREFIX}/bin", "2.35", True)
    with pytest.raises(OciasmError, match="has no Python 3.12"):
        python_target(present, None, {}, "3.12", "cog-base", links)
