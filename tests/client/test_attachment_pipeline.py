"""The pipelined attachment paths (seal while uploading, decrypt while downloading) against a
fake blob server: exact bytes, every piece split the network may produce, and that a damaged
or cut download raises and leaves no plaintext behind."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veil.client import api as api_mod
from veil.client.api import ServerAPI, consume, produce, split
from veil.client.attachments import (
    AttachmentError,
    download_and_open,
    download_and_seal,
    download_checked,
    open_file,
    seal_and_upload,
)
from veil.client.errors import ServerRejected
from veil.protocol.attachments import (
    DEFAULT_CHUNK_SIZE,
    HEADER_SIZE,
    digest,
    encrypt_bytes,
    new_attachment_key,
    sealed_size,
)

CS = DEFAULT_CHUNK_SIZE
SIZES = [0, 1, CS - 1, CS, CS + 1, 3 * CS, api_mod.BLOCK - 1, api_mod.BLOCK, api_mod.BLOCK + CS + 7,
         2 * api_mod.BLOCK + 5]


class FakeBlobs:
    """A blob server in memory: uploads are kept whole, downloads come back in `cut` pieces."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.declared: list[int] = []
        self.cut: Callable[[bytes], list[bytes]] = lambda b: [b[i:i + 65536] for i in range(0, len(b), 65536)]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.declared.append(int(request.headers["content-length"]))
            body = bytearray()
            assert isinstance(request.stream, httpx.AsyncByteStream)
            async for piece in request.stream:
                body += piece
            blob_id = f"b{len(self.blobs)}"
            self.blobs[blob_id] = bytes(body)
            return httpx.Response(201, json={"blob_id": blob_id, "size": len(body)})
        blob_id = request.url.path.rsplit("/", 1)[1]
        if blob_id not in self.blobs:
            return httpx.Response(404, json={"error": {"code": "unknown_blob", "message": "gone"}})
        pieces = self.cut(self.blobs[blob_id])

        async def stream() -> AsyncIterator[bytes]:
            for p in pieces:
                yield p

        return httpx.Response(200, content=stream(), headers={"content-length": str(len(self.blobs[blob_id]))})


@pytest.fixture
async def fake() -> AsyncIterator[tuple[ServerAPI, FakeBlobs]]:
    blobs = FakeBlobs()
    api = ServerAPI("http://blobs.test", "token")
    await api.aclose()
    api._http = httpx.AsyncClient(base_url=api.base_url, transport=httpx.MockTransport(blobs.handle))
    try:
        yield api, blobs
    finally:
        await api.aclose()


def _data(size: int) -> bytes:
    return hashlib.shake_256(size.to_bytes(8, "big")).digest(size) if size else b""


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("size", SIZES)
async def test_seal_and_upload_then_download_and_open(tmp_path: Path, fake: tuple[ServerAPI, FakeBlobs],
                                                      size: int) -> None:
    api, blobs = fake
    data = _data(size)
    src, local, back = tmp_path / "video.mp4", tmp_path / "local", tmp_path / "back.mp4"
    src.write_bytes(data)
    key = new_attachment_key()
    r, dig, n = await seal_and_upload(api, src, local, key)
    assert n == size
    uploaded = blobs.blobs[str(r["blob_id"])]
    # The blob is exactly the deterministic ciphertext, the local copy is the same bytes, and the
    # length announced up front was right.
    assert uploaded == local.read_bytes() == encrypt_bytes(key, data)
    assert blobs.declared == [len(uploaded)] == [sealed_size(size)]
    assert dig == digest(uploaded)
    assert await download_and_open(api, str(r["blob_id"]), key, dig, back) == size
    assert back.read_bytes() == data
    assert sorted(_left(tmp_path)) == ["back.mp4", "local", "video.mp4"]  # no .part left


