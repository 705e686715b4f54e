"""The recorder end to end on one thread's worth of real writes: bridge tap, PCM, pause, stop."""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ivr.call import RecordingMode
from ivr.media.bridge import Bridge, RelayedPacket
from ivr.media.g711 import PCMA, PCMU
from ivr.media.goertzel import goertzel_basis, tone_powers
from ivr.media.tones import tone
from ivr.recording import Recorder, RecordingPolicy, RecordingWriter, file_name
from ivr.recording.retention import purge_recordings
from tests.unit.media.test_bridge import FakeLeg

DAY = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def _stereo(path: pathlib.Path) -> np.ndarray:
    data = path.read_bytes()
    return np.frombuffer(data[44:], dtype="<i2").reshape(-1, 2)


def _power(audio: np.ndarray, frequency_hz: float) -> float:
    n = len(audio) // 160 * 160
    if n == 0:
        return 0.0
    window = audio[:n].astype(np.float64)[None, :]
    return float(tone_powers(window, goertzel_basis((frequency_hz,), n, 8000))[0, 0] / max(1.0, (window**2).sum()))


def test_file_names_are_safe() -> None:
    assert file_name("a7f@10.0.0.1") == "a7f@10.0.0.1.wav"
    assert file_name("../../etc/passwd") == "_._.._etc_passwd.wav"
    assert file_name("x", "consent") == "x-consent.wav"


def test_a_bridged_call_is_recorded_caller_left_agent_right_with_a_pause(tmp_path: pathlib.Path) -> None:
    recorder = Recorder(tmp_path)
    caller, agent = FakeLeg(PCMU), FakeLeg(PCMA)
    bridge = Bridge(caller, agent)
    now = [100.0]
    recording = recorder.start("call-1", now=now[0], day=DAY)
    recording.attach(bridge, lambda: now[0])
    caller_tone = tone((600.0,), 4.0, level_dbfs=-12.0)
    agent_tone = tone((1400.0,), 4.0, level_dbfs=-12.0)
    for i in range(200):  # 4 s, both talking; paused from 1 s to 2 s
        if i == 50:
            assert recording.pause(now[0])
        if i == 100:
            assert recording.resume(now[0])
        frame = slice(i * 160, (i + 1) * 160)
        caller.receive(RelayedPacket(PCMU.encode(caller_tone[frame]), 5000 + i * 160, 1, False, False))
        agent.receive(RelayedPacket(PCMA.encode(agent_tone[frame]), 9000 + i * 160, 2, False, False))
        now[0] += 0.02
    bridge.close()  # the recording stops with the bridge
    assert recording.summary is not None
    summary = recording.summary
    assert summary.duration_s == pytest.approx(4.0) and summary.pauses == ((1.0, 2.0),)
    recorder.close()
    audio = _stereo(tmp_path / "2026-12-06" / "call-1.wav")
    assert len(audio) == 4 * 8000
    left, right = audio[:, 0], audio[:, 1]
    talk = np.r_[0:8000, 16000:32000]
    assert _power(left[talk], 600.0) > 0.9 and _power(left[talk], 1400.0) < 0.01
    assert _power(right[talk], 1400.0) > 0.9 and _power(right[talk], 600.0) < 0.01
    assert not audio[8000 + 160 : 16000 - 160].any()  # silence while paused


def test_pcm_feeds_and_stop_are_idempotent(tmp_path: pathlib.Path) -> None:
    recorder = Recorder(tmp_path)
    recording = recorder.start("c2", now=0.0, day=DAY, label="consent")
    for i in range(10):
        recording.add_pcm(0, np.full(160, 1000, dtype=np.int16), i * 0.02)
    first = recording.stop(0.2)
    assert recording.stop(5.0) is first and recording.pause(6.0) is False
    recorder.close()
    audio = _stereo(pathlib.Path(first.path))
    assert first.path.endswith("2026-12-06/c2-consent.wav") and len(audio) == 1600
    assert (audio[:, 0] == 1000).all() and not audio[:, 1].any()


def test_a_full_backlog_drops_frames_instead_of_blocking(tmp_path: pathlib.Path) -> None:
    writer = RecordingWriter(max_pending_chunks=0)
    recording = Recorder(tmp_path, writer).start("c3", now=0.0, day=DAY)
    recording.add_pcm(0, np.zeros(160, dtype=np.int16), 0.0)
    summary = recording.stop(0.02)
    writer.stop()
    assert summary.dropped_frames == 1 and writer.dropped == 1
    assert len(_stereo(pathlib.Path(summary.path))) == 160


def test_policy_node_then_queue_then_default() -> None:
    policy = RecordingPolicy(RecordingMode.NEVER, {"claims": RecordingMode.ALWAYS})
    assert policy.mode_for("claims") is RecordingMode.ALWAYS
    assert policy.mode_for("sales") is RecordingMode.NEVER
    assert policy.mode_for("claims", RecordingMode.CONSENT) is RecordingMode.CONSENT


def test_retention_deletes_recordings_older_than_the_cut_off(tmp_path: pathlib.Path) -> None:
    import os

    for day, name in (("2026-11-01", "old"), ("2026-12-05", "edge"), ("2026-12-06", "new")):
        (tmp_path / day).mkdir()
        (tmp_path / day / f"{name}.wav").write_bytes(b"x")
    cut = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    early = (cut - timedelta(hours=1)).timestamp()
    os.utime(tmp_path / "2026-12-05" / "edge.wav", (early, early))
    assert purge_recordings(tmp_path, cut) == 2
    assert sorted(p.name for p in tmp_path.rglob("*.wav")) == ["new.wav"]
    assert not (tmp_path / "2026-11-01").exists()
    assert purge_recordings(tmp_path / "missing", cut) == 0
