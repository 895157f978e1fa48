"""Envelope codec, key names and settings validation: no I/O."""

from __future__ import annotations

import pytest

from streams.codec import decode, encode_payload, envelope
from streams.errors import ConfigError, DecodeError, PayloadTooLarge
from streams.keys import Keys
from streams.settings import Settings, from_env

LEGACY = ["img:translate:tasks", "img:translate:success", "img:translate:error", "hosting:tasks", "ocr:results"]


def test_envelope_round_trips() -> None:
    fields = envelope(encode_payload({"a": "é", "n": [1, 2]}), "rid-1", 3, 1700000000000)
    as_map = {k.encode(): v.encode() for k, v in zip(fields[::2], fields[1::2], strict=True)}
    assert decode(as_map) == ({"a": "é", "n": [1, 2]}, "rid-1", 3, 1700000000000)


def test_payload_over_the_limit_is_refused_with_sizes() -> None:
    with pytest.raises(PayloadTooLarge, match=r"payload is 2\d{3} bytes encoded, over the limit of 1024"):
        encode_payload({"blob": "x" * 2000}, limit=1024)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({b"d": b"{}"}, "unsupported envelope version"),
        ({b"v": b"1", b"rid": b"r"}, "lacks field"),
        ({b"v": b"1", b"d": b"{oops", b"rid": b"r"}, "not valid JSON"),
        ({b"v": b"1", b"d": b"[1]", b"rid": b"r"}, "must be a JSON object"),
    ],
)
def test_bad_entries_raise_decode_error(fields: dict[bytes, bytes], problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode(fields)


def test_keys_share_the_pipeline_hash_tag_and_never_equal_legacy_lists() -> None:
    keys = Keys("ms", "imgtr")
    made = [keys.stream("tasks"), keys.errors, keys.dlq("ocr"), keys.delayed("tasks"),
            keys.heartbeat("ocr", "c1"), keys.status(7), keys.events, keys.dedup("r1")]
    assert all(k.startswith("ms:{imgtr}:") for k in made)
    assert not set(made) & set(LEGACY)
    with pytest.raises(ConfigError, match="collides with legacy"):
        Keys("img", "translate")


def test_unknown_variable_fails_naming_it_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="MILLSTREAM_HEARTBEAT_TLL: unknown setting; did you mean MILLSTREAM_HEARTBEAT_TTL"):
        from_env({"MILLSTREAM_HEARTBEAT_TLL": "3"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MILLSTREAM_METRICS_PORT": "nine"}, "MILLSTREAM_METRICS_PORT: invalid value 'nine'"),
        ({"MILLSTREAM_REDIS_URL": "http://h:1"}, "must start with redis://, rediss:// or unix://"),
        ({"MILLSTREAM_REDIS_URL": "unix://"}, "names no socket path"),
        ({"MILLSTREAM_HEARTBEAT_TTL": "0"}, "MILLSTREAM_HEARTBEAT_TTL: must be > 0"),
    ],
)
def test_invalid_values_fail_at_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        from_env(env)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://user:secret@cache.example:6380/2", "unix:///run/redis.sock?db=1"]
)
def test_supported_redis_urls_are_accepted(url: str) -> None:
    assert from_env({"MILLSTREAM_REDIS_URL": url}).redis_url == url


def test_consumer_name_defaults_to_host_and_pid() -> None:
    assert Settings().consumer.endswith(f"-{__import__('os').getpid()}")
