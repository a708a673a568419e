"""The merged filesystem of image layers, read from their tar streams (nothing is run).

Layers apply in order with OCI whiteouts: `.wh.NAME` hides NAME below it, `.wh..wh..opq`
hides everything below it in its directory; an entry replaces whatever lower layers had at
its path. A `Reader` walks the layers once and tells its subclass what survives: small files
kept in memory (`MemoryReader`, for dpkg's and apt's state) or files written to a scratch
tree (`TreeReader`, for ldconfig). Every symlink is kept, so paths can be resolved through
directory links the way the kernel would inside the image (`/lib` -> `usr/lib`).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import zstandard
from isal import igzip

from ociasm.errors import OciasmError
from ociasm.image import Layer

OPAQUE = ".wh..wh..opq"
MAX_LINK_HOPS = 40


@contextmanager
def open_layer(layer: Layer) -> Iterator[BinaryIO]:
    """The layer's uncompressed tar stream."""
    media = layer.descriptor.media_type
    with layer.open() as raw:
        if "zstd" in media:
            with zstandard.ZstdDecompressor().stream_reader(raw) as stream:
                yield stream  # type: ignore[misc]
        elif "gzip" in media:
            with igzip.IGzipFile(fileobj=raw) as stream:
                yield stream  # type: ignore[misc]
        else:
            yield raw


def member_path(name: str) -> str:
    """A tar member's path inside the image, without a leading '/' or './' ('' for the root)."""
    while name.startswith(("./", "/")):
        name = name[1:] if name.startswith("/") else name[2:]
    path = posixpath.normpath(name) if name not in ("", ".") else ""
    return "" if path == "." else path


def resolve_parents(path: str, symlinks: dict[str, str]) -> str:
    """`path` with every symlinked directory among its parents followed (the last part is kept)."""
    done: list[str] = []
    todo = [p for p in path.split("/") if p]
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = "/".join([*done, part])
        if todo and candidate in symlinks:
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise OciasmError(f"/{path}: too many levels of symbolic links in the base image")
            target = symlinks[candidate]
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p] + todo
            continue
        done.append(part)
    return "/".join(done)


@contextmanager
def piped_tar(argv: list[str], failed: str) -> Iterator[tarfile.TarFile]:
    """The tar stream `argv` prints, read as it comes; if the command fails, an error starting
    with `failed` and ending with what it said. Its stderr goes to a file, so a chatty command
    cannot block on a full pipe while we read its stdout."""
    with tempfile.TemporaryFile() as said, \
            subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=said) as proc:
        def failure() -> OciasmError:
            said.seek(0)
            return OciasmError(f"{failed}: {said.read().decode(errors='replace').strip()}")
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                yield tar
        except tarfile.ReadError:
            # No tar (or a cut one) because the command failed: say what it said, not "empty file".
            proc.stdout.close()  # type: ignore[union-attr]
            if proc.wait() != 0:
                raise failure() from None
            raise
        except BaseException:
            proc.kill()
            raise
        if proc.wait() != 0:
            raise failure()


