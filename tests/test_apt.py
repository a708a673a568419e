"""Daemonless system packages against a local apt repository (no network): the host's apt
resolves against the image's own sources and dpkg status; unpacking follows the image's
directory symlinks and dpkg's path filters; dpkg's and apt's state land in the layer;
packages whose scripts or triggers do real work are sent to a container."""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from ociasm.image import StoredLayer
from ociasm.layers import apt, dpkg
from ociasm.errors import OciasmError
from ociasm.layers.rootfs import MemoryReader, piped_tar
from ociasm.layers.tarstream import Entry, write_layer
from ociasm.progress import QuietProgress
from ociasm.store import BlobStore
from realenv import require_tools

ARCH = "amd64"
BASE_STATUS = """Package: oldpkg
Status: install ok installed
Priority: optional
Architecture: all
Version: 1.0
Description: an installed package
 that an upgrade changes

"""


@dataclass
class Link:
    target: str


def make_deb(out: Path, name: str, version: str, files: dict[str, bytes | Link], *, fields: str = "",
             scripts: dict[str, str] | None = None, control_files: dict[str, str] | None = None,
             modes: dict[str, int] | None = None, arch: str = ARCH) -> Path:
    root = out / "src" / f"{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: t <t@example.com>\n"
        f"{fields}Description: test package {name}\n long text\n")
    for script, text in (scripts or {}).items():
        (root / "DEBIAN" / script).write_text(text)
        (root / "DEBIAN" / script).chmod(0o755)
    for control, text in (control_files or {}).items():
        (root / "DEBIAN" / control).write_text(text)
    for path, content in files.items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            dest.symlink_to(content.target)
        else:
            dest.write_bytes(content)
            dest.chmod((modes or {}).get(path, 0o644))
    deb = out / f"{name}_{version}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    return deb


def write_index(repo: Path) -> None:
    """A flat repository's Packages file, as dpkg-scanpackages writes it."""
    stanzas = []
    for deb in sorted(repo.glob("*.deb")):
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True,
                                 text=True).stdout.rstrip("\n")
        data = deb.read_bytes()
        stanzas.append(f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                       f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    (repo / "Packages").write_text("\n".join(stanzas))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    require_tools("apt-get", "apt-config", "dpkg-deb")
    repo = tmp_path / "repo"
    repo.mkdir()
    make_deb(repo, "libdemo1", "1.0", {
        "/lib/x86_64-linux-gnu/libdemo.so.1.0": b"\x7fELF not really",
        "/lib/x86_64-linux-gnu/libdemo.so.1": Link("libdemo.so.1.0"),
        "/usr/share/doc/libdemo1/README": b"excluded by the image's dpkg filters",
        "/usr/share/doc/libdemo1/copyright": b"kept by path-include",
    }, fields="Multi-Arch: same\n", control_files={"triggers": "activate-noawait ldconfig\n"})
    make_deb(repo, "demo", "1:1.0-1", {
        "/usr/bin/demo": b"#!/bin/sh\necho demo\n",
        "/usr/bin/demo-suid": b"suid",
        "/etc/demo.conf": b"setting = 1\n",
    }, fields="Depends: libdemo1\nHomepage: https://example.com\n", modes={"/usr/bin/demo": 0o755,
           "/usr/bin/demo-suid": 0o4755}, control_files={"conffiles": "/etc/demo.conf\n"})
    make_deb(repo, "oldpkg", "2.0", {"/usr/share/oldpkg/kept.txt": b"new"}, arch="all")
    make_deb(repo, "scripted", "1.0", {"/usr/share/scripted/x": b"x"},
             scripts={"postinst": "#!/bin/sh\nset -e\nuseradd --system scripted\n"})
    make_deb(repo, "widgets", "1.0", {"/usr/share/widgets/w.txt": b"w"})
    make_deb(repo, "pybits", "1.0", {"/usr/lib/python3/dist-packages/pybits.py": b"x = 1\n"}, scripts={
        "postinst": "#!/bin/sh\nset -e\n\ncase \"$1\" in\n    configure)\n    ;;\n"
                    "    abort-upgrade|abort-remove|abort-deconfigure)\n    ;;\n    *)\n"
                    "        echo \"postinst called with unknown argument `$1'\" >&2\n        exit 1\n    ;;\nesac\n\n"
                    "# Automatically added by dh_python3\nif command -v py3compile >/dev/null 2>&1; then\n"
                    "\tpy3compile -p pybits\nfi\n# End automatically added section\n\nexit 0\n"})
    write_index(repo)
    return repo


@pytest.fixture
def base(tmp_path: Path, repo: Path) -> tuple[BlobStore, list[StoredLayer], dict]:
    """A Debian-like base: merged /usr (/lib -> usr/lib), dpkg filters like the slim images',
    one installed package, a file trigger owned by a package that does real work."""
    store = BlobStore(tmp_path / "store")
    files = {
        "/etc/apt/sources.list": f"deb [trusted=yes] file:{repo} ./\n",
        "/etc/dpkg/dpkg.cfg.d/docker": "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n",
        "/var/lib/dpkg/status": BASE_STATUS,
        "/var/lib/dpkg/info/oldpkg.list": "/.\n/usr\n/usr/share\n/usr/share/oldpkg\n"
                                          "/usr/share/oldpkg/gone.txt\n/usr/share/oldpkg/kept.txt\n",
        "/var/lib/dpkg/info/oldpkg.md5sums": "0  usr/share/oldpkg/gone.txt\n",
        "/var/lib/dpkg/triggers/ldconfig": "libc-bin\n",
        "/var/lib/dpkg/triggers/File": "/usr/share/widgets widgetd/noawait\n",
        "/var/lib/apt/extended_states": "",
        "/usr/share/oldpkg/gone.txt": "old", "/usr/share/oldpkg/kept.txt": "old",
    }
    entries = [Entry(p, "file", data=d.encode()) for p, d in files.items()]
    entries += [Entry("/lib", "symlink", link="usr/lib"), Entry("/usr/lib/x86_64-linux-gnu", "dir", 0o755),
                Entry("/usr/bin", "dir", 0o755)]
    return store, [write_layer(store, entries)], {"architecture": "amd64"}


def build(base, *packages: str) -> apt.AptLayer:
    store, layers, config = base
    request = apt.AptRequest(packages)
    return apt.build(store, apt.recipe_key(layers, request), layers, config, request, QuietProgress())


def members(store: BlobStore, layer: StoredLayer) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    data = gzip.decompress(store.read(layer.descriptor.digest))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar}  # type: ignore[union-attr]


