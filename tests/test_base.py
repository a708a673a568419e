"""Reading the base image's Python without running it: both layouts, glibc, `python` on PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from ociasm.base import _scan, python_target
from ociasm.errors import OciasmError
from ociasm.layers.tarstream import Entry, write_layer
from ociasm.store import BlobStore

DPKG_STATUS = ("Package: libc-bin\nVersion: 2.36-9\n\n"
               "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u7\n\n")
CONFIG = {"config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]}}


def test_official_python_layout() -> None:
    target = python_target({"usr/local/bin/python3.11", "usr/local/bin/python", "usr/bin/python3.11"},
                           DPKG_STATUS, CONFIG, "3.11", "python:3.11-slim")
    assert (target.interpreter, target.site_dir) == ("/usr/local/bin/python3.11",
                                                     "/usr/local/lib/python3.11/site-packages")
    assert target.glibc == "2.36" and target.has_python_command
    assert target.platform == "x86_64-manylinux_2_36"


def test_debian_python_layout_without_python_command() -> None:
    target = python_target({"usr/bin/python3.11"}, None, CONFIG, "3.11", "debian")
    assert (target.interpreter, target.site_dir) == ("/usr/bin/python3.11",
                                                     "/usr/local/lib/python3.11/dist-packages")
    assert target.glibc == "2.17"          # no dpkg status: the manylinux2014 floor
    assert not target.has_python_command   # the deps layer then adds /usr/local/bin/python


def test_no_matching_interpreter_is_a_clear_error() -> None:
    with pytest.raises(OciasmError, match=r"base image python:3.12-slim has no Python 3.12 \(looked for "
                                          r"/usr/local/bin/python3.12 and /usr/bin/python3.12\)"):
        python_target({"usr/bin/python3.11"}, DPKG_STATUS, CONFIG, "3.12", "python:3.12-slim")


def test_scan_applies_whiteouts_across_layers(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    lower = write_layer(store, [Entry("/usr/bin/python3.11", "file", 0o755, data=b"elf"),
                                Entry("/usr/bin/python", "symlink", link="python3.11"),
                                Entry("/var/lib/dpkg/status", "file", data=DPKG_STATUS.encode())])
    upper = write_layer(store, [Entry("/usr/bin/.wh.python", "file", data=b"")])
    present, status = _scan((lower, upper), "3.11")[:2]
    assert "usr/bin/python3.11" in present and "usr/bin/python" not in present
    assert status == DPKG_STATUS
