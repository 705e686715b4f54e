"""Voice messages in PostgreSQL (migration 0004 there): the same tests as SQLite's, on a throwaway cluster."""

from __future__ import annotations

import pytest

from tests.unit.store.test_store_messages import (
    test_a_message_is_a_wav_and_a_row,
    test_a_path_outside_the_directory_is_never_served,
    test_a_survey_comment_keeps_its_kind_and_score,
    test_list_is_newest_first_pages_and_filters,
    test_retention_deletes_old_messages_with_their_files,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_a_message_is_a_wav_and_a_row",
    "test_a_path_outside_the_directory_is_never_served",
    "test_a_survey_comment_keeps_its_kind_and_score",
    "test_list_is_newest_first_pages_and_filters",
    "test_retention_deletes_old_messages_with_their_files",
]