async def test_readable_upload_sends_plaintext_and_keeps_a_sealed_copy(
        tmp_path: Path, fake: tuple[ServerAPI, FakeBlobs]) -> None:
    api, blobs = fake
    data = _data(api_mod.BLOCK + 12345)
    src, local = tmp_path / "photo.jpg", tmp_path / "local"
    src.write_bytes(data)
    key = new_attachment_key()
    r, dig, n = await seal_and_upload(api, src, local, key, upload_sealed=False)
    assert blobs.blobs[str(r["blob_id"])] == data and blobs.declared == [len(data)] and n == len(data)
    assert local.read_bytes() == encrypt_bytes(key, data) and dig == digest(local.read_bytes())
    # ...and the receiving side re-seals a readable blob on the way down.
    plain, sealed = tmp_path / "plain", tmp_path / "sealed"
    key2 = new_attachment_key()
    dig2 = await download_and_seal(api, str(r["blob_id"]), plain, sealed, key2)
    assert plain.read_bytes() == data and sealed.read_bytes() == encrypt_bytes(key2, data)
    assert dig2 == digest(sealed.read_bytes())
    open_file(sealed, tmp_path / "opened", key2)
    assert (tmp_path / "opened").read_bytes() == data


class ShrinkingAPI(ServerAPI):
    """Reads the upload body like a server would, and cuts the file short half way through."""

    def __init__(self, src: Path) -> None:
        super().__init__("http://blobs.test")
        self.src = src

    async def upload_stream(self, body: AsyncIterable[bytes], size: int, *, downloads: int = 0,
                            max_age: int | None = None) -> dict[str, Any]:
        received = 0
        async for piece in body:
            received += len(piece)
            if received > api_mod.BLOCK:
                with self.src.open("r+b") as fh:
                    fh.truncate(2 * api_mod.BLOCK)
        return {"blob_id": "never"}


async def test_a_file_that_shrinks_while_sending_fails(tmp_path: Path) -> None:
    src, local = tmp_path / "video.mp4", tmp_path / "local"
    src.write_bytes(_data(4 * api_mod.BLOCK))
    api = ShrinkingAPI(src)
    try:
        with pytest.raises(AttachmentError, match="changed while it was being sent"):
            await seal_and_upload(api, src, local, new_attachment_key())
    finally:
        await api.aclose()


def _sealed(size: int = 2 * api_mod.BLOCK + 999) -> tuple[bytes, bytes, bytes]:
    key, data = new_attachment_key(), _data(size)
    return key, data, encrypt_bytes(key, data)


def _damaged(ct: bytes) -> list[bytes]:
    n_full = (len(ct) - HEADER_SIZE) // (CS + 16)
    boundary = HEADER_SIZE + n_full * (CS + 16)
    flips = [0, 9, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + CS + 3, len(ct) // 2, len(ct) - 1]
    return [
        *(ct[:i] + bytes([ct[i] ^ 0x40]) + ct[i + 1:] for i in flips),  # one bit anywhere
        ct[:boundary],  # cut at a chunk boundary
        ct[:len(ct) // 2],  # cut in the middle of a chunk
        ct[:HEADER_SIZE - 1],  # cut inside the header
        b"",  # nothing at all
        ct + b"\x00",  # one byte too many
    ]


async def test_damaged_or_cut_downloads_raise_and_leave_no_file(tmp_path: Path,
                                                                fake: tuple[ServerAPI, FakeBlobs]) -> None:
    api, blobs = fake
    key, _, ct = _sealed()
    for i, bad in enumerate(_damaged(ct)):
        blobs.blobs[f"bad{i}"] = bad
        out = tmp_path / f"out{i}.mp4"
        with pytest.raises(AttachmentError):
            await download_and_open(api, f"bad{i}", key, digest(ct), out)
        with pytest.raises(AttachmentError):  # the digest-only path refuses it too
            await download_checked(api, f"bad{i}", digest(ct), out)
    assert _left(tmp_path) == []


async def test_a_valid_ciphertext_that_is_not_the_one_announced_is_refused(
        tmp_path: Path, fake: tuple[ServerAPI, FakeBlobs]) -> None:
    """Same key, every tag good, but not the ciphertext the message named: the digest decides."""
    api, blobs = fake
    key, data, ct = _sealed()
    blobs.blobs["other"] = encrypt_bytes(key, data[:-1] + b"!")
    with pytest.raises(AttachmentError):
        await download_and_open(api, "other", key, digest(ct), tmp_path / "out.mp4")
    assert _left(tmp_path) == []


async def test_a_missing_blob_leaves_no_file(tmp_path: Path, fake: tuple[ServerAPI, FakeBlobs]) -> None:
    api, _ = fake
    with pytest.raises(ServerRejected):
        await download_and_open(api, "nope", new_attachment_key(), bytes(32), tmp_path / "out.mp4")
    assert _left(tmp_path) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 200_000), min_size=1, max_size=40), flip=st.integers(0, 1 << 30),
       tamper=st.booleans())
