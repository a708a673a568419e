"""The statically generated schema as the real Cog runtime applies it: coglet validates inputs
with /src/.cog/openapi_schema.json and serves it at /openapi.json; train mode serves /trainings."""

from __future__ import annotations


import pytest
import requests

from clirun import built_digest, run_ociasm
from fixtures import engine
from realenv import copy_model

pytestmark = pytest.mark.real

TAG = "ociasm-test-choices:e2e"


@pytest.fixture(scope="module")
def choices_image(tmp_path_factory: pytest.TempPathFactory, fixture_registry, docker_engine: str):
    workdir = tmp_path_factory.mktemp("choices")
    project = copy_model("choices", workdir)
    built_digest(run_ociasm("build", "-t", TAG, "--registry-mirror", f"docker.io={fixture_registry.host}",
                            cwd=project, env={"OCIASM_CACHE_DIR": str(workdir / "cache")}))
    yield TAG
    engine.docker("rmi", "-f", TAG)


def detail(answer: requests.Response) -> str:
    assert answer.status_code == 422, answer.text
    return " ".join(d["msg"] for d in answer.json()["detail"])


def test_inputs_validated_by_generated_schema(choices_image: str) -> None:
    with engine.serve(choices_image) as model:
        ok = model.predict({"prompt": "hi", "size": "large", "steps": 50, "scale": 1.0})
        assert ok.status_code == 200 and ok.json()["output"] == "hi/large/50/1.0"
        assert model.predict({"prompt": "hi"}).json()["output"] == "hi/medium/10/0.5"
        assert "greater than the maximum of 50" in detail(model.predict({"prompt": "hi", "steps": 51}))
        assert "less than the minimum of 1" in detail(model.predict({"prompt": "hi", "steps": 0}))
        assert detail(model.predict({"prompt": "hi", "size": "huge"}))          # not a choice
        assert detail(model.predict({"size": "small"}))                          # prompt is required
        schema = requests.get(f"{model.url}/openapi.json", timeout=10).json()
        size = schema["components"]["schemas"]["Input"]["properties"]["size"]
        assert size["allOf"] == [{"$ref": "#/components/schemas/size"}]
        assert schema["components"]["schemas"]["size"]["enum"] == ["small", "medium", "large"]


def test_train_mode_serves_trainings(choices_image: str) -> None:
    with engine.serve(choices_image, command=("python", "-m", "cog.server.http", "--x-mode", "train")) as model:
        answer = requests.post(f"{model.url}/trainings", json={"input": {"name": "r1", "epochs": 2}}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["output"] == "trained r1 for 2 epochs"
        assert detail(requests.post(f"{model.url}/trainings", json={"input": {"name": "r1", "epochs": 9}},
                                    timeout=60))
