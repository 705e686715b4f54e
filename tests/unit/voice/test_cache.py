from __future__ import annotations

import pathlib

import numpy as np

from ivr.voice import RenderCache, render_key


def test_key_changes_with_everything_that_changes_the_audio() -> None:
    base = render_key("您好", "yue", 140, "espeak-ng 1.51")
    assert base == render_key("您好", "yue", 140, "espeak-ng 1.51")
    others = {
        render_key("您好。", "yue", 140, "espeak-ng 1.51"),
        render_key("您好", "hak", 140, "espeak-ng 1.51"),
        render_key("您好", "yue", 150, "espeak-ng 1.51"),
        render_key("您好", "yue", 140, "espeak-ng 1.52"),
    }
    assert base not in others and len(others) == 4
    assert len(base) == 64 and int(base, 16) >= 0


def test_store_then_load_round_trips_as_8khz_wav(tmp_path: pathlib.Path) -> None:
    cache = RenderCache(tmp_path)
    key = render_key("x", "en-us", 150, "e")
    audio = (np.sin(np.arange(8000) / 5) * 10000).astype(np.int16)
    assert cache.load(key) is None and key not in cache
    path = cache.store(key, audio)
    assert path == tmp_path / key[:2] / f"{key}.wav" and key in cache
    loaded = cache.load(key)
    assert loaded is not None and np.array_equal(loaded, audio)
    assert not list(path.parent.glob(".tmp-*"))


def test_an_unreadable_entry_is_a_miss_not_an_error(tmp_path: pathlib.Path) -> None:
    cache = RenderCache(tmp_path)
    key = render_key("x", "en-us", 150, "e")
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_bytes(b"not a wav")
    assert cache.load(key) is None
