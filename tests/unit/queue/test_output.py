"""A job's whole output in Redis: both streams kept apart, paged by byte offset, cut at the cap."""

from __future__ import annotations

import uuid

import pytest
import redis

from e2bq.config import Settings
from e2bq.errors import InvalidInputError
from e2bq.stores.output import JobOutput, OutputPage, cut_marker


def read_all(output: JobOutput, job_id: str, stream: str, limit: int) -> tuple[str, list[OutputPage]]:
    """The whole stream, read page after page of at most ``limit`` bytes."""
    pages: list[OutputPage] = []
    offset = 0
    while True:
        page = output.read(job_id, stream, offset, limit)
        assert page.offset == offset and page.next_offset - page.offset == len(page.data.encode())
        assert page.next_offset - page.offset <= limit
        pages.append(page)
        if page.next_offset == page.size:
            return "".join(p.data for p in pages), pages
        assert page.next_offset > offset, "a page must make progress"
        offset = page.next_offset


@pytest.fixture
def job_id() -> str:
    return uuid.uuid4().hex


def test_both_streams_are_kept_apart_and_read_back_page_by_page(settings: Settings, job_id: str) -> None:
    output = JobOutput(settings)
    lines = [f"line {n}\n" for n in range(2000)]
    for start in range(0, len(lines), 100):
        output.write(
            job_id, tail="".join(lines[start : start + 100]), stdout="".join(lines[start : start + 100])
        )
        output.write(job_id, tail=f"warning {start}\n", stderr=f"warning {start}\n")

    stdout, pages = read_all(output, job_id, "stdout", 1000)
    stderr, _ = read_all(output, job_id, "stderr", 64)

    assert stdout == "".join(lines)
    assert len(pages) > 10
    assert stderr == "".join(f"warning {start}\n" for start in range(0, 2000, 100))
    assert pages[-1].size == len(stdout.encode()) and not pages[-1].truncated


def test_a_page_never_splits_a_character(settings: Settings, job_id: str) -> None:
    text = "aé€😀\n" * 500  # characters of 1, 2, 3 and 4 bytes
    output = JobOutput(settings)
    for part in range(0, len(text), 37):
        output.write(job_id, tail=text[part : part + 37], stdout=text[part : part + 37])

    for limit in (4, 5, 7, 1000):
        assert read_all(output, job_id, "stdout", limit)[0] == text


def test_an_offset_inside_a_character_moves_on_to_the_next_one(settings: Settings, job_id: str) -> None:
    output = JobOutput(settings)
    output.write(job_id, tail="€x", stdout="€x")  # € is 3 bytes

    page = output.read(job_id, "stdout", 1, 100)

    assert (page.offset, page.next_offset, page.data, page.size) == (3, 4, "x", 4)


def test_an_empty_stream_reads_empty_and_the_end_reads_empty(settings: Settings, job_id: str) -> None:
    output = JobOutput(settings)
    empty = output.read(job_id, "stderr", 0, 100)
    assert (empty.data, empty.size, empty.next_offset, empty.truncated) == ("", 0, 0, False)

    output.write(job_id, tail="abc", stdout="abc")
    end = output.read(job_id, "stdout", 3, 100)
    assert (end.data, end.offset, end.next_offset, end.size) == ("", 3, 3, 3)


def test_the_cap_keeps_exactly_cap_bytes_then_a_marker_once(settings: Settings, job_id: str) -> None:
    output = JobOutput(Settings(redis_url=settings.redis_url, job_output_max_bytes=100))
    for n in range(10):
        output.write(job_id, tail="x" * 30, stdout=f"{n}" * 30)
    output.write(job_id, tail="late", stderr="late\n")

    stdout, pages = read_all(output, job_id, "stdout", 1000)
    stderr, _ = read_all(output, job_id, "stderr", 1000)

    kept = "".join(f"{n}" * 30 for n in range(10))[:100]
    assert stdout == kept + "\n" + cut_marker(100)
    assert stdout.count("[e2bq: output cut at 100 bytes") == 1
    assert stderr == cut_marker(100)  # it lost all it had: the marker alone
    assert pages[-1].truncated


