"""Issue 16, TLS + SRTP with a real phone: baresip calls the engine's `tls://` listener and insists on
SRTP (`mediaenc=srtp-mand`, SDES keys in the TLS-protected SDP); the engine runs with `srtp: required`.

Audio both ways, checked as the plain-RTP interop test does: baresip records the engine's tone prompt
(its dominant frequency is the tone's), and the engine recognizes the speech baresip plays (the call's
intent is "claim"): both only possible if each side decrypted the other's SRTP.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

import numpy as np
import pytest

from ivr.media import load_telephony, silence
from tests.integration.edge.conftest import TONE_HZ, PemCertificate, edge_engine
from tests.integration.engine.conftest import RunningEngine, free_port
from tests.integration.engine.test_media_interop import (
    SPEAK_AT_S,
    SPEECH,
    TONE_FLOW,
    TONE_NUMBER,
    first_prompt_frequency_hz,
)
from tests.integration.sip.sip_peers import baresip, needs_baresip

pytestmark = [pytest.mark.integration, needs_baresip]


async def only_call(engine: RunningEngine) -> dict[str, Any]:
    """The finished record and journey of the engine's one call (baresip's From user is not a number, so
    the record's caller may be empty: look it up by being the only one)."""
    for _ in range(120):
        calls = (await asyncio.to_thread(engine.get, "/api/calls?limit=5"))["calls"]
        if calls:
            break
        await asyncio.sleep(0.25)  # another process's state: nothing to await but its API
    assert len(calls) == 1, calls
    detail: dict[str, Any] = await asyncio.to_thread(engine.call_detail, calls[0]["call_id"], attempts=120)
    return detail


class PhoneOutput:
    """All baresip prints, read as it comes (its status line is rewritten with CRs, never ending a line)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._data = bytearray()
        self._grew = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while chunk := await self._stdout.read(4096):
            self._data.extend(chunk)
            self._grew.set()

    @property
    def text(self) -> str:
        return self._data.decode(errors="replace")

    async def until(self, text: str) -> None:
        while True:
            self._grew.clear()  # before looking: output read after the look sets it again
            if text.encode() in self._data:
                return
            await self._grew.wait()


async def test_baresip_over_tls_with_srtp_hears_our_tone_and_we_hear_its_speech(
    tmp_path: pathlib.Path, certificate: PemCertificate
) -> None:
    tls_port = free_port()
    phone = tmp_path / "phone"
    phone.mkdir()
    bundle = phone / "baresip.pem"  # baresip wants certificate and key in one file
    bundle.write_text(certificate.certificate.read_text() + certificate.key.read_text())
    speech = load_telephony(SPEECH / "en_file_claim.wav")
    say = np.concatenate([silence(SPEAK_AT_S), speech, silence(6.0)]).astype(np.int16)
    with edge_engine(tmp_path / "engine", flows={"tone": TONE_FLOW}, listen=[f"tls://127.0.0.1:{tls_port}"],
                     tls_certificate=str(certificate.certificate), tls_private_key=str(certificate.key),
                     tls_ca_file=str(certificate.certificate), srtp="required") as engine:
        dial = f"/dial sip:{TONE_NUMBER}@127.0.0.1:{tls_port};transport=tls"
        async with baresip(phone, commands=[dial], say=say.tobytes(), record=True, quit_after_s=40,
                           config_extra=f"sip_certificate {bundle}\nsip_cafile {certificate.certificate}\n"
                                        "module srtp.so\n",
                           account_params=";mediaenc=srtp-mand") as (_, proc):
            said = PhoneOutput(proc)
            try:
                async with asyncio.timeout(40):
                    await said.until("Call established")
                    detail = await only_call(engine)
                    await said.until("terminated")  # baresip took our BYE and closed its recording
            except TimeoutError:
                raise AssertionError(f"baresip:\n{said.text[-3000:]}") from None
        started = [json.loads(line) for line in engine.log.read_text().splitlines()
                   if '"rtp_session_started"' in line]
    assert "SRTP is Enabled" in said.text, said.text[-3000:]
    assert [entry["srtp"] for entry in started] == ["AES_CM_128_HMAC_SHA1_80"], started
    record = detail["record"]
    assert record["intent"] == "claim", record
    assert "claim" in record["transcript"]
    assert abs(first_prompt_frequency_hz(phone) - TONE_HZ) < 20.0
