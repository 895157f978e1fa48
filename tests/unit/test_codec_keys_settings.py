"""Envelope codec, key names and settings validation: no I/O."""

from __future__ import annotations

import re

import pytest

from streams.codec import decode, encode_payload, envelope
from streams.errors import ConfigError, DecodeError, PayloadTooLarge
from streams.redis.keys import Keys
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
            keys.heartbeat("ocr", "c1"), keys.status(7), keys.events, keys.dedup("r1"), keys.status_head,
            keys.seen(7), keys.seen_head]
    assert all(k.startswith("ms:{imgtr}:") for k in made)
    assert not set(made) & set(LEGACY)
    with pytest.raises(ConfigError, match="collides with legacy"):
        Keys("img", "translate", lists=LEGACY)


def test_the_dedup_prefix_is_the_status_prefix_with_seen_for_status_as_ms_publish_derives_it() -> None:
    keys = Keys("ms", "imgtr")
    assert keys.seen_prefix == keys.status_prefix.removesuffix("status:") + "seen:"
    assert keys.status_head == keys.status_prefix + "head" and keys.seen_head == keys.seen_prefix + "head"


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
        ({"MILLSTREAM_STATUS_TTL": "0"}, "MILLSTREAM_STATUS_TTL: must be > 0"),
        ({"MILLSTREAM_STATUS_TTL": "-1"}, "MILLSTREAM_STATUS_TTL: must be > 0"),
        ({"MILLSTREAM_STATUS_TTL": "nan"}, "MILLSTREAM_STATUS_TTL: must be > 0"),
        ({"MILLSTREAM_DEDUP_WINDOW": "0"}, "MILLSTREAM_DEDUP_WINDOW: must be > 0"),
        ({"MILLSTREAM_DEDUP_WINDOW": "an hour"}, "MILLSTREAM_DEDUP_WINDOW: invalid value 'an hour'"),
        ({"MILLSTREAM_STATUS_MAX_RECORDS": "-1"}, "MILLSTREAM_STATUS_MAX_RECORDS: must be 0 (no count bound) or >= 9"),
        ({"MILLSTREAM_STATUS_MAX_RECORDS": "8"}, "MILLSTREAM_STATUS_MAX_RECORDS: must be 0 (no count bound) or >= 9"),
        ({"MILLSTREAM_STATUS_MAX_RECORDS": "1e6"}, "MILLSTREAM_STATUS_MAX_RECORDS: invalid value '1e6'"),
        ({"MILLSTREAM_DEDUP_MAX_KEYS": "1"}, "MILLSTREAM_DEDUP_MAX_KEYS: must be 0 (no count bound) or >= 9"),
        ({"MILLSTREAM_DEDUP_MAX_KEYS": "lots"}, "MILLSTREAM_DEDUP_MAX_KEYS: invalid value 'lots'"),
        ({"MILLSTREAM_EVENTS_MAXLEN": "0"}, "MILLSTREAM_EVENTS_MAXLEN: must be >= 1"),
        ({"MILLSTREAM_METRICS_HOST": ""}, "MILLSTREAM_METRICS_HOST: must name an address"),
        ({"MILLSTREAM_METRICS_HOST": "  "}, "MILLSTREAM_METRICS_HOST: must name an address"),
        ({"MILLSTREAM_DLQ_MAX_LEN": "-5"}, "MILLSTREAM_DLQ_MAX_LEN: DLQ retention must be >= 0"),
        ({"MILLSTREAM_DLQ_MAX_AGE": "-1"}, "MILLSTREAM_DLQ_MAX_AGE: DLQ retention must be >= 0"),
    ],
)
def test_invalid_values_fail_at_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_env(env)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://user:secret@cache.example:6380/2", "unix:///run/redis.sock?db=1"]
)
def test_supported_redis_urls_are_accepted(url: str) -> None:
    assert from_env({"MILLSTREAM_REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(("env", "field", "value"), [
    ({"MILLSTREAM_STATUS_MAX_RECORDS": "0"}, "status_max_records", 0),
    ({"MILLSTREAM_STATUS_MAX_RECORDS": "9"}, "status_max_records", 9),
    ({"MILLSTREAM_DEDUP_MAX_KEYS": "250000"}, "dedup_max_keys", 250_000),
    ({"MILLSTREAM_METRICS_HOST": "0.0.0.0"}, "metrics_host", "0.0.0.0"),
])
def test_retention_bounds_and_the_metrics_host_are_read_from_the_environment(
    env: dict[str, str], field: str, value: object
) -> None:
    assert getattr(from_env(env), field) == value


def test_the_retention_defaults_are_the_documented_ones() -> None:
    s = Settings()
    assert (s.status_ttl, s.status_max_records, s.dedup_window, s.dedup_max_keys) == (7200.0, 1_000_000, 3600.0, 1_000_000)
    assert (s.events_maxlen, s.dlq_max_len, s.metrics_host) == (10_000, 100_000, "127.0.0.1")


def test_consumer_name_defaults_to_host_and_pid() -> None:
    assert Settings().consumer.endswith(f"-{__import__('os').getpid()}")


def test_a_publisher_made_without_settings_has_the_settings_defaults():
    from streams.redis.publisher import Publisher

    keys = Keys("ms", "p")
    assert Publisher(None, keys) == Publisher.from_settings(None, keys, Settings())  # type: ignore[arg-type]


def test_a_negative_error_stream_cap_is_refused_naming_its_variable():
    with pytest.raises(ConfigError, match=r"^MILLSTREAM_ERRORS_MAX_LEN: must be >= 0"):
        Settings(errors_max_len=-1)
