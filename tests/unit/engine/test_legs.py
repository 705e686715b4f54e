"""`SipMediaLeg`: one reader of the dialog's events, one reader of keys at a time, type-ahead kept for the next."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ivr.call import CallEnded
from ivr.engine.legs import SipMediaLeg
from ivr.rtp import DtmfReceived, DtmfSource, MediaFailed, MediaFailure
from ivr.sip.events import ByeReceived, DialogEvent, DtmfInfoReceived


class StubDialog:
    """The SIP side of a leg: events the test pushes, BYEs counted."""

    call_id = "c1"

    def __init__(self) -> None:
        self.events: asyncio.Queue[DialogEvent | None] = asyncio.Queue()
        self.ended = False
        self.byes = 0
        self.acked = asyncio.Event()
        self.reasons: list[str | None] = []

    async def next_event(self) -> DialogEvent:
        event = await self.events.get()
        if event is None:
            raise CallEnded("over")
        return event

    async def confirmed(self) -> None:
        await self.acked.wait()

    async def bye(self, reason: str | None = None) -> None:
        self.reasons.append(reason)
        self.byes += 1
        self.ended = True
        self.events.put_nowait(None)


class StubMedia:
    """The media side: keys from RTP (`press`) or signalled from INFO go to the one listener."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[DtmfReceived], None]] = []
        self.failure_listeners: list[Callable[[MediaFailed], None]] = []
        self.released = False
        self.confirmed = False

    def on_dtmf(self, listener: Callable[[DtmfReceived], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def confirm(self) -> None:
        self.confirmed = True

    def on_media_failed(self, listener: Callable[[MediaFailed], None]) -> Callable[[], None]:
        self.failure_listeners.append(listener)
        return lambda: self.failure_listeners.remove(listener)

    def signal_dtmf(self, digit: str, source: DtmfSource = DtmfSource.INFO) -> None:
        for listener in list(self.listeners):
            listener(DtmfReceived(digit, source, 0.0))

    def press(self, digit: str) -> None:
        self.signal_dtmf(digit, DtmfSource.RFC4733)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def new_leg(*, confirm_on_ack: bool = False) -> tuple[SipMediaLeg, StubDialog, StubMedia]:
    dialog, media = StubDialog(), StubMedia()

    def release(session: object) -> None:
        media.released = True

    leg = SipMediaLeg(dialog, media, prompts=None, release=release,  # type: ignore[arg-type]
                      confirm_on_ack=confirm_on_ack)
    return leg, dialog, media


async def test_keys_go_to_the_innermost_reader_only_and_nobody_else() -> None:
    leg, _, media = new_leg()
    outer: list[str] = []
    inner: list[str] = []
    with leg.take_keys(outer.append):
        media.press("1")
        with leg.take_keys(inner.append):
            media.press("2")
        media.press("3")
    assert (outer, inner) == (["1", "3"], ["2"])
    assert not leg.has_typeahead
    await leg.aclose()


async def test_keys_nobody_read_are_type_ahead_for_a_reader_that_asks_and_dropped_for_one_that_does_not() -> None:
    leg, _, media = new_leg()
    media.press("4")
    media.press("5")
    assert leg.has_typeahead
    got: list[str] = []
    with leg.take_keys(got.append, typeahead=True):
        pass
    assert got == ["4", "5"]
    media.press("6")
    with leg.take_keys(got.append):
        pass
    assert got == ["4", "5"] and not leg.has_typeahead
    await leg.aclose()


async def test_info_keys_join_the_key_stream_and_a_bye_ends_the_leg_once() -> None:
    leg, dialog, media = new_leg()
    got: list[str] = []
    with leg.take_keys(got.append):
        dialog.events.put_nowait(DtmfInfoReceived("7", 100))
        await settle()
        assert got == ["7"]
        dialog.events.put_nowait(ByeReceived())
        await asyncio.wait_for(leg.wait_ended(), 1)  # the wait_for only guards a broken test
    assert leg.ended
    dialog.ended = True
    await leg.aclose()
    await leg.aclose()
    assert dialog.byes == 0 and media.released and media.listeners == []


async def test_media_that_fails_for_good_ends_the_leg_with_a_bye_saying_why() -> None:
    leg, dialog, media = new_leg()
    (listener,) = media.failure_listeners
    listener(MediaFailed(MediaFailure.SEND_FAILED, 'no packet sent for 5 s ("EPERM")', 1.0))
    await asyncio.wait_for(leg.wait_ended(), 1)  # the wait_for only guards a broken test
    assert dialog.reasons == ['SIP;cause=500;text="no packet sent for 5 s (\\"EPERM\\")"']
    await leg.aclose()
    assert media.failure_listeners == [] and media.released


async def test_an_answered_leg_confirms_its_media_when_the_ack_arrives() -> None:
    leg, dialog, media = new_leg(confirm_on_ack=True)
    await settle()
    assert not media.confirmed
    dialog.acked.set()
    await settle()
    assert media.confirmed
    await leg.aclose()
