"""`--secret` in Cog's forms, and what a secret may reach: only the steps that mount it, their
cache key (as a digest of its contents), never a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from ociasm.config import load_config
from ociasm.errors import OciasmError
from ociasm.image import Image
from ociasm.layers import runsteps
from ociasm.secrets import SecretSource, parse_secret, parse_secrets
from ociasm.system import check, run_steps

STAGE = Image({"rootfs": {"type": "layers", "diff_ids": []}}, ())


def test_file_and_env_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret")
    monkeypatch.setenv("TOKEN_VAR", "v")
    assert parse_secret(f"id=tok,src={token}") == SecretSource("tok", src=token)
    assert parse_secret(f"id=tok,source={token}") == SecretSource("tok", src=token)
    assert parse_secret("id=tok,env=TOKEN_VAR") == SecretSource("tok", env="TOKEN_VAR")
    assert parse_secret("id=TOKEN_VAR,type=env") == SecretSource("TOKEN_VAR", env="TOKEN_VAR")
    assert parse_secret("type=env,id=tok,src=TOKEN_VAR") == SecretSource("tok", env="TOKEN_VAR")


@pytest.mark.parametrize("spec, message", [
    ("id=tok,src=/nonexistent/file", "--secret id=tok: /nonexistent/file is not a readable file"),
    ("id=tok,env=OCIASM_TEST_UNSET_VAR", "--secret id=tok: environment variable OCIASM_TEST_UNSET_VAR is not set"),
    ("id=tok", "--secret id=tok: give exactly one of src=FILE or env=VAR"),
    ("id=a b,src=x", "--secret id=…,src=…: id must be letters, digits, '.', '_' or '-'"),
    ("id=tok,value=hunter2", "--secret id=…,value=…: expected id=NAME,src=FILE or id=NAME,env=VAR"),
])
def test_bad_specs_name_the_problem_never_a_value(spec: str, message: str) -> None:
    with pytest.raises(OciasmError) as info:
        parse_secret(spec)
    assert str(info.value) == message


def test_an_id_given_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("x")
    with pytest.raises(OciasmError, match=r"^--secret id=tok is given more than once$"):
        parse_secrets([f"id=tok,src={tmp_path / 't'}", f"id=tok,src={tmp_path / 't'}"])


def _project(tmp_path: Path) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "cog.yaml").write_text(
        'build:\n  python_version: "3.11"\n  run:\n    - echo plain\n'
        '    - command: cat /run/secrets/tok > /dev/null\n      mounts:\n'
        '        - {type: secret, id: tok, target: /run/secrets/tok}\n  pre_install:\n    - echo legacy\n')
    return tmp_path


def test_steps_are_written_in_cogs_form(tmp_path: Path) -> None:
    steps = run_steps(load_config(_project(tmp_path)))
    assert [s.line for s in steps] == [
        "RUN echo plain",
        "RUN --mount=type=secret,id=tok,target=/run/secrets/tok cat /run/secrets/tok > /dev/null",
        "RUN echo legacy"]  # Cog appends the deprecated pre_install after run
    assert [s.secrets for s in steps] == [(), ("tok",), ()]
    assert steps[2].label == "build.pre_install[0]"


def test_a_mounted_secret_must_be_given(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path))
    with pytest.raises(OciasmError) as info:
        check(config, ())
    assert str(info.value) == ("cog.yaml:3: build.run[1] mounts secret 'tok'; pass --secret id=tok,src=FILE "
                               "(or env=VAR)")


def test_cache_key_follows_mounted_secret_contents_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = run_steps(load_config(_project(tmp_path / "p")))
    token = tmp_path / "token"
    token.write_text("one")
    other = tmp_path / "other"
    other.write_text("unmounted")
    first = runsteps.recipe_key(STAGE, steps, (SecretSource("tok", src=token),))
    # An unmounted secret, or the same contents from the environment, leave the key alone.
    monkeypatch.setenv("TOK", "one")
    assert runsteps.recipe_key(STAGE, steps, (SecretSource("tok", env="TOK"),
                                              SecretSource("unused", src=other))) == first
    token.write_text("two")
    assert runsteps.recipe_key(STAGE, steps, (SecretSource("tok", src=token),)) != first


def test_relayed_output_masks_secret_values(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("hunter2-value\n")
    redact = runsteps._Redactor([SecretSource("tok", src=token)])
    assert redact("#7 0.25 token is hunter2-value!") == "#7 0.25 token is ****!"
