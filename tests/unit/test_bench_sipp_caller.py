"""bench.rtp_pcap and bench.sipp_caller's pure parts: the pcap a SIPp caller replays (read back by the tests' pcap
reader, checksums valid), the whole call's timing, SIPp's setup-time file, and speech_load's alternating rounds."""

from __future__ import annotations

import pathlib
import struct

import numpy as np
import pytest

from bench.rtp_pcap import Endpoints, RtpStream, _checksum, pcap_bytes, rtp_packets
from bench.sipp_caller import caller_audio, setup_ms, sipp_command, write_scenario
from bench.speech_load import plan
from tests.unit.rtp.pcap import read_udp

STREAM = RtpStream(payload_type=0, ssrc=0xCAFEF00D, first_sequence=65534, first_timestamp=0xFFFFFF00)


def test_the_pcap_reads_back_as_the_rtp_packets_written_every_20_ms(tmp_path: pathlib.Path) -> None:
    payloads = [bytes([i]) * 160 for i in range(4)]
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_bytes(rtp_packets(STREAM, payloads), Endpoints(source_port=7000, destination_port=6000)))
    datagrams = read_udp(path)
    assert [d.time_s for d in datagrams] == pytest.approx([0.0, 0.02, 0.04, 0.06])
    assert {(d.source_port, d.destination_port) for d in datagrams} == {(7000, 6000)}
    headers = [struct.unpack("!BBHII", d.payload[:12]) for d in datagrams]
    assert headers == [(0x80, 0x80, 65534, 0xFFFFFF00, 0xCAFEF00D), (0x80, 0, 65535, 0xFFFFFFA0, 0xCAFEF00D),
                       (0x80, 0, 0, 0x40, 0xCAFEF00D), (0x80, 0, 1, 0xE0, 0xCAFEF00D)]
    assert [d.payload[12:] for d in datagrams] == payloads


def test_ip_and_udp_checksums_verify() -> None:
    data = pcap_bytes(rtp_packets(STREAM, [b"\xff" * 160]))
    frame = data[24 + 16:]
    ip, udp = frame[14:34], frame[34:]
    assert _checksum(ip) == 0  # a header with its checksum in sums to 0xFFFF: complement 0
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    assert _checksum(pseudo + udp) == 0
    assert struct.unpack_from("<I", data)[0] == 0xA1B2C3D4 and struct.unpack_from("<I", data, 20)[0] == 1


def test_a_pcap_is_bounded() -> None:
    with pytest.raises(ValueError, match="at most"):
        rtp_packets(STREAM, [b""] * 200_001)


def test_the_whole_call_is_silence_the_need_at_its_moment_then_silence_past_the_bye(tmp_path: pathlib.Path) -> None:
    speech = np.full(8000, 1000, dtype=np.int16)  # 1 s of "speech"
    audio = caller_audio(speech, linger_s=2.0, speak_at_s=1.0)
    path = tmp_path / "c.pcap"
    path.write_bytes(audio.pcap)
    payloads = [d.payload[12:] for d in read_udp(path)]
    loud = [i for i, p in enumerate(payloads) if p != b"\xff" * 160]
    assert (loud[0], loud[-1]) == (50, 99)  # from 1.0 s to 2.0 s, 20 ms a packet
    assert audio.speech_s == 1.0 and audio.bye_after_s == 4.0
    assert len(payloads) * 0.02 > audio.bye_after_s  # RTP flows until the BYE, never stops before it
    scenario = write_scenario(tmp_path, audio).read_text()
    assert 'play_pcap_audio="caller.pcap"' in scenario and 'timeout="4000"' in scenario


def test_setup_times_come_from_sipps_rtt_file() -> None:
    text = "Date_ms;response_time_ms;rtd_no\n" + "".join(f"{1000 + i};{i};1\n" for i in range(1, 101))
    assert setup_ms(text) == {"p50": 50.5, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert setup_ms("Date_ms;response_time_ms;rtd_no\n") == {}


def test_sipp_runs_bounded_and_on_loopback(tmp_path: pathlib.Path) -> None:
    command = sipp_command(tmp_path / "s.xml", "127.0.0.1:5060", cps=10, calls=300, media_port=40000,
                           sip_port=40010, service="95519", timeout_s=200)
    assert command[-1] == "127.0.0.1:5060"
    assert {"-m", "-l", "-timeout", "-timeout_error"} <= set(command)
    assert command[command.index("-i") + 1] == command[command.index("-mi") + 1] == "127.0.0.1"
    with pytest.raises(ValueError):
        sipp_command(tmp_path / "s.xml", "127.0.0.1:5060", cps=10, calls=10_000, media_port=1, sip_port=2,
                     service="1", timeout_s=1)


def test_rounds_alternate_which_generator_runs_first() -> None:
    here = pathlib.Path(".")
    runs = plan([10.0], [("this tree", here)], ["sipp", "ivr"], 3)
    assert [g for _, _, _, g in runs] == ["sipp", "ivr", "ivr", "sipp", "sipp", "ivr"]
