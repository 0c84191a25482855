"""Subject rules shared by the backends: the wildcard matcher against a reference, the
validity checks, and the meter shards."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.bus.base import check_pattern, check_subject, subject_matches
from openami.bus.contract import SHARDS, SUBJECT_READS_ALL_SHARDS, reads_subject, shard_of
from openami.errors import BusError

# few distinct tokens, so that random subjects and patterns often match
TOKENS = st.sampled_from(["ami", "reads", "3", "x"])
SUBJECTS = st.lists(TOKENS, min_size=1, max_size=5).map(".".join)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(TOKENS, st.just("*")), min_size=0, max_size=5))
    if not parts or draw(st.booleans()):
        parts.append(">")
    return ".".join(parts)


def reference_matches(pattern: str, subject: str) -> bool:
    """NATS matching written the other way round: the pattern as a regular expression."""
    regex = ""
    for i, part in enumerate(pattern.split(".")):
        separator = r"\." if i else ""
        if part == ">":
            regex += separator + r"[^.]+(\.[^.]+)*"
        elif part == "*":
            regex += separator + r"[^.]+"
        else:
            regex += separator + re.escape(part)
    return re.fullmatch(regex, subject) is not None


@given(patterns(), SUBJECTS)
def test_matcher_agrees_with_the_reference(pattern: str, subject: str) -> None:
    assert check_pattern(pattern) == pattern
    assert check_subject(subject) == subject
    assert subject_matches(pattern, subject) == reference_matches(pattern, subject)


@given(SUBJECTS)
def test_a_plain_pattern_matches_itself_only(subject: str) -> None:
    assert subject_matches(subject, subject)
    assert not subject_matches(subject, subject + ".x")
    assert subject_matches(subject + ".>", subject + ".x")
    assert not subject_matches(subject + ".>", subject)


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("ami.reads.>", "ami.reads.3", True),
        ("ami.reads.>", "ami.reads.3.extra", True),
        ("ami.reads.>", "ami.reads", False),
        ("ami.*", "ami.reads", True),
        ("ami.*", "ami.reads.3", False),
        ("*.reads.*", "ami.reads.3", True),
        (">", "anything.at.all", True),
        ("ami.reads", "ami.reads", True),
        ("ami.reads", "ami.read", False),
    ],
)
def test_matcher_examples(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected


def test_every_meter_has_one_shard_and_shards_spread_evenly() -> None:
    counts = [0] * SHARDS
    for meter_id in range(SHARDS * 100):
        counts[shard_of(meter_id)] += 1
    assert counts == [100] * SHARDS


def test_shard_subjects_fall_under_the_all_shards_pattern() -> None:
    subjects = [reads_subject(s) for s in range(SHARDS)]
    assert subjects[3] == "ami.reads.3"
    assert len(set(subjects)) == SHARDS
    assert all(subject_matches(SUBJECT_READS_ALL_SHARDS, s) for s in subjects)
    assert reads_subject(shard_of(12_345)) == f"ami.reads.{12_345 % SHARDS}"


@pytest.mark.parametrize("shard", [-1, SHARDS])
def test_a_shard_out_of_range_is_refused(shard: int) -> None:
    with pytest.raises(BusError, match="shard"):
        reads_subject(shard)
