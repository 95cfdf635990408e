"""Benchmark 5: attachments — encrypt, upload, download and decrypt a large file through a
real server: MB/s end to end (file size / wall time of all four), per stage, and the peak RSS
of the device process.

The measured path is the one the client uses (`veil.client.attachments`):

- **send**: `seal_and_upload` — a worker thread reads the file, seals it and writes the
  device's local copy while the event loop uploads the previous block (what `prepare` does
  for a secret photo or video);
- **receive**: `download_and_open` — blocks are hashed, decrypted and written by a worker
  thread as they arrive; the plaintext file appears only once every tag and the digest
  check out.

For an A/B on this noisy shared machine each round also runs the old serial path (seal to a
file, upload it, download to a file, decrypt it: four steps one after the other) back to back
with the pipelined one; the figures are medians over the rounds.

    .venv/bin/python -m bench.attachments [--mib 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import resource
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import record, start_node
from veil.client.api import ServerAPI
from veil.client.attachments import download_and_open, open_file, seal_and_upload, seal_file
from veil.protocol.attachments import new_attachment_key
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.olm import OlmAccount


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sha(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.digest()


async def _pipelined(api: ServerAPI, src: Path, root: Path) -> tuple[float, float, str]:
    local, back = root / "local", root / "back.mp4"
    key = new_attachment_key()
    t0 = time.perf_counter()
    blob, digest, _ = await seal_and_upload(api, src, local, key)
    t1 = time.perf_counter()
    await download_and_open(api, str(blob["blob_id"]), key, digest, back)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, str(blob["blob_id"])


async def _serial(api: ServerAPI, src: Path, root: Path) -> tuple[list[float], str]:
    sealed, fetched, back = root / "sealed", root / "fetched", root / "back.mp4"
    key = new_attachment_key()
    t = [time.perf_counter()]
    dig, _ = await asyncio.to_thread(seal_file, src, sealed, key)
    t.append(time.perf_counter())
    blob = await api.upload_blob(sealed)
    t.append(time.perf_counter())
    await api.download_blob(str(blob["blob_id"]), fetched)
    t.append(time.perf_counter())
    assert await asyncio.to_thread(_sha, fetched) == dig  # the receiver's digest check, as before
    await asyncio.to_thread(open_file, fetched, back, key)
    t.append(time.perf_counter())
    return [b - a for a, b in itertools.pairwise(t)], str(blob["blob_id"])


async def _run(url: str, root: Path, mib: int, rounds: int) -> list[str]:
    src = root / "video.mp4"
    with src.open("wb") as fh:
        block = bytearray(1024 * 1024)
        for i in range(mib):
            block[:8] = i.to_bytes(8, "big")
            fh.write(block)
    want = _sha(src)
    api = ServerAPI(url)
    pipe: list[tuple[float, float]] = []
    serial: list[list[float]] = []
    try:
        account = OlmAccount()
        await api.register("benchatt", "Bench", "password1", IdentityKeyPair.generate().public_b64)
        r = await api.login("benchatt", "password1", "bench", account.curve25519, account.ed25519)
        api.token = str(r["token"])
        for _ in range(rounds):
            up, down, blob_id = await _pipelined(api, src, root)
            assert _sha(root / "back.mp4") == want
            pipe.append((up, down))
            await api.call("DELETE", f"/v1/blobs/{blob_id}")
            for name in ("local", "back.mp4"):
                (root / name).unlink()
            steps, blob_id = await _serial(api, src, root)
            assert _sha(root / "back.mp4") == want
            serial.append(steps)
            await api.call("DELETE", f"/v1/blobs/{blob_id}")
            for name in ("sealed", "fetched", "back.mp4"):
                (root / name).unlink()
    finally:
        await api.aclose()
    size = mib * 1024 * 1024 / 1e6  # MB

    def mbs(seconds: list[float]) -> float:
        return size / statistics.median(seconds)

    e2e = mbs([u + d for u, d in pipe])
    old = mbs([sum(s) for s in serial])
    return [
        f"{mib} MiB file, median of {rounds} rounds, pipelined path (what the client uses): "
        f"seal+upload {mbs([u for u, _ in pipe]):.0f} MB/s, download+decrypt {mbs([d for _, d in pipe]):.0f} MB/s",
        f"end to end {e2e:.0f} MB/s (target 300); device peak RSS {_peak_mib():.0f} MiB (target < 100)",
        f"same rounds, the four steps one after the other (seal_file, upload_blob, download_blob, "
        f"open_file): encrypt {mbs([s[0] for s in serial]):.0f} MB/s, upload "
        f"{mbs([s[1] for s in serial]):.0f} MB/s, download {mbs([s[2] for s in serial]):.0f} MB/s, decrypt "
        f"{mbs([s[3] for s in serial]):.0f} MB/s (with the digest check), end to end {old:.0f} MB/s "
        f"(pipelined {e2e / old:.1f}x)",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = start_node(Path(tmp) / "server", "--max-blob-size", str((args.mib + 16) * 1024 * 1024))
        try:
            lines = asyncio.run(_run(node.url, Path(tmp), args.mib, args.rounds))
            lines.append(f"server RSS after the run {node.rss_kib() / 1024:.0f} MiB")
        finally:
            node.stop()
    record("Attachments (benchmark 5)", lines)


if __name__ == "__main__":
    main()
