"""The map store: items taken in order, results recorded once, a dead lane's items taken over,
nothing recorded after kill_job, and the recording that completes the map says so."""

from __future__ import annotations

import threading
import uuid

import redis

from e2bq.config import Settings
from e2bq.stores.jobs import JobStore
from e2bq.stores.keys import map_alive_prefix, map_key
from e2bq.stores.maps import MapStore
from e2bq.types import ErrorResult, MapItemResult


def new_map(settings: Settings, codes: list[str], lanes: int = 2) -> tuple[JobStore, MapStore, str]:
    jobs, maps = JobStore(settings), MapStore(settings)
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "map", "", settings.namespace)
    maps.create(job_id, codes, lanes=lanes)
    return jobs, maps, job_id


def ok(index: int) -> MapItemResult:
    return {
        "status": "success", "sandbox_id": "sbx", "results": [{"text": str(index), "is_main_result": True}],
        "logs": {"stdout": [], "stderr": []}, "error": None, "execution_count": index + 1,
    }


FAILED: ErrorResult = {"status": "error", "message": "boom"}


def test_items_are_taken_in_input_order_with_their_code(settings: Settings) -> None:
    _, maps, job_id = new_map(settings, ["a = 1", "a + 1", "print(a)"])
    maps.claim(job_id, "0")

    taken = [maps.take(job_id, "0") for _ in range(3)]

    assert [(t.kind, t.index, t.code, t.attempts) for t in taken] == [
        ("item", 0, "a = 1", 0), ("item", 1, "a + 1", 0), ("item", 2, "print(a)", 0)
    ]
    assert maps.take(job_id, "0").kind == "wait"  # all three leased by a live lane task, none recorded


def test_results_count_and_the_last_one_says_so(settings: Settings) -> None:
    _, maps, job_id = new_map(settings, ["1", "2", "3"])
    maps.claim(job_id, "0")
    for _ in range(3):
        maps.take(job_id, "0")

    assert maps.record(job_id, 2, ok(2)) == "recorded"
    assert maps.record(job_id, 0, FAILED) == "recorded"
    assert maps.record(job_id, 1, ok(1)) == "last"

    assert maps.progress(job_id) == {"total": 3, "done": 2, "failed": 1, "lanes": 2}
    assert maps.results(job_id, 0, 3) == [FAILED, ok(1), ok(2)]
    assert maps.take(job_id, "0").kind == "drained"


def test_a_result_is_recorded_once(settings: Settings) -> None:
    _, maps, job_id = new_map(settings, ["1", "2"])
    maps.claim(job_id, "0")
    maps.take(job_id, "0")

    assert maps.record(job_id, 0, ok(0)) == "recorded"
    assert maps.record(job_id, 0, FAILED) == "again"

    assert maps.progress(job_id) == {"total": 2, "done": 1, "failed": 0, "lanes": 2}
    assert maps.results(job_id, 0, 2) == [ok(0), None]


def test_nothing_is_taken_or_recorded_once_the_job_is_cancelled(settings: Settings) -> None:
    jobs, maps, job_id = new_map(settings, ["1", "2"])
    maps.claim(job_id, "0")
    maps.take(job_id, "0")

    assert jobs.cancel(job_id)

    assert maps.record(job_id, 0, ok(0)) == "ended"
    assert maps.take(job_id, "0").kind == "stop"
    assert maps.progress(job_id) == {"total": 2, "done": 0, "failed": 0, "lanes": 2}
    assert maps.results(job_id, 0, 2) == [None, None]


def test_a_dead_lane_tasks_item_is_taken_over_and_counted_as_an_attempt(
    settings: Settings, raw: redis.Redis
) -> None:
    _, maps, job_id = new_map(settings, ["1", "2"])
    maps.claim(job_id, "dead")
    maps.claim(job_id, "live")
    assert maps.take(job_id, "dead").index == 0
    assert maps.take(job_id, "live").index == 1
    assert maps.take(job_id, "live").kind == "wait"  # "dead" still beats

    raw.delete(f"{map_alive_prefix(job_id)}dead:alive")  # its worker died: the heartbeat lapsed

    taken = maps.take(job_id, "live")
    assert (taken.kind, taken.index, taken.code, taken.attempts) == ("item", 0, "1", 1)
    assert raw.hget(map_key(job_id, "leases"), "0") == "live"


def test_an_item_given_back_is_next_in_line(settings: Settings) -> None:
    _, maps, job_id = new_map(settings, ["1", "2", "3"])
    maps.claim(job_id, "0")
    first = maps.take(job_id, "0")

    maps.release(job_id, first.index, "0")
    maps.release(job_id, first.index, "0")  # twice: the second finds it no longer held

    assert [maps.take(job_id, "0").index for _ in range(3)] == [0, 1, 2]
    assert maps.take(job_id, "0").kind == "wait"


def test_a_sandbox_lost_under_an_item_is_counted(settings: Settings) -> None:
    _, maps, job_id = new_map(settings, ["1"])
    assert maps.lost(job_id, 0) == 1
    assert maps.lost(job_id, 0) == 2


def test_a_lane_task_is_claimed_by_one_delivery(settings: Settings) -> None:
    _, maps, job_id = new_map(settings, ["1"])
    assert maps.claim(job_id, "3")
    assert not maps.claim(job_id, "3")
    assert maps.claim(job_id, "4")


def test_racing_lanes_take_every_item_once(settings: Settings) -> None:
    _, maps, job_id = new_map(settings, [str(i) for i in range(400)], lanes=8)
    taken: list[list[int]] = [[] for _ in range(8)]

    def lane(number: int) -> None:
        group = str(number)
        maps.claim(job_id, group)
        while (item := maps.take(job_id, group)).kind == "item":
            taken[number].append(item.index)
            maps.record(job_id, item.index, ok(item.index))

    threads = [threading.Thread(target=lane, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = sorted(index for part in taken for index in part)
    assert everything == list(range(400))
    assert maps.progress(job_id) == {"total": 400, "done": 400, "failed": 0, "lanes": 8}


def test_an_empty_map_has_no_items(settings: Settings) -> None:
    _, maps, job_id = new_map(settings, [], lanes=0)
    assert maps.progress(job_id) == {"total": 0, "done": 0, "failed": 0, "lanes": 0}
    assert maps.results(job_id, 0, 0) == []


def test_lanes_count_down_and_work_is_dropped_at_the_end(settings: Settings, raw: redis.Redis) -> None:
    _, maps, job_id = new_map(settings, ["1"], lanes=2)
    assert maps.lane_stopped(job_id) == 1
    assert maps.lane_stopped(job_id) == 0

    maps.clear_work(job_id)

    assert not raw.exists(map_key(job_id, "items"), map_key(job_id, "todo"))
    assert maps.progress(job_id) == {"total": 1, "done": 0, "failed": 0, "lanes": 0}
