"""The REST API over a real `hwnas serve` (uvicorn) and httpx: keys and scopes, tenants,
dataset uploads (validation, size limit, content hash), job requests, models of unfinished jobs."""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.service.fixtures import (
    Server,
    service_env,
    synthetic_server,
    write_npz,
)

UPLOAD_LIMIT = 300_000
HEX_ID = "0" * 32


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("api") / "home"
    env = service_env(home, HWNAS_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT))
    with synthetic_server(env) as server:
        yield server


@pytest.fixture(scope="module")
def user_key(server: Server) -> str:
    return server.key("user", "acme")


@pytest.fixture(scope="module")
def npz_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_npz(tmp_path_factory.mktemp("data") / "squares.npz")


def _example_path(path: str) -> str:
    """A concrete URL for an OpenAPI path template."""
    path = re.sub(r"\{(job_id|dataset_id|key_id|agent_id|task_id|id)\}", HEX_ID, path)
    path = path.replace("{name}", "onnx")
    return re.sub(r"\{[a-z_]+\}", "x1", path)


def test_every_route_refuses_a_request_without_a_valid_key(server: Server) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    checked = 0
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for path, methods in spec["paths"].items():
            if path == "/health":
                continue
            for method in methods:
                url = _example_path(path)
                missing = client.request(method.upper(), url)
                assert missing.status_code == 401, (method, path, missing.text)
                assert missing.headers["www-authenticate"] == "Bearer"
                bad = client.request(
                    method.upper(), url, headers={"Authorization": "Bearer hwnas_0000_nope"}
                )
                assert bad.status_code == 401, (method, path, bad.text)
                checked += 1
    assert checked >= 10


def test_wrong_scope_is_403(server: Server, user_key: str) -> None:
    agent_key = server.key("agent", "acme")
    with server.client(agent_key) as client:
        response = client.get("/jobs")
        assert response.status_code == 403
        assert "scope user" in response.json()["detail"]
    with server.client(user_key) as client:
        assert client.get("/keys").status_code == 403


def test_admin_manages_keys_and_a_revoked_key_stops_working(server: Server) -> None:
    with server.client(server.key("admin")) as admin:
        created = admin.post("/keys", json={"scope": "user", "tenant": "beta"})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["key"].startswith("hwnas_") and body["tenant"] == "beta"
        listed = admin.get("/keys").json()["keys"]
        assert body["id"] in {k["id"] for k in listed}
        assert all("key" not in k and "key_hash" not in k for k in listed)
        assert admin.post("/keys", json={"scope": "root"}).status_code == 422
        assert admin.post("/keys", json={"scope": "user", "extra": 1}).status_code == 422
        with server.client(body["key"]) as user:
            assert user.get("/jobs").status_code == 200
            assert admin.delete(f"/keys/{body['id']}").status_code == 204
            assert admin.delete(f"/keys/{body['id']}").status_code == 404
            deadline = time.monotonic() + 15  # API processes cache a key for a few seconds
            while user.get("/jobs").status_code != 401:
                assert time.monotonic() < deadline, "revoked key still accepted"
                time.sleep(0.5)


def test_keys_are_stored_hashed(server: Server) -> None:
    import sqlite3

    key = server.key("user", "hashcheck")
    database = Path(server.env["HWNAS_HOME"]) / "hwnas.db"
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT prefix, key_hash FROM api_keys").fetchall()
    assert all(key not in (prefix, digest) for prefix, digest in rows)
    assert key.encode() not in database.read_bytes()


def _upload(client: httpx.Client, name: str, content: bytes) -> httpx.Response:
    return client.post("/datasets", files={"file": (name, content)})


def test_npz_upload_is_validated_stored_by_hash_and_private_to_its_tenant(
    server: Server, user_key: str, npz_file: Path
) -> None:
    content = npz_file.read_bytes()
    with server.client(user_key) as client:
        first = _upload(client, "squares.npz", content)
        assert first.status_code == 201, first.text
        dataset = first.json()
        assert dataset["format"] == "npz" and dataset["num_classes"] == 3
        assert dataset["input_shape"] == [1, 12, 12] and dataset["samples"] == 240
        again = _upload(client, "again.npz", content)
        assert again.status_code == 200 and again.json()["id"] == dataset["id"]
        assert (
            client.get(f"/datasets/{dataset['id']}").json()["content_hash"]
            == dataset["content_hash"]
        )
        assert dataset["id"] in {d["id"] for d in client.get("/datasets").json()["datasets"]}
    stored = Path(server.env["HWNAS_HOME"]) / "artifacts" / "datasets"
    assert [p.name for p in stored.iterdir()] == [f"{dataset['content_hash']}.npz"]
    with server.client(server.key("user", "other-tenant")) as other:
        assert other.get(f"/datasets/{dataset['id']}").status_code == 404
        assert dataset["id"] not in {d["id"] for d in other.get("/datasets").json()["datasets"]}


