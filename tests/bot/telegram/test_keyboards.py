"""The feedback keyboard and the strict parsing of its callback data."""

from __future__ import annotations

import pytest

from bot import texts
from bot.telegram.keyboards import FeedbackChoice, feedback_data, feedback_keyboard, parse_feedback_data


def labels_and_data(markup):
    return [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]


def test_keyboard_has_up_and_down_with_the_choice_marked():
    assert labels_and_data(feedback_keyboard(7)) == [(texts.BUTTON_UP, "fb:7:up"), (texts.BUTTON_DOWN, "fb:7:down")]
    assert labels_and_data(feedback_keyboard(7, chosen=-1))[1][0] == texts.CHOSEN_MARK + texts.BUTTON_DOWN
    assert labels_and_data(feedback_keyboard(7, chosen=+1))[0][0] == texts.CHOSEN_MARK + texts.BUTTON_UP


@pytest.mark.parametrize("interaction_id", [1, 42, 10**18 - 1])
@pytest.mark.parametrize("vote", [1, -1])
def test_round_trip_and_telegram_64_byte_limit(interaction_id, vote):
    data = feedback_data(interaction_id, vote)
    assert len(data.encode()) <= 64
    assert parse_feedback_data(data) == FeedbackChoice(interaction_id, vote)


@pytest.mark.parametrize("data", [
    None, b"fb:1:up", 1, "", "fb", "fb:1", "fb:1:", "fb::up", "fb:1:UP", "FB:1:up", "fb:1:up ", " fb:1:up",
    "fb:1:up\n", "fb:1:up:x", "fb:0:up", "fb:01:up", "fb:-1:up", "fb:+1:up", "fb:1.0:up", "fb:１:up",
    "fb:١:down", "fb:10000000000000000000:up", "xx:1:up", "fb:1:yes"])
def test_anything_else_is_refused(data):
    assert parse_feedback_data(data) is None


@pytest.mark.parametrize("interaction_id,vote", [(0, 1), (-3, 1), (True, 1), ("1", 1), (1, 0), (1, 2)])
def test_building_bad_data_is_a_bug(interaction_id, vote):
    with pytest.raises(ValueError):
        feedback_data(interaction_id, vote)
