"""Files in and out of a sandbox, streamed through Redis; images and chart data from results."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import redis

from e2bq import E2BToolkit

MB = 1024 * 1024
PLOT = (
    "import matplotlib.pyplot as plt\n"
    "plt.plot([1, 2, 3], [4, 5, 6], label='rising')\n"
    "plt.title('a line')\n"
    "plt.show()\n"
)


def random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; return their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // MB):
            chunk = os.urandom(MB)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


def transfer_keys(redis_url: str) -> list[Any]:
    return list(redis.Redis.from_url(redis_url).scan_iter("e2bq:transfer:*"))


class Agent:
    """Anything with ``add_image``, as agent frameworks' agents have."""

    def __init__(self) -> None:
        self.images: list[Any] = []

    def add_image(self, image: Any) -> None:
        self.images.append(image)


def test_a_100_mb_binary_file_makes_the_round_trip_byte_exact(
    toolkit: E2BToolkit, tmp_path: Path, redis_url: str
) -> None:
    source = tmp_path / "random.bin"
    digest = random_file(source, 100 * MB)

    uploaded = toolkit.upload_file(str(source), sandbox_path="/home/user/data/random.bin")

    assert uploaded["status"] == "success", uploaded
    assert uploaded["size"] == 100 * MB
    assert uploaded["sandbox_path"] == "/home/user/data/random.bin"
    inside = toolkit.run_command("sha256sum /home/user/data/random.bin")
    assert inside["stdout"].split()[0] == digest

    target = tmp_path / "back.bin"
    downloaded = toolkit.download_file_from_sandbox("/home/user/data/random.bin", local_path=str(target))

    assert downloaded["status"] == "success", downloaded
    assert downloaded["size"] == 100 * MB
    assert downloaded["local_path"] == str(target)
    assert sha256(target) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.bin", "random.bin"]
    assert transfer_keys(redis_url) == []


def test_the_default_destinations_are_the_file_names(
    toolkit: E2BToolkit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("héllo\n")

    assert toolkit.upload_file(str(source))["status"] == "success"
    assert toolkit.run_command("cat /home/user/notes.txt")["stdout"] == "héllo\n"

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    downloaded = toolkit.download_file_from_sandbox("notes.txt")
    assert downloaded["status"] == "success", downloaded
    assert (here / "notes.txt").read_text() == "héllo\n"


def test_a_missing_local_file_is_an_error_dict(toolkit: E2BToolkit, tmp_path: Path) -> None:
    result = toolkit.upload_file(str(tmp_path / "nope.bin"))

    assert result["status"] == "error"
    assert "nope.bin" in result["message"]


def test_a_missing_remote_file_is_an_error_dict_and_leaves_nothing(
    toolkit: E2BToolkit, tmp_path: Path, redis_url: str
) -> None:
    result = toolkit.download_file_from_sandbox("/home/user/nope.bin", local_path=str(tmp_path / "x.bin"))

    assert result["status"] == "error"
    assert "nope.bin" in result["message"]
    json.dumps(result)
    assert list(tmp_path.iterdir()) == []
    assert transfer_keys(redis_url) == []


def test_a_download_into_a_missing_local_folder_is_an_error_dict(toolkit: E2BToolkit, tmp_path: Path) -> None:
    assert toolkit.run_command("echo x > here.txt")["status"] == "success"

    result = toolkit.download_file_from_sandbox("here.txt", local_path=str(tmp_path / "no" / "here.txt"))

    assert result["status"] == "error"
    assert "does not exist" in result["message"]
    assert list(tmp_path.iterdir()) == []


def test_download_png_result_writes_the_plot(toolkit: E2BToolkit, tmp_path: Path) -> None:
    assert toolkit.run_python_code(PLOT)["status"] == "success"
    target = tmp_path / "plot.png"

    saved = toolkit.download_png_result(None, output_path=str(target))

    assert saved["status"] == "success", saved
    assert saved["path"] == str(target)
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert saved["size"] == len(data)


def test_download_png_result_gives_the_image_to_an_agent(toolkit: E2BToolkit, tmp_path: Path) -> None:
    assert toolkit.run_python_code(PLOT)["status"] == "success"
    agent = Agent()

    saved = toolkit.download_png_result(agent, output_path=str(tmp_path / "plot.png"))

    assert saved["status"] == "success", saved
    assert saved["result"] is True
    [image] = agent.images
    content = image["content"] if isinstance(image, dict) else image.content
    assert content.startswith(b"\x89PNG")


def test_download_png_result_without_a_plot_is_an_error_dict(toolkit: E2BToolkit, tmp_path: Path) -> None:
    assert toolkit.run_python_code("1 + 1")["status"] == "success"

    result = toolkit.download_png_result(None, output_path=str(tmp_path / "plot.png"))

    assert result["status"] == "error"
    assert "png" in result["message"]
    assert not (tmp_path / "plot.png").exists()


def test_download_chart_data_writes_the_line_points(toolkit: E2BToolkit, tmp_path: Path) -> None:
    assert toolkit.run_python_code(PLOT)["status"] == "success"
    target = tmp_path / "chart.json"
    agent = Agent()

    saved = toolkit.download_chart_data(agent, output_path=str(target))

    assert saved["status"] == "success", saved
    chart = json.loads(target.read_text())
    assert chart == saved["result"]
    assert chart["type"] == "line"
    assert chart["title"] == "a line"
    [line] = chart["elements"]
    assert line["label"] == "rising"
    assert [(x, y) for x, y in line["points"]] == [(1, 4), (2, 5), (3, 6)]
    assert len(agent.images) == 1  # added as an artifact


def test_download_chart_data_with_no_agent(toolkit: E2BToolkit, tmp_path: Path) -> None:
    assert toolkit.run_python_code(PLOT)["status"] == "success"
    target = tmp_path / "chart.json"

    saved = toolkit.download_chart_data(None, output_path=str(target), add_as_artifact=False)

    assert saved["status"] == "success", saved
    assert json.loads(target.read_text())["type"] == "line"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("size", [MB, 10 * MB])
def test_an_upload_the_sandbox_refuses_is_an_error_dict(
    toolkit: E2BToolkit, tmp_path: Path, redis_url: str, size: int
) -> None:
    source = tmp_path / "data.bin"
    random_file(source, size)

    result = toolkit.upload_file(str(source), sandbox_path="/usr/data.bin")  # a read-only folder

    assert result["status"] == "error", result
    assert "/usr/data.bin" in result["message"]
    assert transfer_keys(redis_url) == []
    assert toolkit.run_command("echo still here")["stdout"] == "still here\n"
