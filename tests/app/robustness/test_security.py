"""Security properties: the models directory cannot be escaped, only safetensors load, no remote code
runs, the API key is compared in constant time and never logged.

Already covered elsewhere (not repeated here): the key guards /predict and /v1/models while /health*
and /metrics stay open (tests/app/test_api.py::test_api_key_guards_predict_and_models_only), the body
limit (test_api.py::test_body_limit_is_enforced_before_parsing), pickle files listed in the manifest
(tests/app/test_cli.py::test_pickle_weights_are_refused_even_when_listed), names with separators
(tests/training/test_store.py), and the non-root container user
(tests/deploy/test_dockerfile.py::test_final_stage_runs_the_server_as_non_root).
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import main as serve_main
from app.config import Settings
from app.lifecycle.service import load_configured
from inference.errors import ModelLoadError
from inference.loader import locate as locate_in_store
from store.model_store import ModelStore
from tests.helpers.app import TEST_SETTINGS
from tests.helpers.models import reseal
from tests.helpers.serve import ServeProcess


def settings_for(models_dir: Path, **overrides: Any) -> Settings:
    return Settings(models_dir=models_dir, **{**TEST_SETTINGS, **overrides})


def locate(settings: Settings) -> Any:
    return locate_in_store(ModelStore(settings.models_dir), settings.name, settings.version)


# ---- the models directory cannot be escaped --------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("../sentiment", "latest"),
        ("/etc", "latest"),
        ("sentiment/../../outside", "latest"),
        ("..", "latest"),
        ("sentiment", "../1"),
        ("sentiment", "/etc/passwd"),
        ("sentiment", "1/../../outside/1"),
        ("sentiment", ".."),
    ],
)
def test_name_and_version_cannot_point_outside_the_store(
    publish_tiny: Callable[..., Path], tmp_path: Path, name: str, version: str
) -> None:
    models = publish_tiny().parent.parent
    (tmp_path / "outside" / "1").mkdir(parents=True)  # a target the traversal would reach
    with pytest.raises(ModelLoadError):
        locate(settings_for(models, name=name, version=version))


def test_symlinked_model_name_version_and_files_are_refused(publish_tiny: Callable[..., Path], tmp_path: Path) -> None:
    version_dir = publish_tiny()
    models = version_dir.parent.parent
    outside = tmp_path / "outside"
    shutil.copytree(version_dir, outside / "1")  # a valid-looking model outside the store

    (models / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelLoadError, match="outside the models directory"):
        locate(settings_for(models, name="evil"))

    (models / "sentiment" / "2").symlink_to(outside / "1", target_is_directory=True)
    with pytest.raises(ModelLoadError, match="outside the models directory"):
        locate(settings_for(models, version="2"))
    (models / "sentiment" / "2").unlink()

    # A weight file that is a link to a file elsewhere, with a manifest that records it as such.
    weights = version_dir / "model.safetensors"
    weights.unlink()
    weights.symlink_to(outside / "1" / "model.safetensors")
    reseal(version_dir)
    with pytest.raises(ModelLoadError, match=r"symlink: model\.safetensors"):
        locate(settings_for(models))


def test_an_alias_cannot_smuggle_a_path(publish_tiny: Callable[..., Path]) -> None:
    models = publish_tiny().parent.parent
    (models / "sentiment" / "aliases.json").write_text(json.dumps({"production": "../../outside"}))
    with pytest.raises(ModelLoadError, match="cannot resolve"):
        locate(settings_for(models, version="production"))


# ---- only safetensors, never remote code ------------------------------------------------------
def test_a_directory_with_only_pytorch_model_bin_is_refused(publish_tiny: Callable[..., Path]) -> None:
    import torch

    from tests.helpers.models import build_tiny_bert

    version_dir = publish_tiny()
    (version_dir / "model.safetensors").unlink()
    torch.save(build_tiny_bert(["negative", "positive"]).state_dict(), version_dir / "pytorch_model.bin")
    reseal(version_dir)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors|pickle"):
        load_configured(settings_for(version_dir.parent.parent))


def test_auto_map_code_in_a_model_directory_is_never_executed(
    publish_tiny: Callable[..., Path], tmp_path: Path
) -> None:
    version_dir = publish_tiny()
    marker = tmp_path / "remote-code-ran"
    (version_dir / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('pwned')\n"
        "from transformers import BertConfig, BertForSequenceClassification\n"
        "class EvilConfig(BertConfig):\n    pass\n"
        "class EvilModel(BertForSequenceClassification):\n    pass\n"
    )
    config = json.loads((version_dir / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "evil.EvilConfig",
        "AutoModelForSequenceClassification": "evil.EvilModel",
    }
    (version_dir / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((version_dir / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (version_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    reseal(version_dir)
    try:
        loaded = load_configured(settings_for(version_dir.parent.parent))
    except ModelLoadError:
        pass  # refusing is fine too; running the code is not
    else:
        assert loaded.source.version == 1
    assert not marker.exists(), "code from the model directory was executed"


def test_requests_cannot_choose_a_model_path(make_client: Callable[..., Any]) -> None:
    client = make_client()
    for extra in ({"model": "../../etc"}, {"name": "/etc/passwd"}, {"version": "../1"}):
        response = client.post("/predict", json={"text": "hello", **extra})
        assert response.status_code == 422 and response.json()["error_type"] == "invalid_request"
    served = client.get("/v1/models", params={"name": "../x", "version": "/etc"}).json()["models"]
    assert [(m["name"], m["version"]) for m in served] == [("sentiment", 1)]


# ---- API key ------------------------------------------------------------------------------------
def test_api_key_is_compared_with_compare_digest(
    make_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(api_key="k" * 32)
    compared: list[tuple[bytes, bytes]] = []
    real = secrets.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(secrets, "compare_digest", spy)
    for token, status in (("k" * 32, 200), ("k" * 31 + "x", 401), ("short", 401), ("k" * 64, 401)):
        response = client.post("/predict", json={"text": "hi"}, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == status
        assert compared[-1] == (token.encode(), b"k" * 32)


def test_api_key_never_reaches_the_logs(
    start_server: Callable[..., ServeProcess], shared_models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, other = "sk-" + secrets.token_hex(16), "sk-" + secrets.token_hex(16)
    server = start_server(shared_models_dir, "--log-level", "debug", "--access-log", env={"SENTIMENT_API_KEY": key})
    ok = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/predict", json={"text": "fine"}, headers=ok).status_code == 200
        assert (
            client.post("/predict", json={"text": "x"}, headers={"Authorization": f"Bearer {other}"}).status_code == 401
        )
        assert client.post("/predict", json={"text": ""}, headers=ok).status_code == 422
        assert client.get("/predict", headers=ok).status_code == 405
        for path in ("/v1/models", "/health", "/metrics", "/openapi.json"):
            body = client.get(path, headers=ok).text
            assert key not in body, path
    assert server.terminate(30) == 0
    log = server.log()
    assert "401 unauthorized" in log and "GET /predict" in log  # the requests really were logged
    assert key not in log
    assert other not in log  # a wrong key may be someone's real key for another service

    # Refusing to start because of a bad setting does not echo the key either.
    assert serve_main(["--port", "99999", "--api-key", key]) == 2
    captured = capsys.readouterr()
    assert key not in captured.out + captured.err
    assert key not in repr(Settings(api_key=key)) and key not in str(Settings(api_key=key).model_dump())
