"""The environment is read by from_env (and section, secrets) only: defaults that come from it too."""

from __future__ import annotations

import os

import pytest

from streams.settings import Settings, from_env


@pytest.mark.parametrize(
    ("environ", "operator"),
    [
        ({"SUDO_USER": "root-jo", "USER": "root", "LOGNAME": "root"}, "root-jo"),
        ({"USER": "jo", "LOGNAME": "joanna"}, "jo"),
        ({"LOGNAME": "joanna"}, "joanna"),
        ({}, "unknown"),
        ({"USER": "jo", "MILLSTREAM_OPERATOR": ""}, "jo"),
        ({"USER": "jo", "MILLSTREAM_OPERATOR": "oncall-jo"}, "oncall-jo"),
    ],
)
def test_the_operator_defaults_to_the_user_the_environment_names(environ: dict[str, str], operator: str) -> None:
    assert from_env(environ).operator == operator


def test_settings_built_directly_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "someone-in-the-environment")
    monkeypatch.setenv("MILLSTREAM_OPERATOR", "someone-else")
    assert Settings().operator == "unknown"
    assert Settings(operator="jo").operator == "jo"


def test_the_consumer_defaults_to_host_and_pid_however_the_settings_are_built() -> None:
    expected = f"{os.uname().nodename}-{os.getpid()}"
    assert from_env({}).consumer == expected and Settings().consumer == expected


def test_is_set_says_whether_a_variable_is_present_whatever_its_value():
    from streams.settings import is_set

    assert is_set("redis_url", {"MILLSTREAM_REDIS_URL": ""}) is True
    assert is_set("redis_url", {"MILLSTREAM_REDIS_URLS": "x", "REDIS_URL": "y"}) is False
