"""redact() masks every credential form it knows; plain() escapes everything that steers a terminal."""

from __future__ import annotations

import logging
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.text.plaintext import plain
from streams.text.redact import MASK, RedactingFilter, redact, secret_values, url_password

CREDENTIAL_FORMS = [
    ("redis://:hunter2hunter2@cache:6379/0", "hunter2hunter2", "redis://:***@cache:6379/0"),
    ("rediss://alice:s3cr3t-pw@cache:6380/1", "s3cr3t-pw", "rediss://alice:***@cache:6380/1"),
    ("GET http://bob:pa55word@10.0.0.1/x failed", "pa55word", "GET http://bob:***@10.0.0.1/x failed"),
    ("Authorization: Bearer sk-live-123456", "sk-live-123456", "Authorization: ***"),
    ("proxy-authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "proxy-authorization: ***"),
    ("headers={'Authorization': 'Bearer sk-abc12345', 'Accept': '*/*'}", "sk-abc12345",
     "headers={'Authorization': '***', 'Accept': '*/*'}"),
    ('{"X-Api-Key": "k-9876543210"}', "k-9876543210", '{"X-Api-Key": "***"}'),
    ("Cookie: session=abcdef0123", "abcdef0123", "Cookie: ***"),
    ("token rejected: Bearer eyJhbGciOi.J9.xyz", "eyJhbGciOi.J9.xyz", "token rejected: Bearer ***"),
    ("a basic setup failed", "", "a basic setup failed"),
    ("https://api.example/v1?api_key=AKIA12345&q=1", "AKIA12345", "https://api.example/v1?api_key=***&q=1"),
    ("https://api.example/v1?x=1&access_token=tok-999", "tok-999", "https://api.example/v1?x=1&access_token=***"),
]


@pytest.mark.parametrize(("text", "secret", "expected"), CREDENTIAL_FORMS)
def test_each_credential_form_is_masked_and_the_rest_kept(text: str, secret: str, expected: str):
    assert redact(text) == expected
    assert not secret or secret not in redact(text)


def test_known_secret_values_are_masked_wherever_they_appear():
    text = "provider said: invalid key sk-proj-XYZ0123 (key sk-proj-XYZ0123)"
    assert redact(text, ["sk-proj-XYZ0123"]) == f"provider said: invalid key {MASK} (key {MASK})"


def test_short_known_values_are_not_treated_as_secrets():
    assert redact("the id is 42", ["42"]) == "the id is 42"


def test_secret_values_come_from_key_password_token_and_url_settings():
    environ = {
        "MILLSTREAM_TRANSLATE_API_KEY": "sk-key-0001",
        "MILLSTREAM_REDIS_URL": "redis://u:p%40ss-word@h:6379/0",
        "MILLSTREAM_SOME_TOKEN": "tok-0002",
        "MILLSTREAM_NAMESPACE": "not-a-secret",
        "OTHER_API_KEY": "not-ours",
    }
    assert set(secret_values(environ)) == {"sk-key-0001", "p@ss-word", "p%40ss-word", "tok-0002"}


def test_url_password_survives_urls_that_do_not_parse():
    assert url_password("redis://u:pw-1234@[::1/0") == "pw-1234"
    assert url_password("redis://u:pw-1234@h:99999/0") == "pw-1234"
    assert url_password("redis://h/0") is None


@given(st.text(max_size=40), st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=6, max_size=30))
def test_a_password_in_any_url_never_survives(prefix: str, password: str):
    assert password not in redact(f"{prefix} redis://user:{password}@host:6379/0")[len(prefix):]


UNSAFE = [
    ("\x1b[2J", "\\x1b[2J"),  # clear screen
    ("\x1b]8;;http://evil\x07click\x1b]8;;\x07", "\\x1b]8;;http://evil\\x07click\\x1b]8;;\\x07"),  # hyperlink
    ("ok\rFAKE", "ok\\x0dFAKE"),  # overwrite the line
    ("a\nINFO forged line", "a\\x0aINFO forged line"),
    ("\x9b31m", "\\u009b31m"),  # 8-bit CSI
    ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("bell\x07", "bell\\x07"),
    ("del\x7f", "del\\u007f"),
    ("[/] [bold]markup[/bold]", "[/] [bold]markup[/bold]"),  # markup is text; callers never render it
    ("한국어 中文 ok", "한국어 中文 ok"),
]


@pytest.mark.parametrize(("text", "expected"), UNSAFE)
def test_plain_escapes_what_steers_a_terminal_and_keeps_text(text: str, expected: str):
    assert plain(text) == expected


@given(st.text())
def test_plain_output_has_no_control_characters(text: str):
    shown = plain(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E for c in shown)


def test_log_records_are_redacted_and_escaped(caplog: pytest.LogCaptureFixture):
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter(["sk-known-777"]))
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.warning("failed %s with key %s\x1b[2J", "redis://:pw-4321@h/0", "sk-known-777")
    assert caplog.records[0].getMessage() == "failed redis://:***@h/0 with key ***\\x1b[2J"


@pytest.mark.parametrize("text", [
    "a" * 2_000_000,  # a run of letters: an unbounded scheme made this quadratic (38 s for 200 kB)
    "x" * 1_000_000 + "://" + "u" * 1_000_000,
    "x" * 1_000_000 + "://u:" + "p" * 1_000_000,
    "authorization" * 150_000,
    "Bearer " * 300_000,
    "?api_key=" * 200_000,
])
def test_redaction_stays_linear_on_hostile_megabytes(text: str):
    # Not a benchmark: a quadratic pattern takes hours here, a linear one well under a second.
    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 10
