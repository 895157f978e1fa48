"""Redaction: the one function that takes secrets out of text bound for records, logs and terminals.

Error records, dead letters, webhook bodies, lists a pipeline mirrors outcomes to, CLI output and
logs all carry text that may have passed through a library which printed a
request it failed to send: a URL with ``user:password@``, an ``Authorization``
header, an ``api_key`` query parameter. ``redact`` removes every such form it
recognises, and every known secret value given to it (provider keys, the Redis
password), whatever the text around it:

```
scheme://user:password@host      -> scheme://user:***@host   (also scheme://:password@host)
Authorization: Bearer abc        -> Authorization: ***        (any *-Authorization, Cookie, X-Api-Key)
'Authorization': 'Bearer abc'    -> 'Authorization': '***'    (a header mapping's repr)
Bearer abc / Basic dXNlcjpw      -> Bearer *** / Basic ***
?api_key=abc&token=def           -> ?api_key=***&token=***    (key, token, password, secret, ...)
a known secret anywhere          -> ***
```

``secret_values(environ)`` collects the known secrets of a process's settings:
values of ``MILLSTREAM_*`` variables named ``*_KEY``, ``*_PASSWORD``, ``*_TOKEN``
or ``*_SECRET``, and the password of every ``MILLSTREAM_*_URL``.
``RedactingFilter`` applies ``redact`` to every log record a handler emits, and
shows its untrusted text plainly (``streams.text.plaintext``: no terminal escapes, no
forged log lines).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from streams.text.plaintext import plain

MASK = "***"
_MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words and digits

# Bounded repeats keep every pattern linear in the text: an unbounded scheme or user part made a
# 200 kB run of letters take 38 s (each start position scanned to the end).
_USERINFO = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]{0,31}://[^:@/\s'\"]{0,256}):(?P<secret>[^@/\s'\"]{1,256})@"
)
_HEADER_NAMES = r"(?:[A-Za-z-]*authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token)"
_HEADER_LINE = re.compile(rf"(?im)(?P<head>\b{_HEADER_NAMES}\s*:\s*)(?P<secret>[^\r\n,;'\"}}]+)")
_HEADER_REPR = re.compile(
    rf"(?i)(?P<head>['\"]{_HEADER_NAMES}['\"]\s*[:,]\s*['\"])(?P<secret>[^'\"]*)(?P<tail>['\"])"
)
# "Bearer" in any case; "Basic" only as HTTP writes it and followed by base64 ("basic setup" is prose).
_SCHEME_TOKEN = re.compile(
    r"\b(?P<head>(?i:bearer)|Basic)\s+(?P<secret>(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,})"
)
_QUERY_NAMES = r"(?:api[_-]?key|key|token|access[_-]?token|auth|password|passwd|secret|signature|sig)"
_QUERY = re.compile(rf"(?i)(?P<head>[?&;]{_QUERY_NAMES}=)(?P<secret>[^&#\s'\"]+)")
_SECRET_SUFFIXES = ("_KEY", "_PASSWORD", "_TOKEN", "_SECRET")
_SECRET_LISTS = ("_TOKENS", "_KEYS")  # comma-separated secrets: each one is masked alone too


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every recognised credential form, and every value in ``secrets``, masked."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _HEADER_REPR.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)
    text = _HEADER_LINE.sub(lambda m: f"{m['head']}{MASK}", text)
    text = _SCHEME_TOKEN.sub(lambda m: f"{m['head']} {MASK}", text)
    return _QUERY.sub(lambda m: f"{m['head']}{MASK}", text)


def url_password(url: str) -> str | None:
    """The password in ``url``'s user info (percent-decoded), or None; never raises."""
    try:
        password = urlsplit(url).password
    except ValueError:  # a bad port or bracket: take the user info by hand
        netloc = url.partition("://")[2].partition("/")[0]
        userinfo = netloc.rpartition("@")[0]
        password = userinfo.partition(":")[2] or None
    return None if password is None else unquote(password)


def secret_values(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The secrets among ``MILLSTREAM_*`` settings: keys, passwords, tokens, URL passwords."""
    found: set[str] = set()
    for name, value in environ.items():
        if not name.startswith("MILLSTREAM_") or not value:
            continue
        if name.endswith(_SECRET_SUFFIXES):
            found.add(value)
        elif name.endswith(_SECRET_LISTS):
            found.update({value, *(item.strip() for item in value.split(",") if item.strip())})
        elif name.endswith("_URL") and (password := url_password(value)):
            found.update({password, *_quoted_forms(value)})
    return tuple(sorted(found))


def _quoted_forms(url: str) -> set[str]:
    # The password as written in the URL (percent-encoded), besides its decoded form.
    netloc = url.partition("://")[2].partition("/")[0]
    written = netloc.rpartition("@")[0].partition(":")[2]
    return {written} if written else set()


class RedactingFilter(logging.Filter):
    """Redacts each record's formatted message and traceback text, and escapes their control characters."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = plain(redact(record.getMessage(), self._secrets))
        record.args = None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = plain(redact(formatted, self._secrets), keep_newlines=True)
            record.exc_info = None
        return True


def install_log_redaction(secrets: Iterable[str], logger: logging.Logger | None = None) -> None:
    """Redact every record the handlers of ``logger`` (default: the root logger) emit."""
    target = logger or logging.getLogger()
    redacting = RedactingFilter(secrets)
    for handler in target.handlers:
        handler.addFilter(redacting)
