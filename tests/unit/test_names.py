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


def test_output_stream_names_taken_from_input_do_not_grow_what_the_engine_and_the_committer_remember():
    """A processor may route by a field of its input: 5,000 distinct names keep both caches at their bound."""
    from streams.codec import envelope
    from streams.delivery import to_delivery
    from streams.engine.outcomes import MAX_CACHED_NAMES, Outcomes
    from streams.message import Message, Outgoing
    from streams.redis.commit import _Addresses, _KeyList, _pack_entries
    from streams.stage import Stage
    from streams.transition import Forward

    async def route(message: Message) -> list[Outgoing]:
        return []

    outcomes = Outcomes(Stage("route", "in", route), "c", "in", 1 << 20)
    fields = [f.encode() for f in envelope(b"{}", "r1", 1, 0)]
    d = to_delivery("in", "1-0", fields, 1)
    names = _Addresses(Keys("ms", "p"))
    for i in range(5000):
        t = outcomes.forward(d, [Outgoing({}, stream=f"route-{i}")])
        assert t.ops == [Forward(f"route-{i}", b"{}", "r1", 0)]
        _pack_entries([t], names, keys := _KeyList())
        assert keys.keys == [f"ms:{{p}}:stream:route-{i}"]
    assert len(outcomes._named) == MAX_CACHED_NAMES and len(names._streams) == MAX_CACHED_NAMES
    with pytest.raises(ConfigError):  # past the bound, names are still checked
        outcomes.forward(d, [Outgoing({}, stream="route-x\n")])