def status_of(text: str, package: str) -> dict[str, str]:
    stanza = next(s for s in dpkg.parse_stanzas(text) if dpkg.field_value(s, "Package") == package)
    return dict(stanza)


def test_packages_unpack_through_the_images_symlinks_with_dpkg_state(base) -> None:
    built = build(base, "demo")
    assert built.installed == ("libdemo1=1.0", "demo=1:1.0-1")
    files = members(base[0], built.layer)
    # /lib is a symlink in the base: the library lands in usr/lib, and no `lib` directory shadows the link.
    assert files["usr/lib/x86_64-linux-gnu/libdemo.so.1.0"][1] == b"\x7fELF not really"
    assert files["usr/lib/x86_64-linux-gnu/libdemo.so.1"][0].linkname == "libdemo.so.1.0"
    assert not [n for n in files if n == "lib" or n.startswith("lib/")]
    # The base's dpkg path filters apply; modes (setuid included) are kept.
    assert "usr/share/doc/libdemo1/README" not in files
    assert files["usr/share/doc/libdemo1/copyright"][1] == b"kept by path-include"
    assert files["usr/bin/demo"][0].mode == 0o755 and files["usr/bin/demo-suid"][0].mode == 0o4755
    status = files["var/lib/dpkg/status"][1].decode()
    demo = status_of(status, "demo")
    assert demo["Status"] == "install ok installed" and demo["Version"] == "1:1.0-1"
    assert demo["Conffiles"] == f"\n /etc/demo.conf {hashlib.md5(b'setting = 1' + bytes([10])).hexdigest()}"
    assert list(demo)[:2] == ["Package", "Status"] and list(demo)[-1] == "Homepage"
    assert status_of(status, "oldpkg")["Description"] == "an installed package\n that an upgrade changes"
    # dpkg -L lists every path of the package, filtered ones included; Multi-Arch: same names info files name:arch.
    listed = files["var/lib/dpkg/info/libdemo1:amd64.list"][1].decode().splitlines()
    assert listed[0] == "/." and "/lib/x86_64-linux-gnu/libdemo.so.1.0" in listed
    assert "/usr/share/doc/libdemo1/README" in listed
    assert files["var/lib/dpkg/info/libdemo1:amd64.triggers"][1] == b"activate-noawait ldconfig\n"
    assert files["var/lib/dpkg/info/demo.conffiles"][1] == b"/etc/demo.conf\n"
    # apt marks what it pulled in as automatically installed.
    states = files["var/lib/apt/extended_states"][1].decode()
    assert "Package: libdemo1\nArchitecture: amd64\nAuto-Installed: 1" in states and "demo\n" not in states


def test_upgrade_whites_out_what_the_new_version_dropped(base) -> None:
    built = build(base, "oldpkg")
    assert built.installed == ("oldpkg=2.0",)
    files = members(base[0], built.layer)
    assert files["usr/share/oldpkg/kept.txt"][1] == b"new"
    assert "usr/share/oldpkg/.wh.gone.txt" in files
    assert "var/lib/dpkg/info/.wh.oldpkg.md5sums" in files  # the old version's info files go too
    assert status_of(files["var/lib/dpkg/status"][1].decode(), "oldpkg")["Version"] == "2.0"


def test_boilerplate_and_debhelper_snippets_stay_daemonless(base) -> None:
    assert build(base, "pybits").installed == ("pybits=1.0",)