def test_any_split_off_the_network_round_trips_or_fails_cleanly(tmp_path: Path, cuts: list[int], flip: int,
                                                                tamper: bool) -> None:
    """Whatever piece sizes the socket hands over, the plaintext is exact; with a flipped bit
    it raises and no file is left."""
    key, data, ct = _sealed(api_mod.BLOCK + 3 * CS + 11)
    body = bytearray(ct)
    if tamper:
        body[flip % len(body)] ^= 0x01
    blobs = FakeBlobs()

    def cut(b: bytes) -> list[bytes]:
        out, pos, i = [], 0, 0
        while pos < len(b):
            out.append(b[pos:pos + cuts[i % len(cuts)]])
            pos += cuts[i % len(cuts)]
            i += 1
        return out

    blobs.cut = cut
    blobs.blobs["x"] = bytes(body)
    folder = tmp_path / os.urandom(4).hex()
    folder.mkdir()

    async def go() -> None:
        api = ServerAPI("http://blobs.test")
        await api.aclose()
        api._http = httpx.AsyncClient(base_url=api.base_url, transport=httpx.MockTransport(blobs.handle))
        try:
            if tamper:
                with pytest.raises(AttachmentError):
                    await download_and_open(api, "x", key, digest(ct), folder / "out")
                assert _left(folder) == []
            else:
                await download_and_open(api, "x", key, digest(ct), folder / "out")
                assert (folder / "out").read_bytes() == data
        finally:
            await api.aclose()

    asyncio.run(go())


@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(st.binary(max_size=300), max_size=30), block=st.integers(1, 1000), ahead=st.integers(1, 3))
def test_consume_hands_every_byte_over_once_in_order(pieces: list[bytes], block: int, ahead: int) -> None:
    seen: list[bytes] = []

    async def source() -> AsyncIterator[bytes]:
        for p in pieces:
            yield p
            await asyncio.sleep(0)  # let queued blocks run while more arrive

    async def go() -> None:
        await consume(source(), lambda view: seen.append(bytes(view)), block=block, ahead=ahead)

    asyncio.run(go())
    assert b"".join(seen) == b"".join(pieces)
    assert all(seen) and all(len(s) >= block for s in seen[:-1])


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.lists(st.binary(min_size=1, max_size=50), max_size=4), max_size=12),
       ahead=st.integers(1, 3), stop_after=st.integers(0, 20))
def test_produce_runs_steps_in_order_ahead_of_the_reader(steps: list[list[bytes]], ahead: int,
                                                        stop_after: int) -> None:
    """Steps run one after the other on one thread (up to `ahead` before their pieces are taken);
    every piece comes out once, in order; after the end (None) no step runs again with effect;
    a reader that stops early leaves no step running."""
    calls: list[int] = []
    queue = list(steps)

    def step() -> list[bytes] | None:
        calls.append(threading.get_ident())
        return queue.pop(0) if queue else None

    async def go() -> list[bytes]:
        got: list[bytes] = []
        async with contextlib.aclosing(produce(step, ahead=ahead)) as body:
            async for piece in body:
                got.append(piece)
                if len(got) > stop_after:
                    break
        return got

    got = asyncio.run(go())
    everything = [piece for pieces in steps for piece in pieces]
    assert got == everything[:len(got)]
    if len(got) <= stop_after:
        assert got == everything
    assert len(set(calls)) == 1  # one thread: the steps keep their order and may share buffers


@given(data=st.binary(max_size=5000), size=st.integers(1, 700))
def test_split_pieces(data: bytes, size: int) -> None:
    out = split(data, size)
    assert b"".join(out) == data and all(0 < len(p) <= size for p in out)
    assert all(type(p) is bytes for p in out)  # bytes pass through h11 without another copy
