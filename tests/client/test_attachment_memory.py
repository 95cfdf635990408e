"""A 1 GiB video goes through the device's attachment encryption with flat memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The child's own peak: ru_maxrss survives exec, so it would report the forking pytest
# process's peak (over 100 MiB after a few hundred hypothesis examples) instead.
PEAK = r"""
import hashlib


def _peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no VmHWM")


def make_source(path, mib):  # not all zeros: a pattern every MiB
    with path.open("wb") as fh:
        block = bytearray(1024 * 1024)
        for i in range(mib):
            block[:8] = i.to_bytes(8, "big")
            fh.write(block)


def sha(p):
    h = hashlib.sha256()
    with p.open("rb") as fh:
        while b := fh.read(1 << 20):
            h.update(b)
    return h.digest()
"""

SCRIPT = PEAK + r"""
import sys
from pathlib import Path
from veil.client.attachments import open_file, seal_file
from veil.protocol.attachments import new_attachment_key

src, sealed, back = (Path(p) for p in sys.argv[1:4])
make_source(src, 1024)
key = new_attachment_key()
digest, size = seal_file(src, sealed, key)
assert size == 1 << 30, size
assert sha(sealed) == digest
open_file(sealed, back, key)
assert sha(src) == sha(back)
print(_peak_mib())
"""


def test_one_gib_round_trip_keeps_memory_flat(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "video.mp4"), str(tmp_path / "sealed"),
                        str(tmp_path / "back.mp4")], capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stderr
    peak_mib = int(r.stdout.strip().splitlines()[-1])
    assert peak_mib < 200, f"peak RSS {peak_mib} MiB"


PIPELINE = PEAK + r"""
import asyncio, sys
from pathlib import Path
from veil.client.api import ServerAPI
from veil.client.attachments import download_and_open, seal_and_upload
from veil.protocol.attachments import new_attachment_key
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.olm import OlmAccount

url, root, mib = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
src, local, back = root / "video.mp4", root / "local", root / "back.mp4"
make_source(src, mib)

async def main():
    api = ServerAPI(url)
    try:
        account = OlmAccount()
        await api.register("memtest", "Mem", "password1", IdentityKeyPair.generate().public_b64)
        r = await api.login("memtest", "password1", "d", account.curve25519, account.ed25519)
        api.token = str(r["token"])
        key = new_attachment_key()
        blob, digest, size = await seal_and_upload(api, src, local, key, downloads=1)
        assert size == mib << 20
        assert sha(local) == digest
        local.unlink()
        await download_and_open(api, str(blob["blob_id"]), key, digest, back)
    finally:
        await api.aclose()

asyncio.run(main())
assert sha(src) == sha(back)
status = open("/proc/self/status").read()
print(" ".join(line for line in status.splitlines() if line.startswith(("VmRSS", "Rss", "Threads"))))
print(_peak_mib())
"""


def test_one_gib_through_a_server_pipelined_keeps_memory_flat(tmp_path: Path) -> None:
    """Seal-while-uploading and decrypt-while-downloading a 1 GiB video through a real server
    stays under the 100 MiB the attachments benchmark allows."""
    from tests.conftest import start_server

    server = start_server(tmp_path / "server", None, "--max-blob-size", str(1100 * 1024 * 1024),
                          "--argon2-time-cost", "1", "--argon2-memory-kib", "1024")
    try:
        r = subprocess.run([sys.executable, "-c", PIPELINE, server.url, str(tmp_path), "1024"],
                           capture_output=True, text=True, timeout=280)
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr
    peak_mib = int(r.stdout.strip().splitlines()[-1])
    assert peak_mib < 100, f"peak RSS {peak_mib} MiB ({r.stdout.strip().splitlines()[-2]})"
