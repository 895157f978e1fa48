"""Names of streams, stages, pipelines and namespaces: exactly letters, digits, '_', '.' and '-'."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.errors import ConfigError
from streams.names import checked
from streams.redis.keys import Keys

ALLOWED = set(string.ascii_letters + string.digits + "_.-")


@given(st.text(max_size=40))
def test_a_name_is_accepted_exactly_when_every_character_is_allowed(name: str):
    if name and set(name) <= ALLOWED:
        assert checked("stream", name) == name
    else:
        with pytest.raises(ConfigError) as refused:
            checked("stream", name)
        assert str(refused.value) == f"stream: {name!r} must be letters, digits, '_', '.' or '-'"


@pytest.mark.parametrize("name", ["tasks\n", "tasks\r\n", "\ntasks", "", "tâches", "a b", "a:b", "a{b}", "a\x00"])
def test_names_with_a_newline_or_any_other_character_outside_the_rule_are_refused(name: str):
    with pytest.raises(ConfigError, match=re.escape(repr(name))):
        Keys("ms", "p").stream(name)
    with pytest.raises(ConfigError):
        Keys("ms", "p").dlq(name)
    with pytest.raises(ConfigError):
        Keys("ms", name)
