"""Every command of the command line, in process (click's runner), against a real worker and sandboxd."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from e2bq import E2BToolkit
from tests.integration.cli.conftest import e2bq
from tests.procs import wait_for

# A 1x1 PNG, for a cell that displays an image.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def default_of(toolkit: E2BToolkit) -> str:
    listed = toolkit.list_managed_sandboxes()
    assert listed["status"] == "success" and listed["default_sandbox_id"], listed
    return listed["default_sandbox_id"]


def test_sandboxes_lists_the_namespace_s_sandboxes_with_the_default_marked(toolkit: E2BToolkit) -> None:
    default = default_of(toolkit)
    table = e2bq("sandboxes")
    assert table.exit_code == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if default in line)
    assert row.lstrip().startswith("*") and "running" in row and "in " in row
    as_json = e2bq("sandboxes", "--json")
    assert as_json.exit_code == 0
    listed = json.loads(as_json.stdout)
    assert listed["status"] == "success" and listed["default_sandbox_id"] == default
    assert [entry["sandbox_id"] for entry in listed["sandboxes"]] == [default]


def test_run_prints_a_cell_s_output_and_results(toolkit: E2BToolkit) -> None:
    code = "import sys\nprint('hello')\nprint('careful', file=sys.stderr)\n6 * 7"
    cell = e2bq("run", code)
    assert cell.exit_code == 0, cell.stderr
    assert cell.stdout == "hello\n42\n"
    assert "careful" in cell.stderr


def test_run_keeps_state_and_reads_code_from_a_file_or_stdin(toolkit: E2BToolkit, tmp_path: Path) -> None:
    script = tmp_path / "cell.py"
    script.write_text("answer = 41\n")
    assert e2bq("run", "-f", str(script)).exit_code == 0
    piped = e2bq("run", "-f", "-", input="answer + 1\n")
    assert (piped.exit_code, piped.stdout) == (0, "42\n")


def test_run_says_an_image_was_returned(toolkit: E2BToolkit) -> None:
    code = (
        "import base64\nfrom IPython.display import Image, display\n"
        f"display(Image(base64.b64decode('{PNG}')))"
    )
    cell = e2bq("run", code)
    assert cell.exit_code == 0, cell.stderr
    assert "[image/png returned" in cell.stdout


def test_code_that_raises_prints_its_traceback_on_stderr_and_exits_1(toolkit: E2BToolkit) -> None:
    cell = e2bq("run", "print('before')\n1 / 0")
    assert cell.exit_code == 1
    assert cell.stdout == "before\n"
    assert "ZeroDivisionError" in cell.stderr


def test_run_json_is_the_toolkit_s_result_and_nothing_else(toolkit: E2BToolkit) -> None:
    cell = e2bq("run", "--json", "--timeout", "30", "print('x'); 1 + 1")
    assert cell.exit_code == 0
    result = json.loads(cell.stdout)
    assert result["status"] == "success" and result["logs"]["stdout"] == ["x\n"]
    assert result["results"][0]["text"] == "2"
    raised = e2bq("run", "--json", "1 / 0")
    assert raised.exit_code == 1 and json.loads(raised.stdout)["error"]["name"] == "ZeroDivisionError"


def test_exec_prints_a_command_s_output_and_exits_with_its_code(toolkit: E2BToolkit) -> None:
    done = e2bq("exec", "--", "sh", "-c", "echo 'to out'; echo 'to err' >&2; exit 3")
    assert done.exit_code == 3
    assert done.stdout == "to out\n"
    assert "to err" in done.stderr
    quoted = e2bq("exec", "--", "printf", "%s|", "two words", "it's")
    assert (quoted.exit_code, quoted.stdout) == (0, "two words|it's|")
    as_json = e2bq("exec", "--json", "--", "echo", "hi")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["stdout"] == "hi\n"


def test_a_background_command_is_listed_and_its_status_shown(toolkit: E2BToolkit) -> None:
    started = e2bq("exec", "--background", "--", "sh", "-c", "echo done-it; exit 4")
    assert started.exit_code == 0, started.stderr
    job_id = started.stdout.strip()
    final = toolkit.wait_job(job_id, timeout=60)
    assert final["status"] == "error"

    status = e2bq("job", job_id, "--json")
    assert status.exit_code == 0
    assert json.loads(status.stdout)["result"]["exit_code"] == 4
    shown = e2bq("job", job_id)
    assert shown.exit_code == 0
    assert job_id in shown.stdout and "exit code" in shown.stdout and "done-it" in shown.stdout

    listed = json.loads(e2bq("jobs", "--json").stdout)
    assert listed["status"] == "success" and listed["jobs"][0]["job_id"] == job_id
    errors = json.loads(e2bq("jobs", "--state", "error", "--limit", "5", "--json").stdout)["jobs"]
    assert job_id in [job["job_id"] for job in errors]
    assert json.loads(e2bq("jobs", "--state", "cancelled", "--json").stdout)["jobs"] == []
    table = e2bq("jobs")
    assert table.exit_code == 0 and job_id in table.stdout and "error" in table.stdout


def test_jobs_newest_first_with_a_limit(toolkit: E2BToolkit) -> None:
    ids = [toolkit.run_command_background(f"echo {n}")["job_id"] for n in range(3)]
    for job_id in ids:
        toolkit.wait_job(job_id, timeout=60)
    listed = json.loads(e2bq("jobs", "--limit", "2", "--json").stdout)["jobs"]
    assert [job["job_id"] for job in listed] == ids[:0:-1]


def test_follow_in_process_ends_with_the_job_s_exit_code(toolkit: E2BToolkit) -> None:
    job_id = toolkit.run_command_background("echo one; echo two >&2; exit 5")["job_id"]
    followed = e2bq("job", job_id, "--follow")
    assert followed.exit_code == 5
    assert followed.stdout == "one\n"
    assert "two\n" in followed.stderr
    code_job = toolkit.run_python_code_background("print('from code')")["job_id"]
    followed = e2bq("job", code_job, "--follow")
    assert (followed.exit_code, followed.stdout) == (0, "from code\n")
    raised = toolkit.run_python_code_background("raise ValueError('no')")["job_id"]
    assert e2bq("job", raised, "--follow").exit_code == 1
    as_json = e2bq("job", job_id, "--follow", "--json")
    assert as_json.exit_code == 5 and json.loads(as_json.stdout)["status"] == "error"


def test_kill_cancels_a_running_job(toolkit: E2BToolkit) -> None:
    job_id = toolkit.run_command_background("sleep 120")["job_id"]
    wait_for(lambda: toolkit.get_job_status(job_id).get("state") == "started", 60, "the job to start")
    killed = e2bq("kill", job_id)
    assert killed.exit_code == 0, killed.stderr
    assert toolkit.get_job_status(job_id)["status"] == "cancelled"
    assert e2bq("job", job_id, "--follow").exit_code == 130
    again = e2bq("kill", job_id, "--json")
    assert again.exit_code != 0 and json.loads(again.stdout)["status"] != "success"


def test_an_unknown_job_is_a_message_not_a_traceback(toolkit: E2BToolkit) -> None:
    missing = e2bq("job", "no-such-job")
    assert missing.exit_code == 2 and missing.stdout == ""
    assert "no job" in missing.stderr and "Traceback" not in missing.stderr
    assert e2bq("job", "no-such-job", "--follow").exit_code == 2
    assert json.loads(e2bq("job", "no-such-job", "--json").stdout)["status"] == "not_found"
    killed = e2bq("kill", "no-such-job")
    assert killed.exit_code in (1, 2) and "no job" in killed.stderr


def test_upload_and_download_round_trip_a_binary_file(toolkit: E2BToolkit, tmp_path: Path) -> None:
    original = tmp_path / "blob.bin"
    original.write_bytes(os.urandom(300_000) + bytes(range(256)))
    remote = f"/home/user/blob-{uuid.uuid4().hex[:6]}.bin"
    sent = e2bq("upload", str(original), "--to", remote)
    assert sent.exit_code == 0, sent.stderr
    assert "uploaded" in sent.stderr and "/s)" in sent.stderr and sent.stdout == ""
    back = tmp_path / "back.bin"
    got = e2bq("download", remote, "--to", str(back), "--json")
    assert got.exit_code == 0, got.stderr
    result = json.loads(got.stdout)
    assert result["status"] == "success" and result["size"] == original.stat().st_size
    assert back.read_bytes() == original.read_bytes()


def test_user_mistakes_are_messages_with_exit_status_1(toolkit: E2BToolkit, tmp_path: Path) -> None:
    missing = e2bq("upload", str(tmp_path / "nothing-here"))
    assert missing.exit_code == 1 and "Traceback" not in missing.stderr and "nothing-here" in missing.stderr
    absent = e2bq("download", "/home/user/not-there.txt", "--to", str(tmp_path / "x"))
    assert absent.exit_code == 1 and absent.stderr.strip()
    wrong = e2bq("exec", "--sandbox", "no-such-sandbox", "--", "true")
    assert wrong.exit_code == 1 and "Traceback" not in wrong.stderr
    assert e2bq("run").exit_code == 2  # a usage error, as click reports it


def test_without_a_default_sandbox_one_is_created_and_said(bare_toolkit: E2BToolkit) -> None:
    try:
        assert bare_toolkit.list_managed_sandboxes()["default_sandbox_id"] is None
        ran = e2bq("exec", "--", "echo", "made")
        assert ran.exit_code == 0, ran.stderr
        assert ran.stdout == "made\n" and "creating one as its default" in ran.stderr
        assert default_of(bare_toolkit)
        again = e2bq("exec", "--", "true")
        assert "creating" not in again.stderr
    finally:
        bare_toolkit.shutdown_all_sandboxes()


def test_an_empty_namespace_says_it_has_no_sandboxes(bare_toolkit: E2BToolkit) -> None:
    listed = e2bq("sandboxes")
    assert listed.exit_code == 0 and "no sandboxes" in listed.stdout
    assert json.loads(e2bq("sandboxes", "--json").stdout)["sandboxes"] == []