def _image_folder_zip(classes: int = 2, per_class: int = 6) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(1)
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in range(classes):
            for i in range(per_class):
                pixels = (rng.uniform(0, 255, (10, 10)) * (label + 1) / classes).astype(np.uint8)
                png = io.BytesIO()
                Image.fromarray(pixels, mode="L").save(png, format="PNG")
                archive.writestr(f"shapes/class{label}/{i}.png", png.getvalue())
    return buffer.getvalue()


def test_image_folder_zip_upload(server: Server, user_key: str) -> None:
    with server.client(user_key) as client:
        response = _upload(client, "shapes.zip", _image_folder_zip())
    assert response.status_code == 201, response.text
    assert response.json()["format"] == "zip" and response.json()["num_classes"] == 2


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("junk.npz", b"not a zip at all", "cannot read .npz"),
        ("junk.bin", b"not a zip at all", "not a .zip"),
        ("bad.zip", b"PK not really", "not a readable zip"),
        ("empty.zip", b"", "empty"),
    ],
)
def test_invalid_upload_is_422_with_the_reason(
    server: Server, user_key: str, name: str, content: bytes, reason: str
) -> None:
    with server.client(user_key) as client:
        response = _upload(client, name, content)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert "/tmp" not in response.json()["detail"]  # names the upload, not a server path


def test_single_class_npz_is_refused(server: Server, user_key: str, tmp_path: Path) -> None:
    path = write_npz(tmp_path / "one.npz", samples=30, classes=1)
    with server.client(user_key) as client:
        response = _upload(client, "one.npz", path.read_bytes())
    assert response.status_code == 422 and "at least 2 classes" in response.json()["detail"]


def test_upload_without_a_file_part_is_422(server: Server, user_key: str) -> None:
    with server.client(user_key) as client:
        assert client.post("/datasets", data={"name": "x"}).status_code == 422
        assert client.post("/datasets", content=b"raw").status_code == 422


def test_oversize_upload_is_413_while_streaming(server: Server, user_key: str) -> None:
    """A chunked body (no Content-Length) is cut off by counting what streams in."""
    chunk = b"\0" * 65536

    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.npz"\r\n\r\n'
        for _ in range(2 * UPLOAD_LIMIT // len(chunk) + 2):
            yield chunk
        yield b"\r\n--b--\r\n"

    with server.client(user_key) as client:
        streamed = client.post(
            "/datasets", content=body(), headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        assert streamed.status_code == 413, streamed.text
        declared = _upload(client, "big.npz", b"\0" * (UPLOAD_LIMIT + 100_000))
        assert declared.status_code == 413
    leftovers = list((Path(server.env["HWNAS_HOME"]) / "artifacts" / "tmp").glob("upload-*"))
    assert leftovers == []


def _job(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "space": "fbnet-tiny",
        "dataset": "digits",
        "devices": ["cpu-synth"],
        "budgets": {"cpu-synth": 1.0},
        "epochs": 1,
        "warmup_epochs": 0,
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"space": "nosuch"}, "space"),
        ({"devices": ["nowhere"], "budgets": {"nowhere": 1.0}}, "unknown device"),
        ({"dataset": "f" * 32}, "unknown dataset"),
        ({"strategy": "magic"}, "unknown strategy"),
        ({"epochs": 0}, "epochs"),
        ({"budgets": {"other": 1.0}}, "not in devices"),
        ({"budgets": {}}, "needs a latency budget"),
        ({"export_formats": ["exe"]}, "export_formats"),
        ({"surprise": True}, "surprise"),
        ({"options": {"no_such_option": 1}}, "has no option(s) no_such_option"),
        ({"strategy": "random", "options": {"margin": 0.1}}, "has no option(s) margin"),
        ({"options": {"margin": "big"}}, "margin must be"),
        ({"arch_lr": 0}, "arch_lr"),
        ({"warmup_epochs": 3}, "warmup_epochs"),
    ],
)
def test_bad_job_requests_are_422_with_a_reason(
    server: Server, user_key: str, overrides: dict[str, object], needle: str
) -> None:
    with server.client(user_key) as client:
        response = client.post("/jobs", json=_job(**overrides))
    assert response.status_code == 422, response.text
    assert needle in str(response.json()["detail"])


