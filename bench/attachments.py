"""Benchmark 5: attachments — encrypt, upload, download and decrypt a large file through a
real server, MB/s for each step and overall, and the peak RSS of the device process.

    .venv/bin/python -m bench.attachments [--mib 256]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from bench.common import record, start_node
from veil.client.api import ServerAPI
from veil.client.attachments import open_file, seal_file
from veil.protocol.attachments import new_attachment_key
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.olm import OlmAccount


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _run(url: str, root: Path, mib: int) -> list[str]:
    src, sealed, fetched, back = (root / n for n in ("video.mp4", "sealed", "fetched", "back.mp4"))
    with src.open("wb") as fh:
        block = bytearray(1024 * 1024)
        for i in range(mib):
            block[:8] = i.to_bytes(8, "big")
            fh.write(block)
    api = ServerAPI(url)
    try:
        account = OlmAccount()
        await api.register("benchatt", "Bench", "password1", IdentityKeyPair.generate().public_b64)
        r = await api.login("benchatt", "password1", "bench", account.curve25519, account.ed25519)
        api.token = str(r["token"])
        size = mib * 1024 * 1024 / 1e6  # MB
        t0 = time.perf_counter()
        seal_file(src, sealed, key := new_attachment_key())
        t1 = time.perf_counter()
        blob = await api.upload_blob(sealed)
        t2 = time.perf_counter()
        await api.download_blob(str(blob["blob_id"]), fetched)
        t3 = time.perf_counter()
        open_file(fetched, back, key)
        t4 = time.perf_counter()
    finally:
        await api.aclose()
    assert back.stat().st_size == src.stat().st_size
    return [
        f"{mib} MiB file: encrypt {size / (t1 - t0):.0f} MB/s, upload {size / (t2 - t1):.0f} MB/s, "
        f"download {size / (t3 - t2):.0f} MB/s, decrypt {size / (t4 - t3):.0f} MB/s",
        f"end to end {size / (t4 - t0):.0f} MB/s (target 300); device peak RSS {_peak_mib():.0f} MiB (target < 100)",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = start_node(Path(tmp) / "server", "--max-blob-size", str((args.mib + 16) * 1024 * 1024))
        try:
            lines = asyncio.run(_run(node.url, Path(tmp), args.mib))
            lines.append(f"server RSS after the run {node.rss_kib() / 1024:.0f} MiB")
        finally:
            node.stop()
    record("Attachments (benchmark 5)", lines)


if __name__ == "__main__":
    main()
