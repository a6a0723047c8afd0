"""The file tools: upload, download, and the images and charts of the last execution."""

from __future__ import annotations

from typing import Any

from ..types import ChartResult, ErrorResult, ExecutionResult, FileResult, PngResult
from . import files
from .calls import Target, tool
from .core import ToolkitCore
from .inputs import check_flag


class FileTools(ToolkitCore):
    @tool
    def upload_file(
        self, local_path: str, sandbox_id: str | None = None, sandbox_path: str | None = None
    ) -> FileResult | ErrorResult:
        """Upload a local file to the sandbox (default destination: its name, in /home/user)."""
        target = self._target(sandbox_id)
        return target.noted(files.upload(self.dispatcher, target.sandbox_id, local_path, sandbox_path))

    @tool
    def download_file_from_sandbox(
        self, sandbox_path: str, sandbox_id: str | None = None, local_path: str | None = None
    ) -> FileResult | ErrorResult:
        """Download a file from the sandbox (default destination: its name, in the current folder)."""
        target = self._target(sandbox_id)
        return target.noted(files.download(self.dispatcher, target.sandbox_id, sandbox_path, local_path))

    def _last_results_of(self, sandbox_id: str | None) -> tuple[Target, list[ExecutionResult]]:
        """The sandbox, and the results of the last run_python_code in it from this toolkit."""
        target = self._target(sandbox_id)
        return target, self._last_results.get(target.sandbox_id, [])

    @tool
    def download_png_result(
        self,
        agent: Any = None,
        result_index: int = 0,
        sandbox_id: str | None = None,
        output_path: str | None = None,
    ) -> PngResult:
        """Save the PNG of the last run_python_code in a sandbox (result_index-th image) to a file.

        Returns its path, image_id and file_url; an agent passed in (agno's Agent or Team) gets
        the image."""
        target, results = self._last_results_of(sandbox_id)
        return target.noted(files.save_png(results, result_index, target.sandbox_id, output_path, agent))

    @tool
    def download_chart_data(
        self,
        agent: Any = None,
        result_index: int = 0,
        sandbox_id: str | None = None,
        output_path: str | None = None,
        add_as_artifact: bool = True,
    ) -> ChartResult:
        """Save the chart data (E2B's chart dict) of the last run_python_code as JSON.

        With add_as_artifact, its PNG too, beside it (chart_image), given to the agent."""
        check_flag(add_as_artifact, "add_as_artifact")
        target, results = self._last_results_of(sandbox_id)
        saved = files.save_chart(
            results, result_index, target.sandbox_id, output_path, agent, with_image=add_as_artifact
        )
        return target.noted(saved)
