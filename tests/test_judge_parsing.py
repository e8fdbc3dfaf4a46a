"""Strict reading of judge replies: one unambiguous 0-4 integer, or a status; a score is never guessed."""

from __future__ import annotations

import pytest

from tvbench.judge.parsing import parse_reply

OK_REPLIES = [
    ('{"reasoning": "The box moved right as in the reference.", "score": 3}', 3),
    ('{"score": 2, "reasoning": "fields in another order"}', 2),
    ('```json\n{"reasoning": "fenced", "score": 4}\n```', 4),
    ('Here is my evaluation.\n{"reasoning": "prose around the JSON", "score": 1}\nThanks!', 1),
    ('{"reasoning": "x", "score": "0"}', 0),
    ('{"reasoning": "x", "score": 3.0}', 3),
    ('{"Score": 2}', 2),
    ("Score: 3", 3),
    ("The object moved about 30 pixels to the right. Final score: 4/4.", 4),
    ("**Score (0-4):** 2", 2),
    ("The score is 1 out of 4.", 1),
    ("3", 3),
    ("<think>maybe score: 1</think>\n{\"reasoning\": \"after thinking\", \"score\": 4}", 4),
]

UNPARSEABLE_REPLIES = [
    "",
    "garbage ###",
    "I think it is a 3, or maybe a 2.",  # numbers without a label
    "Score: 3. On second thought, score: 2.",  # two different scores
    "A score of 2 would be too harsh; I give it 3.",  # a labelled score and another candidate
    '{"score": 3} Actually the score: 1.',  # JSON and prose disagree
    '{"score": 5}',  # off the scale
    '{"score": -1}',
    '{"score": 2.5}',  # not an integer
    '{"score": true}',
    '{"score": "three"}',
    '{"score": null}',
    '{"score": 1e400}',  # infinity
    '{"score": NaN}',
    '{"score": [3]}',
    "Score: 7/10",  # another scale
    '{"reasoning": "cut mid-number", "score": 3',  # incomplete JSON ending on the score: could be 3.5
    '{"reasoning": "no score key"}',
    '{"a": {"score": 3}',  # broken JSON around a score
    '{"score": 3, "reasoning": "cut off here',  # partial JSON is not read, even where the score looks complete
]


@pytest.mark.parametrize("text,score", OK_REPLIES)
def test_unambiguous_replies_are_ok(text, score):
    parsed = parse_reply(text)
    assert (parsed.status, parsed.score) == ("ok", score), parsed


@pytest.mark.parametrize("text", UNPARSEABLE_REPLIES)
def test_ambiguous_or_broken_replies_are_unparseable(text):
    parsed = parse_reply(text)
    assert parsed.status == "unparseable" and parsed.score is None and parsed.detail, parsed


def test_a_reply_cut_at_max_tokens_right_after_its_number_is_not_trusted():
    assert parse_reply("Score: 3", finish_reason="length").status == "unparseable"
    assert parse_reply('{"score": 3}', finish_reason="length").status == "ok"  # complete JSON is complete


def test_refusals():
    assert parse_reply(None, refusal="I cannot help with that.").status == "refused"
    assert parse_reply("", finish_reason="content_filter").status == "refused"
    refused = parse_reply("I'm sorry, but I can't evaluate these images.")
    assert refused.status == "refused" and refused.score is None
    assert parse_reply("I can't be sure, but Score: 2").status == "ok"  # a hedge with a score is a grade


def test_reasoning_is_kept():
    assert parse_reply('{"reasoning": "because", "score": 2}').reasoning == "because"


def test_no_prefix_of_a_reply_yields_another_score():
    """A reply cut anywhere (dropped connection, max_tokens) is either unparseable or still says its own score."""
    import random

    full = '{"reasoning": "Operation right; 2 of 4 points off, moved 30 px.", "score": 3}'
    for end in range(len(full) + 1):
        for finish in ("stop", "length"):
            parsed = parse_reply(full[:end], finish_reason=finish)
            assert parsed.status in ("ok", "unparseable") and parsed.score in (None, 3), (full[:end], parsed)
    rng = random.Random(0)
    alphabet = 'score:{}"0123456789 ./-,\n'
    for _ in range(2000):  # random junk never raises and never scores off the scale
        parsed = parse_reply("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))
        assert parsed.score is None or 0 <= parsed.score <= 4
