from __future__ import annotations

import pathlib
from datetime import UTC, datetime, timedelta

import pytest

from ivr.cli import main
from ivr.store import open_store


def test_ivr_purge_deletes_old_recordings_with_the_calls(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recordings = tmp_path / "recordings"
    now = datetime.now(UTC)
    for age, name in ((timedelta(days=45), "old"), (timedelta(days=2), "new")):
        day = recordings / (now - age).strftime("%Y-%m-%d")
        day.mkdir(parents=True)
        (day / f"{name}.wav").write_bytes(b"RIFF")
    setting = f"recording_dir={recordings}"
    open_store(str(tmp_path / "ivr.db")).close()  # purge refuses a database that is not there (a mistyped --db)
    assert main(["purge", "--older-than", "30d", "--db", str(tmp_path / "ivr.db"), "--set", setting]) == 0
    assert "1 call recordings" in capsys.readouterr().out
    assert [p.name for p in recordings.rglob("*.wav")] == ["new.wav"]
