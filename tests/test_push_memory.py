"""Pushing a 4 GiB layer keeps the pusher's memory flat: the CLI process's peak RSS stays under
256 MiB (VmHWM, see fixtures/bigpush.py). Not a timing test: bench/bench_push.py prints throughput."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fixtures.bigpush import run_measured, sparse_layout

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
    try:
        proc, peak = run_measured(["push", "--from", f"oci:{layout}", ref, "--progress", "plain"], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip() == f"{ref}@{digest}"
        assert "4.3 GB in" in proc.stderr  # the whole layer went through this process
        assert peak < MAX_RSS_MIB, f"peak RSS {peak:.0f} MiB"
    finally:
        registry.stop()
        shutil.rmtree(registry.log.parent / "storage", ignore_errors=True)  # 4 GiB the registry wrote
