"""`ivr` on a user's mistakes: a site folder that cannot be written, a campaign export from a database
that is not there. Each is one line on stderr naming the problem, exit 1, never a traceback."""

from __future__ import annotations

import pathlib

import pytest

from ivr.cli import main
from tests.unit.test_cli import _clean_environment  # noqa: F401  (autouse: no IVR_* settings, logging reset)


def test_init_under_a_file_says_it_cannot_write_the_site(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    assert main(["init", str(blocker / "site")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ivr init: cannot write the site:") and str(blocker) in err
    assert "Traceback" not in err


def test_campaign_export_from_an_unreachable_database_names_it_with_the_password_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    assert main(["campaign", "export", "revisit", "--db", "postgresql://ivr:s3cret@127.0.0.1:1/ivr"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to the database postgresql://ivr:***@127.0.0.1:1/ivr" in err
    assert "s3cret" not in err and "Traceback" not in err