def test_a_flush_that_meets_the_cap_fills_stdout_first_then_stderr(settings: Settings, job_id: str) -> None:
    output = JobOutput(Settings(redis_url=settings.redis_url, job_output_max_bytes=10))
    output.write(job_id, tail="", stdout="abcdef\n", stderr="ghijkl\n")

    assert read_all(output, job_id, "stdout", 100)[0] == "abcdef\n"
    assert read_all(output, job_id, "stderr", 100)[0] == "ghi\n" + cut_marker(10)


def test_the_cap_never_splits_a_character(settings: Settings, job_id: str) -> None:
    output = JobOutput(Settings(redis_url=settings.redis_url, job_output_max_bytes=1024))
    output.write(job_id, tail="", stdout="€" * 1000)

    text, pages = read_all(output, job_id, "stdout", 100)

    assert text == "€" * 341 + "\n" + cut_marker(1024)  # 1023 bytes: a 342nd would end past 1024
    assert cut_marker(1024).startswith("[e2bq: output cut at 1 KiB;")
    assert pages[-1].truncated


def test_another_writer_continues_the_same_output(settings: Settings, job_id: str) -> None:
    first, second = JobOutput(settings), JobOutput(settings)
    first.write(job_id, tail="one\n", stdout="one\n")
    second.write(job_id, tail="two\n", stdout="two\n")

    assert read_all(JobOutput(settings), job_id, "stdout", 4)[0] == "one\ntwo\n"


def test_every_key_expires_with_the_job(settings: Settings, job_id: str, raw: redis.Redis) -> None:
    output = JobOutput(Settings(redis_url=settings.redis_url, job_ttl=600, job_output_max_bytes=5))
    output.write(job_id, tail="hello\n", stdout="hello\n", stderr="oops\n")

    keys = sorted(raw.keys(f"e2bq:job:{job_id}*"))
    assert keys == [f"e2bq:job:{job_id}:{part}" for part in ("output", "stderr", "stdout", "streams")]
    for key in keys:
        assert 0 < raw.ttl(key) <= 600, key


def test_the_tail_stays_bounded_in_whole_characters(
    settings: Settings, job_id: str, raw: redis.Redis
) -> None:
    output = JobOutput(Settings(redis_url=settings.redis_url, output_tail_bytes=10))
    for _ in range(20):
        output.write(job_id, tail="é", stdout="é")
    output.write(job_id, tail="end", stdout="end")

    tail = raw.get(f"e2bq:job:{job_id}:output")
    assert tail is not None and tail.endswith("end") and len(tail.encode()) <= 2 * 10 + 3
    assert set(tail[:-3]) == {"é"}
    assert read_all(output, job_id, "stdout", 8)[0] == "é" * 20 + "end"  # the whole output is all there


@pytest.mark.parametrize(
    ("stream", "offset", "limit", "says"),
    [
        ("both", 0, 100, "stream must be 'stdout' or 'stderr'"),
        (None, 0, 100, "stream must be"),
        ("stdout", -1, 100, "offset must be a whole number"),
        ("stdout", "0", 100, "offset must be a whole number"),
        ("stdout", True, 100, "offset must be a whole number"),
        ("stdout", 1.5, 100, "offset must be a whole number"),
        ("stdout", 0, 3, "limit must be a whole number of bytes from 4"),
        ("stdout", 0, 16 * 1024 * 1024 + 1, "limit must be"),
        ("stdout", 0, "1MB", "limit must be"),
        ("stdout", 4, 100, "offset 4 is past the end of the job's stdout \\(3 bytes so far\\)"),
    ],
)
def test_bad_requests_say_what_to_change(
    settings: Settings, job_id: str, stream: object, offset: object, limit: object, says: str
) -> None:
    output = JobOutput(settings)
    output.write(job_id, tail="abc", stdout="abc")
    with pytest.raises(InvalidInputError, match=says):
        output.read(job_id, stream, offset, limit)
