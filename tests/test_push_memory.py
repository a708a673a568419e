"""Pushing a 4 GiB layer keeps the pusher's memory flat: peak RSS (from wait4 of the real CLI
process) stays under 256 MiB. Not a timing test: bench/bench_push.py prints the throughput."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.bigimage import sparse_layout

pytestmark = pytest.mark.real

SIZE = 4 << 30
MAX_RSS_MIB = 256


def test_pushing_a_4_gib_layer_keeps_peak_rss_under_256_mib(registry_factory, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OCIASM_PUSH_CHUNK_SIZE", raising=False)  # the default: 128 MiB PATCH chunks
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    layout = tmp_path / "layout"
    digest = sparse_layout(layout, SIZE)  # zeros in a sparse file: no disk, quick to hash
    registry = registry_factory()
    ref = f"{registry.host}/big/layer:1"
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    try:
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "ociasm", "push", "--from", f"oci:{layout}", ref,
                                     "--progress", "plain"], cwd=tmp_path, stdout=stdout, stderr=stderr)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        assert proc.returncode == 0, err.read_text()[-3000:]
        assert out.read_text().strip() == f"{ref}@{digest}"
        assert usage.ru_maxrss / 1024 < MAX_RSS_MIB, f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB"
    finally:
        registry.stop()
        shutil.rmtree(registry.log.parent / "storage", ignore_errors=True)  # 4 GiB the registry wrote
