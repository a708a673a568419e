"""The dependencies layer: cog plus the user's requirements, as wheels for the image's Python.

uv resolves and unpacks wheels for the image's Python version and glibc (every manylinux
tag up to it) into a scratch directory on the host; no container runs and nothing is
compiled. The scratch tree becomes one layer: packages in the image's site directory,
console scripts in its bin directory with shebangs pointing at the image's interpreter.
The layer is cached by the hash of everything that decides its contents.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import astuple, dataclass
from pathlib import Path

from ociasm.digestcache import FileStat
from ociasm.errors import OciasmError
from ociasm.image import StoredLayer
from ociasm.store import BlobStore

from . import recipe
from .tarstream import Entry, normal_mode, write_layer

RECIPE_VERSION = 1
# Variables that change what uv resolves; they are part of the cache key.
_UV_ENV = ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_FIND_LINKS",
           "UV_CONSTRAINT", "UV_OVERRIDE", "UV_PRERELEASE", "COG_SDK_WHEEL")


@dataclass(frozen=True)
class PythonTarget:
    """Where and for what the image's Python lives, read from the base image."""

    version: str           # "3.11"
    interpreter: str       # "/usr/local/bin/python3.11"
    site_dir: str          # "/usr/local/lib/python3.11/site-packages"
    bin_dir: str           # "/usr/local/bin"
    glibc: str             # "2.36": wheels tagged up to manylinux_2_36 fit
    has_python_command: bool  # `python` on PATH (coglet spawns its worker as `python`)

    @property
    def platform(self) -> str:
        return f"x86_64-manylinux_{self.glibc.replace('.', '_')}"


@dataclass(frozen=True)
class DepsLayer:
    layer: StoredLayer
    pip_freeze: str        # "name==version" lines, sorted
    cog_version: str


def cog_requirement(sdk_version: str | None) -> tuple[str, bool]:
    """The requirement line for cog and whether pre-releases are allowed."""
    if wheel := os.environ.get("COG_SDK_WHEEL"):
        return wheel, False
    if not sdk_version:
        return "cog", False
    pre = bool(re.search(r"(a|b|rc|dev|alpha|beta)\d*", sdk_version))
    return f"cog=={sdk_version}", pre


def recipe_key(target: PythonTarget, requirements: list[str], sdk_version: str | None) -> str:
    """Hash of every input that decides the layer's bytes."""
    # Local artifacts (a wheel may be GBs) count by their stat, ctime included (no tool sets it
    # back), not their bytes: a no-op rebuild must not read them.
    local = {line: astuple(FileStat.of(line)) for line in requirements if os.path.isabs(line)}
    return recipe.key(v=RECIPE_VERSION, target=target.__dict__, requirements=requirements, local=local,
                      cog=cog_requirement(sdk_version), env={k: os.environ.get(k) for k in _UV_ENV})


def cached(store: BlobStore, key: str) -> DepsLayer | None:
    hit = recipe.cached_layer(store, "deps", key)
    if hit is None or hit[0] is None:
        return None
    layer, record = hit
    return DepsLayer(layer, record["pip_freeze"], record["cog_version"])


def _uv_error(stderr: str, source: str) -> OciasmError:
    """uv's multi-line report, condensed to the line that says why."""
    lines = [re.sub(r"^[\s×╰─▶│]+(?:cause:\s*)?", "", l).strip() for l in stderr.splitlines()]
    lines = [l for l in lines if l and not l.startswith(("Using ", "Resolved ", "hint:"))]
    reason = next((l for l in lines if l.startswith("Because")), None) or (lines[-1] if lines else "uv failed")
    if m := re.search(r"[Bb]ecause (?:only )?([A-Za-z0-9_.\-]+)\S* (?:==\S+ )?has no (?:usable )?wheels?", reason):
        return OciasmError(f"{source}: package {m.group(1)} has no wheel for this image's Python and "
                           f"platform (manylinux x86_64): {reason}")
    return OciasmError(f"{source}: cannot resolve the Python dependencies: {reason}")


def _resolve(target: PythonTarget, requirements: list[str], sdk_version: str | None,
             dest: Path, source: str) -> None:
    cog_line, pre = cog_requirement(sdk_version)
    req_file = dest.parent / "requirements.txt"
    req_file.write_text("\n".join([*requirements, cog_line]) + "\n")
    cmd = [shutil.which("uv") or "uv", "pip", "install", "--quiet", "--target", str(dest),
           "--python-version", target.version, "--python-platform", target.platform,
           "--no-build", "--link-mode", "copy", "--no-config", "-r", str(req_file)]
    if pre:
        cmd.append("--prerelease=allow")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise _uv_error(proc.stderr, source)


def _freeze(site: Path) -> tuple[str, str]:
    pins, cog_version = [], ""
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        fields = dict(re.findall(r"^(Name|Version): (.+)$", meta.read_text(errors="replace"), re.M))
        pins.append(f"{fields['Name']}=={fields['Version']}")
        if fields["Name"].lower() == "cog":
            cog_version = fields["Version"]
    return "\n".join(sorted(pins, key=str.lower)), cog_version


def _entries(site: Path, target: PythonTarget) -> list[Entry]:
    entries: list[Entry] = []
    shebang = f"#!{target.interpreter}\n".encode()
    for root, dirs, files in os.walk(site):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel_root = Path(root).relative_to(site)
        in_bin = rel_root.parts[:1] == ("bin",)
        dest_root = (Path(target.bin_dir) / Path(*rel_root.parts[1:]) if in_bin
                     else Path(target.site_dir) / rel_root)
        for d in dirs:
            entries.append(Entry(str(dest_root / d), "dir", 0o755))
        for name in files:
            path = Path(root) / name
            if name.endswith(".pyc"):
                continue
            if path.is_symlink():
                entries.append(Entry(str(dest_root / name), "symlink", link=os.readlink(path)))
                continue
            data = path.read_bytes() if in_bin else None
            if data is not None and data.startswith(b"#!") and b"python" in data.split(b"\n", 1)[0]:
                data = shebang + data.split(b"\n", 1)[1]
            entries.append(Entry(str(dest_root / name), "file", normal_mode(path.stat().st_mode),
                                 source=None if data is not None else path, data=data))
    if not target.has_python_command:
        entries.append(Entry(f"{target.bin_dir}/python", "symlink", link=target.interpreter))
    return entries


def build(store: BlobStore, key: str, target: PythonTarget, requirements: list[str],
          sdk_version: str | None, source: str) -> DepsLayer:
    """Resolve, unpack and write the layer; record it under `key`."""
    with tempfile.TemporaryDirectory(dir=store.tmp_dir, prefix="deps-") as scratch:
        site = Path(scratch) / "site"
        _resolve(target, requirements, sdk_version, site, source)
        pip_freeze, cog_version = _freeze(site)
        layer = write_layer(store, _entries(site, target))
    recipe.remember(store, "deps", key, layer, pip_freeze=pip_freeze, cog_version=cog_version)
    return DepsLayer(layer, pip_freeze, cog_version)