class Reader:
    """Walks layers in order; subclasses keep the surviving entries they care about."""

    def __init__(self) -> None:
        self.symlinks: dict[str, str] = {}
        self.dirs: set[str] = set()

    # What subclasses keep: forget one path, or everything under `prefix` except `keep`.
    def add(self, path: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None: ...
    def discard(self, path: str) -> None: ...
    def discard_tree(self, prefix: str, keep: set[str]) -> None: ...

    def read(self, layers: Iterable[Layer]) -> "Reader":
        for layer in layers:
            self._read_layer(layer)
        return self

    def _read_layer(self, layer: Layer) -> None:
        written: set[str] = set()  # a whiteout never hides its own layer's entries
        with open_layer(layer) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                path = member_path(member.name)
                base = posixpath.basename(path)
                if base == OPAQUE:
                    self._forget_tree(posixpath.dirname(path), written)
                elif base.startswith(".wh."):
                    self._forget(posixpath.join(posixpath.dirname(path), base[4:]), written)
                elif path:
                    if not (member.isdir() and path in self.dirs):
                        self._forget(path, written)  # an entry replaces what lower layers had there
                    written.add(path)
                    if member.issym():
                        self.symlinks[path] = member.linkname
                    elif member.isdir():
                        self.dirs.add(path)
                    self.add(path, member, tar)

    def _forget(self, path: str, keep: set[str]) -> None:
        self.symlinks.pop(path, None)
        self.discard(path)
        if path in self.dirs:
            self.dirs.discard(path)
            self._forget_tree(path, keep)

    def _forget_tree(self, root: str, keep: set[str]) -> None:
        prefix = root + "/" if root else ""
        for path in [p for p in self.symlinks if p.startswith(prefix) and p not in keep]:
            del self.symlinks[path]
        self.dirs -= {p for p in self.dirs if p.startswith(prefix) and p not in keep}
        self.discard_tree(prefix, keep)

    def resolve(self, path: str) -> str:
        return resolve_parents(path, self.symlinks)

    def pointee(self, link: str) -> str:
        """Where the symlink at `link` leads, through every link on the way."""
        return self.resolve(posixpath.join(posixpath.dirname(link), self.symlinks[link]) + "/.")


class MemoryReader(Reader):
    """Keeps the contents of the regular files `want` selects (they should be small)."""

    def __init__(self, want: Callable[[str], bool]) -> None:
        super().__init__()
        self.want = want
        self.files: dict[str, bytes] = {}

    def add(self, path: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        if member.isreg() and self.want(path):
            f = tar.extractfile(member)
            self.files[path] = f.read() if f else b""
        elif member.islnk() and self.want(path):
            target = member_path(member.linkname)
            if target in self.files:
                self.files[path] = self.files[target]

    def discard(self, path: str) -> None:
        self.files.pop(path, None)

    def discard_tree(self, prefix: str, keep: set[str]) -> None:
        for path in [p for p in self.files if p.startswith(prefix) and p not in keep]:
            del self.files[path]

    def text(self, path: str) -> str | None:
        data = self.files.get(path)
        return None if data is None else data.decode("utf-8", errors="replace")


class TreeReader(Reader):
    """Writes the regular files `want` selects under `root` and remembers every regular file's
    path (written or not); `link` then adds the symlinks a reader of that tree needs."""

    def __init__(self, root: Path, want: Callable[[str], bool]) -> None:
        super().__init__()
        self.root, self.want = root, want
        self.regular: set[str] = set()

    def add(self, path: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        if not (member.isreg() or member.islnk()):
            return
        self.regular.add(path)
        # An entry under a symlink would land outside the tree: layers never hold one.
        if not self.want(path) or self.resolve(path) != path:
            return
        dest = self.root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if member.islnk():
            source = self.root / member_path(member.linkname)
            if source.is_file():
                os.link(source, dest)
        else:
            with open(dest, "xb") as out:
                shutil.copyfileobj(tar.extractfile(member), out, 1 << 20)  # type: ignore[misc]

    def link(self, want: Callable[[str], bool]) -> None:
        """Create the symlinks `want` selects, and every one that leads to a directory."""
        for path, target in self.symlinks.items():
            if self.resolve(path) != path:
                continue
            if want(path) or self.pointee(path) in self.dirs:
                dest = self.root / path
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, dest)

    def discard(self, path: str) -> None:
        if path in self.regular:
            self.regular.discard(path)
            (self.root / path).unlink(missing_ok=True)

    def discard_tree(self, prefix: str, keep: set[str]) -> None:
        self.regular -= {p for p in self.regular if p.startswith(prefix) and p not in keep}
        top = self.root / prefix
        if not top.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(top):
            rel = Path(dirpath).relative_to(self.root)
            for name in [*dirnames, *filenames]:
                if str(rel / name if str(rel) != "." else name) not in keep:
                    _remove(Path(dirpath) / name)
            dirnames[:] = [d for d in dirnames if (Path(dirpath) / d).is_dir()]


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
