"""Callbacks' contract: the signature covers the timestamp and the exact body, a receiver's check
refuses anything else, and callback_url / on_done are checked when a job is submitted."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from e2bq import callbacks, verify_callback
from e2bq.config import Settings
from e2bq.errors import ConfigurationError, InvalidInputError

SECRET = "s3cret"
NOW = 1_800_000_000.0


def test_the_signature_is_hmac_sha256_over_the_timestamp_a_dot_and_the_body() -> None:
    payload = callbacks.body({"status": "done", "job_id": "j1", "result": None})
    assert payload == b'{"job_id":"j1","result":null,"status":"done"}'
    signed = callbacks.headers(SECRET, "j1", payload, attempt=2, now=NOW)
    expected = hmac.new(SECRET.encode(), b"1800000000." + payload, hashlib.sha256).hexdigest()
    assert signed["X-E2BQ-Signature"] == f"sha256={expected}"
    assert signed["X-E2BQ-Timestamp"] == "1800000000"
    named = (signed["X-E2BQ-Job-Id"], signed["X-E2BQ-Delivery"], signed["X-E2BQ-Attempt"])
    assert named == ("j1", "j1.end", "2")
    assert signed["Content-Type"] == "application/json"


def test_a_receiver_accepts_the_signed_body_and_refuses_anything_else() -> None:
    payload = callbacks.body({"status": "done", "job_id": "j1"})
    signed = callbacks.headers(SECRET, "j1", payload, attempt=1, now=NOW)
    lower = {name.lower(): value for name, value in signed.items()}
    assert verify_callback(SECRET, payload, signed, now=NOW + 10)
    assert verify_callback(SECRET, payload, lower, now=NOW)  # header names in any case
    assert not verify_callback("other", payload, signed, now=NOW)
    assert not verify_callback(SECRET, payload + b" ", signed, now=NOW)
    assert not verify_callback(SECRET, payload, {**signed, "X-E2BQ-Timestamp": "1800000001"}, now=NOW)
    assert not verify_callback(SECRET, payload, signed, now=NOW + 301)  # a replay, too late
    assert not verify_callback(SECRET, payload, {}, now=NOW)


def test_notify_fields_check_what_a_submit_asks_for() -> None:
    signed = Settings(callback_secret=SECRET)
    assert callbacks.notify_fields(signed, None, None, None) == {}
    assert callbacks.notify_fields(signed, "https://hooks.example/e2bq", "app.done", None) == {
        "callback_url": "https://hooks.example/e2bq",
        "on_done": "app.done",
        "on_done_queue": "celery",
    }
    assert callbacks.notify_fields(Settings(), None, "app.done", "q1")["on_done_queue"] == "q1"
    with pytest.raises(ConfigurationError, match="E2BQ_CALLBACK_SECRET"):
        callbacks.notify_fields(Settings(), "https://hooks.example/e2bq", None, None)
    for bad in ("ftp://hooks.example/x", "hooks.example/x", "http://", 42):
        with pytest.raises(InvalidInputError, match="callback_url"):
            callbacks.notify_fields(signed, bad, None, None)
    for bad_task in ("", "has space", 7):
        with pytest.raises(InvalidInputError, match="on_done"):
            callbacks.notify_fields(signed, None, bad_task, None)
    with pytest.raises(InvalidInputError, match="on_done_queue needs on_done"):
        callbacks.notify_fields(signed, None, None, "q1")


def test_retries_back_off_exponentially_up_to_a_minute() -> None:
    settings = Settings(callback_backoff=1.0)
    assert [callbacks.backoff(settings, n) for n in (1, 2, 3, 4, 8)] == [1.0, 2.0, 4.0, 8.0, 60.0]


def test_the_callback_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "E2BQ_CALLBACK_SECRET": "hush-0123",
            "E2BQ_CALLBACK_ATTEMPTS": "3",
            "E2BQ_CALLBACK_MAX_SECONDS": "30",
            "E2BQ_CALLBACK_BACKOFF": "0.5",
            "E2BQ_CALLBACK_TIMEOUT": "2",
            "E2BQ_EVENTS_MAX": "1000",
        }
    )
    assert settings.callback_secret == "hush-0123"
    assert (settings.callback_attempts, settings.callback_max_seconds) == (3, 30.0)
    assert (settings.callback_backoff, settings.callback_timeout, settings.events_max) == (0.5, 2.0, 1000)
    assert "hush-0123" not in repr(settings)  # the secret never reaches a log line
    with pytest.raises(ConfigurationError, match="E2BQ_EVENTS_MAX"):
        Settings.from_env({"E2BQ_EVENTS_MAX": "0"})
