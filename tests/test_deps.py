"""The dependencies recipe: what its cache key covers, and uv's failures as one line."""

from __future__ import annotations

from pathlib import Path

from ociasm.layers import deps

TARGET = deps.PythonTarget("3.11", "/usr/bin/python3.11", "/usr/local/lib/python3.11/dist-packages",
                           "/usr/local/bin", "2.36", True)


def test_local_artifacts_count_by_stat_and_a_change_is_seen(tmp_path: Path) -> None:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    wheel.write_bytes(b"one")
    requirements = ["numpy==2.1.3", str(wheel)]
    first = deps.recipe_key(TARGET, requirements, None)
    assert deps.recipe_key(TARGET, requirements, None) == first
    wheel.write_bytes(b"two")  # same size: the ctime still moves
    assert deps.recipe_key(TARGET, requirements, None) != first


def test_inputs_that_change_the_layer_change_the_key(monkeypatch) -> None:
    base = deps.recipe_key(TARGET, ["numpy==2.1.3"], None)
    assert deps.recipe_key(TARGET, ["numpy==2.1.2"], None) != base
    assert deps.recipe_key(TARGET, ["numpy==2.1.3"], "0.16.0") != base
    monkeypatch.setenv("UV_INDEX_URL", "http://127.0.0.1:9/simple")
    assert deps.recipe_key(TARGET, ["numpy==2.1.3"], None) != base


def test_uv_reasons_become_one_line() -> None:
    stderr = ("  × No solution found when resolving dependencies:\n"
              "  ╰─▶ Because pyyaml==5.4.1 has no usable wheels and you require pyyaml==5.4.1, we can\n"
              "      conclude that your requirements are unsatisfiable.\n")
    message = str(deps._uv_error(stderr, "requirements.txt"))
    assert message.startswith("requirements.txt: package pyyaml has no wheel for this image's Python")
    assert "\n" not in message
