"""Helpers that set up people and devices against a real server, as a user would."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from veil.client.device import Device
from veil.client.linking import link_new_device, offer_link
from veil.client.models import Message
from veil.client.stream import listen

PASSWORD = "correct horse battery"
PASSPHRASE = "store passphrase 1"


class FakeClock:
    """A clock the test moves by hand: disappearing messages without sleeping for minutes."""

    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


async def register(server_url: str, root: Path, handle: str, clock: FakeClock | None = None) -> Device:
    if clock is None:
        return await Device.register(root / f"{handle}-1", server_url, handle, PASSWORD, PASSPHRASE,
                                     display_name=handle.title())
    return await Device.register(root / f"{handle}-1", server_url, handle, PASSWORD, PASSPHRASE,
                                 display_name=handle.title(), clock=clock)


async def link_second(first: Device, root: Path, name: str = "2", clock: FakeClock | None = None) -> Device:
    offer = await offer_link(first)
    new_task = asyncio.create_task(link_new_device(root / f"{first.handle}-{name}", first.server_url,
                                                   first.handle, PASSWORD, PASSPHRASE, offer.code,
                                                   poll=0.05, clock=clock))
    await offer.complete(poll=0.05)
    return await new_task


async def drain(device: Device) -> None:
    """Receive everything queued for this device over the stream, then return."""
    await asyncio.wait_for(listen(device, until_empty=True), timeout=60)


def texts(messages: list[Message]) -> list[str]:
    return [m.text for m in messages if not m.is_notice]


def notices(messages: list[Message], code: str | None = None) -> list[Message]:
    return [m for m in messages if m.is_notice and (code is None or m.notice == code)]
