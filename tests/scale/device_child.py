"""A receiving device in a process of its own, for the crash tests (the test kills it with SIGKILL).

    python -m tests.scale.device_child PROFILE [CONTACT ...]   (passphrase in VEIL_TEST_PASSPHRASE)

Opens the device, looks up the given contacts' device lists (as an app showing its threads
would; without it the device looks them up when their first message arrives), listens on its
stream, prints `ready` once the stream is open and `shown <text>` for every message the device
stores (before its transaction commits), flushing each line, until it is killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from veil.client.device import Device
from veil.client.models import Message
from veil.client.stream import listen


def _show(m: Message) -> None:
    print(f"shown {m.text}", flush=True)


async def main(profile: Path, passphrase: str, contacts: list[str]) -> None:
    device = await Device.open(profile, passphrase)
    for handle in contacts:
        await device.directory.get(handle)
    device.add_listener(_show)
    task = asyncio.ensure_future(listen(device))
    while device.stream_link is None:
        if task.done():
            task.result()
            return
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), os.environ["VEIL_TEST_PASSPHRASE"], sys.argv[2:]))