@pytest.mark.parametrize("package, reason", [
    ("scripted", "scripted: its postinst script configures the system"),
    ("widgets", "trigger"),
])
def test_work_only_dpkg_can_do_needs_a_container(base, package: str, reason: str) -> None:
    with pytest.raises(apt.NeedsContainer) as info:
        build(base, package)
    assert reason in str(info.value)


def test_unknown_package_is_one_clear_error(base) -> None:
    with pytest.raises(apt.OciasmError, match=r"^system_packages: apt-get install .*Unable to locate package nosuch"):
        build(base, "nosuch")


def test_already_installed_gives_no_layer_and_the_key_ignores_order(base) -> None:
    store, layers, _ = base
    assert build(base, "oldpkg=1.0").layer is None
    assert apt.recipe_key(layers, apt.AptRequest(("a", "b"))) == apt.recipe_key(layers, apt.AptRequest(("b", "a")))
    assert apt.recipe_key(layers, apt.AptRequest(("a",))) != apt.recipe_key(layers[:0], apt.AptRequest(("a",)))


def test_same_packages_same_layer(base, tmp_path: Path) -> None:
    first = build(base, "demo")
    again = build(base, "demo")
    assert first.layer.descriptor.digest == again.layer.descriptor.digest


def test_signed_by_paths_point_into_the_private_root(tmp_path: Path) -> None:
    deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSigned-By: /usr/share/keyrings/k.gpg\n"
    one_line = "deb [arch=amd64 signed-by=/etc/apt/keyrings/k.asc] http://x ./\n"
    assert apt._rewrite_keyrings(deb822, tmp_path).endswith(f"Signed-By: {tmp_path}/usr/share/keyrings/k.gpg\n")
    assert f"signed-by={tmp_path}/etc/apt/keyrings/k.asc]" in apt._rewrite_keyrings(one_line, tmp_path)


@pytest.mark.parametrize("script, upgrade, works", [
    ("#!/bin/sh\nset -e\nexit 0\n", False, False),
    ("#!/bin/sh\nset -e\nupdate-alternatives --install /usr/bin/pager pager /usr/bin/less 77\n", False, True),
    ("#!/bin/sh\n# Automatically added by dh_installdeb/13\ndpkg-maintscript-helper rm_conffile /etc/x 1 -- \"$@\"\n"
     "# End automatically added section\n", False, False),
    ("#!/bin/sh\n# Automatically added by dh_installdeb/13\ndpkg-maintscript-helper rm_conffile /etc/x 1 -- \"$@\"\n"
     "# End automatically added section\n", True, True),
    ("#!/bin/sh\n# Automatically added by dh_installsystemd/13\ndeb-systemd-helper enable x.service\n"
     "# End automatically added section\n", False, True),
])
def test_script_classification(script: str, upgrade: bool, works: bool) -> None:
    assert dpkg._script_does_work(script, upgrade) is works


def test_symlinked_keys_are_copied_as_files(tmp_path: Path) -> None:
    """Ubuntu's trusted.gpg.d entries are links into /usr/share/keyrings."""
    store = BlobStore(tmp_path / "store")
    layer = write_layer(store, [
        Entry("/usr/share/keyrings/ubuntu-archive-keyring.gpg", "file", data=b"KEY"),
        Entry("/etc/apt/trusted.gpg.d/ubuntu-keyring-2018-archive.gpg", "symlink",
              link="/usr/share/keyrings/ubuntu-archive-keyring.gpg"),
        Entry("/etc/apt/trusted.gpg.d/relative.gpg", "symlink", link="../../../usr/share/keyrings/ubuntu-archive-keyring.gpg"),
        Entry("/etc/apt/trusted.gpg.d/dangling.gpg", "symlink", link="/nowhere.gpg")])
    reader = MemoryReader(apt._wanted).read([layer])
    assert sorted(apt._linked_files(reader)) == [("etc/apt/trusted.gpg.d/relative.gpg", b"KEY"),
                                                 ("etc/apt/trusted.gpg.d/ubuntu-keyring-2018-archive.gpg", b"KEY")]


def test_a_base_without_dpkg_is_named(tmp_path: Path) -> None:
    require_tools("apt-get", "apt-config", "dpkg-deb")
    store = BlobStore(tmp_path / "store")
    layers = [write_layer(store, [Entry("/etc/alpine-release", "file", data=b"3.19\n")])]
    with pytest.raises(dpkg.NotDebian, match="no /var/lib/dpkg/status"):
        apt.build(store, "k", layers, {}, apt.AptRequest(("tini",)), QuietProgress())


def test_a_command_that_prints_no_tar_fails_with_what_it_said() -> None:
    with pytest.raises(OciasmError, match=r"^x.deb: cannot unpack: no such package here$"):
        with piped_tar(["sh", "-c", "echo 'no such package here' >&2; exit 2"], "x.deb: cannot unpack") as tar:
            list(tar)
