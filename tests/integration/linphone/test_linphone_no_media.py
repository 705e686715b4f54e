"""A phone that offers a media address the engine cannot reach and sends no RTP is hung up, with the
reason in its record (issue 24): linphone with its default settings (`c=IN IP6 fd00::2`) and no sound
to send. Its own module, so the engine it runs against is not shared with the calls that must work.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from tests.integration.engine.conftest import RunningEngine, free_port
from tests.integration.engine.test_media_interop import finished_call_of
from tests.integration.linphone.conftest import engine_log, free_even_udp_port
from tests.integration.linphone.linphone import LINPHONEC, KeyMethod, linphonec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(LINPHONEC.missing, reason=LINPHONEC.reason),
]


async def test_an_unreachable_offer_without_rtp_is_hung_up_with_the_reason(
    engine: RunningEngine, tmp_path: pathlib.Path
) -> None:
    number = f"13700005{free_port() % 1000:03d}"
    async with linphonec(tmp_path, number=number, keys=KeyMethod.RFC4733, sip_port=free_port(),
                         rtp_port=free_even_udp_port(), ipv6=True) as phone:  # no `play`: it sends no RTP
        await phone.command(f"call sip:95519@127.0.0.1:{engine.sip_port}")
        await phone.wait_for("connected", 20)
        await phone.wait_for("ended", 15)  # hung up by the engine, not by us
        detail = await finished_call_of(engine, number, timeout_s=20.0)
    failed = [e for e in engine_log(engine, detail["record"]["call_id"]) if e.get("event") == "media_failed"]
    assert [e["reason"] for e in failed] == ["no_media"]
    assert "no_media" in json.dumps(detail), "the record does not say why the call ended"
