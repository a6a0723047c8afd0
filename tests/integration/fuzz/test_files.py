"""Fuzzed file transfers and saved results: upload_file, download_file_from_sandbox,
download_png_result, download_chart_data. Local writes stay in the test's folder."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from e2bq import E2BToolkit

from . import FUZZ
from .conftest import check
from .strategies import anything, local_paths, odd_numbers, odd_text, sandbox_ids, wrong_types

sandbox_paths = st.one_of(
    st.sampled_from(
        [
            "../../etc/passwd",
            "/etc/passwd",
            "/etc/shadow",
            "/home/user",
            "/",
            "",
            ".",
            "/dev/null",
            "/proc/self/status",
            "/home/user/../../etc/hostname",
            "x\x00y",
            "/tmp/\ud800",
            "/nonexistent/a",
        ]
    ),
    odd_text,
    wrong_types,
)
indexes = st.one_of(st.sampled_from([0, 1]), odd_numbers, wrong_types)


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_upload_file(toolkit: E2BToolkit, sandbox_id: str, workdir: Path, data: st.DataObject) -> None:
    source = workdir / "upload.txt"
    source.write_text("fuzz")
    local = data.draw(st.one_of(st.just(str(source)), st.just(str(workdir)), anything), label="local_path")
    where = data.draw(sandbox_ids(sandbox_id), label="sandbox_id")
    target = data.draw(st.one_of(st.none(), sandbox_paths), label="sandbox_path")
    check(toolkit.upload_file(local, sandbox_id=where, sandbox_path=target))


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_download_file_from_sandbox(
    toolkit: E2BToolkit, sandbox_id: str, workdir: Path, data: st.DataObject
) -> None:
    source = data.draw(sandbox_paths, label="sandbox_path")
    where = data.draw(sandbox_ids(sandbox_id), label="sandbox_id")
    local = data.draw(local_paths(workdir), label="local_path")
    check(toolkit.download_file_from_sandbox(source, sandbox_id=where, local_path=local))


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_download_png_and_chart(
    toolkit: E2BToolkit, sandbox_id: str, workdir: Path, data: st.DataObject
) -> None:
    if data.draw(st.booleans(), label="make a chart first"):
        check(
            toolkit.run_python_code(
                "import matplotlib.pyplot as plt; plt.plot([1, 2], [3, 4]); plt.show()", sandbox_id=sandbox_id
            )
        )
    agent = data.draw(st.one_of(st.none(), anything), label="agent")
    index = data.draw(indexes, label="result_index")
    where = data.draw(sandbox_ids(sandbox_id), label="sandbox_id")
    output = data.draw(local_paths(workdir), label="output_path")
    check(toolkit.download_png_result(agent, result_index=index, sandbox_id=where, output_path=output))
    artifact = data.draw(st.one_of(st.booleans(), anything), label="add_as_artifact")
    check(
        toolkit.download_chart_data(
            agent, result_index=index, sandbox_id=where, output_path=output, add_as_artifact=artifact
        )
    )
