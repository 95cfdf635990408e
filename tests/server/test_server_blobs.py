"""Attachment blobs on a real uvicorn server: streaming upload and download, the size limit,
expiry, deletion after N downloads, deletion by the uploader."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.server.api_fixtures import Api, make_config
from tests.server.feature_helpers import live_server
from tests.server.server_helpers import FakeClock
from tests.server.test_server_api import assert_error

LIMIT = 512 * 1024  # --max-blob-size in these tests; max_body (the JSON limit) is 192 KiB


class Blobs:
    def __init__(self, http: httpx.AsyncClient, clock: FakeClock, blob_dir: Path, purge: object) -> None:
        self.http, self.clock, self.dir, self.api = http, clock, blob_dir, Api(http, clock)
        self.purge = purge


@pytest.fixture
async def blobs(tmp_path: Path, fresh_db: str) -> AsyncIterator[Blobs]:
    clock = FakeClock()
    config = make_config(tmp_path, fresh_db, max_blob_size=LIMIT)
    async with live_server(config, clock) as (http, app):
        yield Blobs(http, clock, config.blob_dir, app.state.blobs.purge)


def files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


async def test_upload_and_download_stream(blobs: Blobs) -> None:
    alice, bob = await blobs.api.person("alice"), await blobs.api.person("bob")
    data = os.urandom(300 * 1024)  # over the 192 KiB JSON body limit: blobs are exempt from it

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked transfer
        for i in range(0, len(data), 50_000):
            yield data[i:i + 50_000]

    r = await blobs.http.post("/v1/blobs", headers=alice.auth(), content=chunks())
    assert r.status_code == 201, r.text
    out = r.json()
    assert out == {"blob_id": out["blob_id"], "size": len(data)}  # no server-side hash (0003)
    assert (blobs.dir / out["blob_id"]).read_bytes() == data
    assert len(out["blob_id"]) == 22 and files(blobs.dir) == [out["blob_id"]]
    async with blobs.http.stream("GET", f"/v1/blobs/{out['blob_id']}", headers=bob.auth()) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/octet-stream"
        assert int(resp.headers["content-length"]) == len(data)
        got = b"".join([c async for c in resp.aiter_bytes()])
    assert got == data
    r = await blobs.http.post("/v1/blobs", headers=alice.auth(), content=b"")
    assert r.status_code == 201 and r.json()["size"] == 0
    assert (await blobs.http.get(f"/v1/blobs/{r.json()['blob_id']}", headers=bob.auth())).content == b""
    assert_error(await blobs.http.post("/v1/blobs", content=b"x"), 401, "unauthorized")
    assert_error(await blobs.http.get(f"/v1/blobs/{out['blob_id']}"), 401, "unauthorized")
    assert_error(await blobs.http.get("/v1/blobs/nope", headers=bob.auth()), 404, "unknown_blob")
    assert_error(await blobs.http.get("/v1/blobs/" + "A" * 22, headers=bob.auth()), 404, "unknown_blob")
    r = await blobs.http.post("/v1/blobs", params={"max_age": 31 * 86400}, headers=alice.auth(), content=b"x")
    assert_error(r, 422, "invalid_request")


async def test_size_limit_is_413_and_leaves_nothing(blobs: Blobs) -> None:
    alice = await blobs.api.person("alice")
    r = await blobs.http.post("/v1/blobs", headers=alice.auth(), content=os.urandom(LIMIT))
    assert r.status_code == 201  # exactly at the limit is fine
    kept = files(blobs.dir)
    # Declared too large: refused before reading.
    r = await blobs.http.post("/v1/blobs", headers=alice.auth(), content=os.urandom(LIMIT + 1))
    assert_error(r, 413, "blob_too_large")

    async def endless() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(20):
            yield b"\x00" * 64 * 1024

    r = await blobs.http.post("/v1/blobs", headers=alice.auth(), content=endless())
    assert_error(r, 413, "blob_too_large")
    assert files(blobs.dir) == kept  # no temporary file left behind
    # The server is still fine afterwards.
    assert (await blobs.http.post("/v1/blobs", headers=alice.auth(), content=b"ok")).status_code == 201


async def test_expiry_and_purge(blobs: Blobs) -> None:
    alice = await blobs.api.person("alice")
    r = await blobs.http.post("/v1/blobs", params={"max_age": 60}, headers=alice.auth(), content=b"short")
    short = r.json()["blob_id"]
    r = await blobs.http.post("/v1/blobs", headers=alice.auth(), content=b"long")
    long = r.json()["blob_id"]
    blobs.clock.advance(59_000)
    assert (await blobs.http.get(f"/v1/blobs/{short}", headers=alice.auth())).content == b"short"
    blobs.clock.advance(1_000)
    assert_error(await blobs.http.get(f"/v1/blobs/{short}", headers=alice.auth()), 404, "unknown_blob")
    assert await blobs.purge() == 1  # type: ignore[operator]
    assert files(blobs.dir) == [long]
    blobs.clock.advance(30 * 86400 * 1000)
    assert await blobs.purge() == 1  # type: ignore[operator]
    assert files(blobs.dir) == []


async def test_deleted_after_n_distinct_devices_download_it(blobs: Blobs) -> None:
    alice, bob = await blobs.api.person("alice"), await blobs.api.person("bob", devices=2)
    r = await blobs.http.post("/v1/blobs", params={"downloads": 2}, headers=alice.auth(), content=b"once each")
    blob_id = r.json()["blob_id"]
    url = f"/v1/blobs/{blob_id}"
    for _ in range(2):  # the same device twice counts once
        assert (await blobs.http.get(url, headers=bob.auth(0))).content == b"once each"
    assert (await blobs.http.get(url, headers=bob.auth(1))).content == b"once each"
    assert_error(await blobs.http.get(url, headers=bob.auth(0)), 404, "unknown_blob")
    assert files(blobs.dir) == []


async def test_only_the_uploader_deletes(blobs: Blobs) -> None:
    alice, bob = await blobs.api.person("alice", devices=2), await blobs.api.person("bob")
    blob_id = (await blobs.http.post("/v1/blobs", headers=alice.auth(0), content=b"mine")).json()["blob_id"]
    assert_error(await blobs.http.delete(f"/v1/blobs/{blob_id}", headers=bob.auth()), 403, "not_yours")
    assert (await blobs.http.delete(f"/v1/blobs/{blob_id}", headers=alice.auth(1))).status_code == 200
    assert_error(await blobs.http.get(f"/v1/blobs/{blob_id}", headers=alice.auth()), 404, "unknown_blob")
    assert_error(await blobs.http.delete(f"/v1/blobs/{blob_id}", headers=alice.auth()), 404, "unknown_blob")
    assert files(blobs.dir) == []


@pytest.mark.parametrize("piece", [1, 777, 65536, 200_000])
async def test_upload_is_written_in_batches(blobs: Blobs, monkeypatch: pytest.MonkeyPatch,
                                                       piece: int) -> None:
    """Small write batches and few parts per writev: every byte lands once, in order, whatever
    the body's piece sizes; the download (read ahead in small pieces) gives it back."""
    from veil.server.services import blobs as service

    monkeypatch.setattr(service, "WRITE_BUFFER", 50_000)
    monkeypatch.setattr(service, "MAX_PARTS", 3)
    monkeypatch.setattr(service, "READ_CHUNK", 30_001)
    alice = await blobs.api.person("alice")
    data = os.urandom(LIMIT - 5) if piece > 1 else os.urandom(5000)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), piece):
            yield data[i:i + piece]

    r = await blobs.http.post("/v1/blobs", headers={**alice.auth(), "content-length": str(len(data))},
                              content=chunks())
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["size"] == len(data)
    assert (blobs.dir / out["blob_id"]).read_bytes() == data
    async with blobs.http.stream("GET", f"/v1/blobs/{out['blob_id']}", headers=alice.auth()) as resp:
        assert resp.status_code == 200
        got = b"".join([c async for c in resp.aiter_raw()])
    assert got == data
    assert files(blobs.dir) == [out["blob_id"]]  # no .upload- file left behind
