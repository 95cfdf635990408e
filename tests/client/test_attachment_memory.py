"""A 1 GiB video goes through the device's attachment encryption with flat memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import hashlib, resource, sys
from pathlib import Path
from veil.client.attachments import open_file, seal_file
from veil.protocol.attachments import new_attachment_key

src, sealed, back = (Path(p) for p in sys.argv[1:4])
with src.open("wb") as fh:           # 1 GiB that is not all zeros: a pattern every MiB
    block = bytearray(1024 * 1024)
    for i in range(1024):
        block[:8] = i.to_bytes(8, "big")
        fh.write(block)
key = new_attachment_key()
digest, size = seal_file(src, sealed, key)
assert size == 1 << 30, size
h = hashlib.sha256()
with sealed.open("rb") as fh:
    while b := fh.read(1 << 20):
        h.update(b)
assert h.digest() == digest
open_file(sealed, back, key)
def sha(p):
    h = hashlib.sha256()
    with p.open("rb") as fh:
        while b := fh.read(1 << 20):
            h.update(b)
    return h.digest()
assert sha(src) == sha(back)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_one_gib_round_trip_keeps_memory_flat(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "video.mp4"), str(tmp_path / "sealed"),
                        str(tmp_path / "back.mp4")], capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stderr
    peak_mib = int(r.stdout.strip().splitlines()[-1])
    assert peak_mib < 200, f"peak RSS {peak_mib} MiB"
