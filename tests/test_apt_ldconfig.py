"""Reading merged layers (whiteouts, symlinked directories) and Cog's ldconfig step, daemonless."""

from __future__ import annotations

import gzip
import io
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from realenv import unavailable

from ociasm.errors import OciasmError
from ociasm.layers import ldconfig
from ociasm.layers.rootfs import MemoryReader, TreeReader, resolve_parents
from ociasm.layers.tarstream import Entry, write_layer
from ociasm.store import BlobStore


def layer(store: BlobStore, *entries: Entry):
    return write_layer(store, list(entries))


def test_whiteouts_hide_lower_entries_but_never_their_own_layers(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    lower = layer(store, Entry("/a/x", "file", data=b"x"), Entry("/a/y", "file", data=b"y"),
                  Entry("/d/old", "file", data=b"old"), Entry("/d/sub/deep", "file", data=b"deep"),
                  Entry("/l", "symlink", link="a"), Entry("/gone", "symlink", link="a"))
    upper = layer(store, Entry("/a/.wh.x", "file", data=b""), Entry("/d/new", "file", data=b"new"),
                  Entry("/d/.wh..wh..opq", "file", data=b""), Entry("/.wh.gone", "file", data=b""),
                  Entry("/a/y", "file", data=b"y2"))
    reader = MemoryReader(lambda p: True).read([lower, upper])
    assert reader.files == {"a/y": b"y2", "d/new": b"new"}
    assert reader.symlinks == {"l": "a"}
    tree = TreeReader(tmp_path / "tree", lambda p: p.startswith("d/")).read([lower, upper])
    assert tree.regular == {"a/y", "d/new"}
    assert sorted(p.name for p in (tmp_path / "tree" / "d").iterdir()) == ["new"]


def test_paths_resolve_through_directory_links_like_the_kernel() -> None:
    links = {"lib": "usr/lib", "usr/lib64": "/usr/lib", "sbin": "usr/sbin", "loop": "loop"}
    assert resolve_parents("lib/x86_64-linux-gnu/libc.so.6", links) == "usr/lib/x86_64-linux-gnu/libc.so.6"
    assert resolve_parents("usr/lib64/ld.so", links) == "usr/lib/ld.so"
    assert resolve_parents("sbin/tini", links) == "usr/sbin/tini"
    assert resolve_parents("lib", links) == "lib"  # the last part is not followed
    assert resolve_parents("../../etc/passwd", links) == "etc/passwd"  # never above the root
    with pytest.raises(OciasmError, match="too many levels of symbolic links"):
        resolve_parents("loop/x", links)


def test_python_so_dirs_is_what_find_and_sort_print() -> None:
    files = {"usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
             "opt/x/libpython3.11.so", "opt/x/libpython3.11.so.1.0", "srv/B/a_python_.so", "srv/a/z_python.so"}
    assert ldconfig.python_so_dirs(files) == ["/opt/x", "/srv/B", "/srv/a", "/usr/lib/python3.11/lib-dynload"]


def _library() -> Path:
    """A real shared library of this host (ldconfig reads its ELF header)."""
    found = sorted(Path("/usr/lib/x86_64-linux-gnu").glob("libz.so.1.*")) or \
        sorted(Path("/lib/x86_64-linux-gnu").glob("libz.so.1.*"))
    if not found:
        unavailable("no libz.so.1 on this host to use as a test library")
    return found[0]


def test_ldconfig_layer_lists_python_dirs_and_caches_their_libraries(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    lib = _library()
    base = layer(store, Entry("/etc/ld.so.conf", "file", data=b"include /etc/ld.so.conf.d/*.conf\n"),
                 Entry("/lib", "symlink", link="usr/lib"),
                 Entry(f"/usr/lib/x86_64-linux-gnu/{lib.name}", "file", source=lib))
    wheel = layer(store, Entry("/usr/local/lib/python3.11/site-packages/pkg/_ext.cpython-311-x86_64-linux-gnu.so",
                               "file", data=b"not elf"),
                  Entry("/usr/local/lib/python3.11/site-packages/pkg/libbundled.so.7.1", "file", source=lib))
    lower = [base, wheel]
    built = ldconfig.build(store, ldconfig.recipe_key(lower), lower)
    data = gzip.decompress(store.read(built.descriptor.digest))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = {m.name: m for m in tar}
        conf = tar.extractfile("etc/ld.so.conf.d/cog.conf").read()  # type: ignore[union-attr]
        cache = tar.extractfile("etc/ld.so.cache").read()  # type: ignore[union-attr]
    assert conf == b"/usr/local/lib/python3.11/site-packages/pkg\n"
    # ldconfig made the soname links it found missing, as it would inside the image.
    assert names["usr/lib/x86_64-linux-gnu/libz.so.1"].linkname == lib.name
    assert names["usr/local/lib/python3.11/site-packages/pkg/libz.so.1"].linkname == "libbundled.so.7.1"
    (tmp_path / "cache").write_bytes(cache)
    printed = subprocess.run([ldconfig._ldconfig(), "-p", "-C", str(tmp_path / "cache")], capture_output=True,
                             text=True, check=True).stdout
    assert re.search(r"libz\.so\.1 \(libc6,x86-64\) => (/usr)?/lib/x86_64-linux-gnu/libz\.so\.1\n", printed)
    assert "/usr/local/lib/python3.11/site-packages/pkg/libz.so.1" in printed
    again = ldconfig.build(BlobStore(tmp_path / "other"), ldconfig.recipe_key(lower), lower)
    assert again.descriptor.digest == built.descriptor.digest  # same layers, same bytes
