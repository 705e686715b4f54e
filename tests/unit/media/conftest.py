from __future__ import annotations

import pathlib

import pytest

DATA = pathlib.Path(__file__).resolve().parents[2] / "data" / "media"


@pytest.fixture
def media_data() -> pathlib.Path:
    return DATA