def test_queued_job_cancel_events_and_tenancy(server: Server, user_key: str) -> None:
    with server.client(user_key) as client:
        created = client.post("/jobs", json=_job())
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        job = client.get(f"/jobs/{job_id}").json()
        assert job["state"] == "queued" and job["request"]["space"] == "fbnet-tiny"
        assert client.get(f"/models/{job_id}/onnx").status_code == 409
        with server.client(server.key("user", "intruder")) as other:
            assert other.get(f"/jobs/{job_id}").status_code == 404
            assert other.post(f"/jobs/{job_id}/cancel").status_code == 404
            assert other.get(f"/jobs/{job_id}/events").status_code == 404
            assert other.get(f"/models/{job_id}/onnx").status_code == 404
        cancelled = client.post(f"/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert client.post(f"/jobs/{job_id}/cancel").json()["state"] == "cancelled"
        stream = client.get(f"/jobs/{job_id}/events")  # follows, and ends: the job is final
        assert stream.headers["content-type"].startswith("text/event-stream")
        kinds = re.findall(r"^event: (\S+)$", stream.text, re.M)
        states = re.findall(r'"state":"(\w+)"', stream.text)
        assert kinds == ["state", "state"] and states == ["queued", "cancelled"]
        ids = [int(i) for i in re.findall(r"^id: (\d+)$", stream.text, re.M)]
        resumed = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": str(ids[0])})
        assert re.findall(r'"state":"(\w+)"', resumed.text) == ["cancelled"]
        listed = client.get("/jobs", params={"state": "cancelled"}).json()["jobs"]
        assert job_id in {j["id"] for j in listed}
        assert client.get(f"/jobs/{HEX_ID}").status_code == 404
        assert client.get("/jobs/not-an-id").status_code == 422


def _unbounded(schema: dict, components: dict, where: str) -> list[str]:
    """Fields of a request schema without bounds (strings: length or enum, numbers: range,
    arrays: items, objects: no extra keys or a key limit)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _unbounded(components[name], components, name)
    problems = []
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            problems += _unbounded(sub, components, f"{where}[{i}]")
    kind = schema.get("type")
    if kind == "string" and not ({"maxLength", "enum", "const"} & set(schema)):
        problems.append(where)
    if kind in ("integer", "number") and not (
        ({"maximum", "exclusiveMaximum"} & set(schema))
        and ({"minimum", "exclusiveMinimum"} & set(schema))
    ):
        problems.append(where)
    if kind == "array":
        if "maxItems" not in schema:
            problems.append(where)
        problems += _unbounded(schema.get("items", {}), components, f"{where}[]")
    if kind == "object":
        extra = schema.get("additionalProperties", True)
        if extra is not False and "maxProperties" not in schema:
            problems.append(f"{where} (extra keys)")
        values = [extra] if isinstance(extra, dict) else []
        values += list(schema.get("patternProperties", {}).values())
        for value in values:
            problems += _unbounded(value, components, f"{where}{{}}")
        for name, sub in schema.get("properties", {}).items():
            problems += _unbounded(sub, components, f"{where}.{name}")
    return problems


def test_openapi_is_complete_for_generated_clients(server: Server) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    operations = [op for methods in spec["paths"].values() for op in methods.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)) and "jobs_create" in ids and "models_download" in ids
    components = spec["components"]["schemas"]
    for operation in operations:
        if operation["operationId"] != "health_health":
            assert {"401", "403"} <= set(operation["responses"]), operation["operationId"]
        assert any(code.startswith("2") for code in operation["responses"])
    for name in ("JobCreate", "KeyCreate"):
        assert components[name]["additionalProperties"] is False
        assert _unbounded({"$ref": f"#/components/schemas/{name}"}, components, name) == []
    upload = spec["paths"]["/datasets"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["required"] == ["file"]
