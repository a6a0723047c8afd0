"""Fuzzed sandbox management: the toolkit's create/list/shutdown, SandboxManager, SandboxSlot,
and the tool-calling entry point."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e2bq import E2BQError, E2BToolkit, SandboxManager, SandboxSlot, Settings

from . import FUZZ
from .conftest import check
from .strategies import anything, odd_numbers, odd_text, unknown_ids, wrong_types

lifetimes = st.one_of(st.none(), st.sampled_from([30, 60.5]), odd_numbers, wrong_types)
metadatas = st.one_of(
    st.none(),
    st.dictionaries(odd_text, st.one_of(odd_text, wrong_types), max_size=3),
    st.dictionaries(
        wrong_types.filter(lambda k: isinstance(k, (int, float, bytes, bool, type(None)))),
        odd_text,
        max_size=2,
    ),
    anything,
)


def _shut(toolkit: E2BToolkit, result: dict[str, Any]) -> None:
    if result["status"] == "success" and isinstance(result.get("sandbox_id"), str):
        check(toolkit.shutdown_sandbox(result["sandbox_id"]))


@settings(FUZZ, max_examples=20)
@given(timeout=lifetimes, metadata=metadatas, set_as_default=st.one_of(st.just(False), anything))
def test_create_sandbox(toolkit: E2BToolkit, timeout: Any, metadata: Any, set_as_default: Any) -> None:
    made = check(toolkit.create_sandbox(timeout=timeout, metadata=metadata, set_as_default=set_as_default))
    try:
        check(toolkit.list_managed_sandboxes())
    finally:
        _shut(toolkit, made)


@settings(FUZZ, max_examples=25)
@given(where=st.one_of(unknown_ids, anything))
def test_shutdown_sandbox_unknown(toolkit: E2BToolkit, where: Any) -> None:
    if where is None:  # the default sandbox: shut down, and replaced by the next call
        where = "i" + "1" * 19
    check(toolkit.shutdown_sandbox(where))


@settings(FUZZ, max_examples=20)
@given(
    name=st.one_of(st.sampled_from(["run_python_code", "kill_job", "get_public_url"]), anything),
    arguments=anything,
)
def test_call_as_a_tool(toolkit: E2BToolkit, name: Any, arguments: Any) -> None:
    check(toolkit.call(name, arguments))
    json.dumps(toolkit.tools, allow_nan=False)


# -- SandboxManager and SandboxSlot: create and connect return a slot or raise an E2BQError ------


@settings(FUZZ, max_examples=25)
@given(
    api_key=st.one_of(st.none(), anything),
    default_timeout=st.one_of(st.just(300), odd_numbers, wrong_types),
    default_options=st.one_of(st.none(), anything),
    create_wait=st.one_of(st.none(), odd_numbers, wrong_types),
)
def test_manager_construction(
    settings: Settings, api_key: Any, default_timeout: Any, default_options: Any, create_wait: Any
) -> None:
    try:
        SandboxManager(api_key, default_timeout, default_options, create_wait=create_wait, settings=settings)
    except E2BQError as exc:
        assert str(exc).strip()


@settings(FUZZ, max_examples=15)
@given(
    timeout=lifetimes,
    metadata=metadatas,
    options=st.one_of(st.none(), st.just({"envs": {"A": "1"}}), anything),
)
def test_manager_create(
    toolkit: E2BToolkit, settings: Settings, timeout: Any, metadata: Any, options: Any
) -> None:
    try:
        manager = SandboxManager(default_options=options, settings=settings)
        slot = manager.create(timeout=timeout, metadata=metadata)
    except E2BQError as exc:
        assert str(exc).strip()
        return
    try:
        assert isinstance(slot, SandboxSlot)
        json.dumps(slot.to_dict(), allow_nan=False)
    finally:
        check(manager.shutdown(slot.sandbox_id))


@settings(FUZZ, max_examples=25)
@given(where=st.one_of(unknown_ids, anything))
def test_manager_connect_and_shutdown(toolkit: E2BToolkit, sandbox_id: str, where: Any) -> None:
    manager = toolkit.manager
    try:
        slot = manager.connect(where)
        json.dumps(slot.to_dict(), allow_nan=False)
    except E2BQError as exc:
        assert str(exc).strip()
    check(manager.shutdown(where))
    slot = manager.connect(sandbox_id)  # the real one still answers
    assert slot.sandbox_id == sandbox_id


@pytest.mark.parametrize("where", ["i" + "0" * 19, "../../etc/passwd"])
def test_slot_sandbox_of_an_unknown_id(settings: Settings, where: str) -> None:
    slot = SandboxSlot(sandbox_id=where, settings=settings)
    try:
        slot.sandbox  # noqa: B018 -- the property connects
    except E2BQError as exc:
        assert str(exc).strip()


def test_list_and_shutdown_all(toolkit: E2BToolkit) -> None:
    """Last in the suite: it shuts down the module's sandboxes."""
    check(toolkit.list_managed_sandboxes())
    check(toolkit.shutdown_all_sandboxes())
    check(toolkit.shutdown_all_sandboxes())


@settings(FUZZ, max_examples=15)
@given(global_workers=st.one_of(st.just(10), odd_numbers, wrong_types), name=st.one_of(st.none(), odd_text))
def test_toolkit_construction(settings: Settings, global_workers: Any, name: Any) -> None:
    extra = {} if name is None else {"name": name}
    try:
        E2BToolkit(
            SandboxManager(settings=settings),
            auto_create_default=False,
            global_workers=global_workers,
            **extra,
        )
    except E2BQError as exc:
        assert str(exc).strip()
