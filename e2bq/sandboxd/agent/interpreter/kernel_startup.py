"""Code that every kernel runs when it starts, to behave like a kernel in E2B's template.

Kernels run this file's source as the module ``_e2bq_kernel``: the agent sends it, wrapped by
``bootstrap_code``, and itself uses only the ``*_code`` helpers at the bottom. Once installed:

- an ``e2b/chart`` display formatter turns matplotlib Figures into E2B's chart dict (with the
  ``e2b_charts`` package), an ``e2b/data`` formatter turns pandas DataFrames into ``{column:
  [values]}``, and the ``application/json`` formatter also renders plain lists and dicts;
- tracebacks carry no colour codes;
- a PIL image saved to a file path, or shown, is also displayed;
- ``set_env``/``restore_env`` give one execution its own environment variables;
- output written straight to file descriptors 1 and 2 (``os.write``, child processes) is all
  delivered before the execution ends (see ``_FdDrain``).

The formatters know pandas and matplotlib types by name, so those libraries are imported only by
code that uses them: a kernel starts in about half a second and stays small.
"""

from __future__ import annotations

import datetime
import importlib
import json
import math
import os
import stat
import sys
import threading
from typing import Any

MODULE_NAME = "_e2bq_kernel"
DRAIN_MARK = "\x00e2bq-drained\x00"
DRAIN_TIMEOUT = 1.0  # seconds an execution's end waits for its low-level output

_saved_env: list[dict[str, str | None]] = []


def set_env(values: dict[str, str]) -> None:
    """Set environment variables for one execution; ``restore_env`` undoes it."""
    _saved_env.append({key: os.environ.get(key) for key in values})
    os.environ.update(values)


def restore_env() -> None:
    """Give back the values the last ``set_env`` replaced (unsetting those that were unset)."""
    if not _saved_env:
        return
    for key, value in _saved_env.pop().items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _untyped(module: str) -> Any:
    """Import ``module`` as Any: this file runs under the sandbox's Python, whose IPython, PIL and
    traitlets need not be the versions a type checker sees on the host."""
    return importlib.import_module(module)


def _jsonable(value: Any) -> Any:
    """``value`` as JSON-native data: NaN and infinities become None, dates ISO strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()  # pandas Timestamps are datetimes
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _dataframe_data(frame: Any) -> dict[str, Any]:
    pandas = _untyped("pandas")
    columns: dict[str, Any] = frame.to_dict(orient="list")
    return {
        str(name): [
            None if pandas.api.types.is_scalar(value) and pandas.isna(value) else _jsonable(value)
            for value in values
        ]
        for name, values in columns.items()
    }


def _figure_chart(figure: Any) -> dict[str, Any] | None:
    try:
        chart = _untyped("e2b_charts").chart_figure_to_dict(figure)
    except Exception:  # a figure the extractor cannot read still shows as an image
        return None
    return _jsonable(chart) if chart else None


def _numpy_to_list(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist) and type(value).__module__ == "numpy":
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _plain_json(obj: Any) -> Any:
    """A list or dict of JSON data (numpy values included) as JSON, as E2B's template shows it;
    None for anything else."""
    if not isinstance(obj, list | dict):
        return None
    try:
        return json.loads(json.dumps(obj, allow_nan=False, default=_numpy_to_list))
    except (TypeError, ValueError):
        return None


def _install_formatters(shell: Any) -> None:
    formatters = _untyped("IPython.core.formatters")
    traitlets = _untyped("traitlets")

    def chart_call(self: Any, obj: Any) -> Any:
        # Not a type printer: matplotlib's inline backend removes every formatter's printer for
        # Figure when it activates. A Figure can exist only once matplotlib.figure is imported.
        figure = sys.modules.get("matplotlib.figure")
        if figure is not None and isinstance(obj, figure.Figure):
            return _figure_chart(obj)
        return formatters.BaseFormatter.__call__(self, obj)

    def json_call(self: Any, obj: Any) -> Any:
        data = _plain_json(obj)
        if data is not None:
            return data, {"expanded": True}
        return formatters.JSONFormatter.__call__(self, obj)

    def e2b_formatter(mime: str, **namespace: Any) -> Any:
        return type(
            "E2BFormatter",
            (formatters.BaseFormatter,),
            {
                "format_type": traitlets.Unicode(mime),
                "print_method": traitlets.ObjectName("_repr_" + mime.replace("/", "_") + "_"),
                "_return_type": (dict, str),
                **namespace,
            },
        )(parent=shell.display_formatter)

    data = e2b_formatter("e2b/data")
    for module in ("pandas", "pandas.core.frame"):  # pandas >= 3 names the public module
        data.for_type_by_name(module, "DataFrame", _dataframe_data)
    json_class = type("E2BJSONFormatter", (formatters.JSONFormatter,), {"__call__": json_call})
    shell.display_formatter.formatters.update(
        {
            "e2b/data": data,
            "e2b/chart": e2b_formatter("e2b/chart", __call__=chart_call),
            "application/json": json_class(parent=shell.display_formatter),
        }
    )


def _display_saved_images() -> None:
    """Show a PIL image when it is saved to a path or shown, as E2B's template does."""
    try:
        display = _untyped("IPython.display").display
        image_module = _untyped("PIL.Image")
        image_show = _untyped("PIL.ImageShow")
    except ImportError:
        return
    original_save = image_module.Image.save

    def save(image: Any, fp: Any, format: Any = None, **params: Any) -> Any:
        if isinstance(fp, str | os.PathLike):
            display(image)
        return original_save(image, fp, format, **params)

    def show(viewer: Any, image: Any, **options: Any) -> int:
        display(image)
        return 1  # shown; there is no screen to open a viewer on

    image_module.Image.save = save
    image_show.UnixViewer.show = show


class _FdDrain:
    """Makes an ipykernel output stream deliver the low-level output of an execution before it ends.

    ipykernel points file descriptors 1 and 2 at pipes that a thread of each stream reads and
    writes to the stream. The kernel flushes its streams when a cell ends; bytes written just
    before that may still be in the pipe, or in the thread's hands, and would then reach the client
    after the execution ended — that is, be lost to it. After each cell the drain writes a mark
    into the pipe and waits until the thread hands it to the stream: everything written before it
    has been handed over too. The mark itself is cut out of the stream.

    The drain must see the pipe thread's text before anything that wraps the stream's ``write``
    (IPython replaces it on the instance for each cell, to keep the cell's output in its history,
    and so may the user's code). So the stream's class becomes a subclass whose ``write`` is a
    property: to the pipe thread it is the drain's filter, which passes the text on to the
    ``write`` everyone else sees: the last one assigned to the stream, or the class's own.
    """

    def __init__(self, stream: Any) -> None:
        base = type(stream)
        self._lock = threading.Lock()
        self._waiting = False
        self._carry = ""  # the start of a mark split between two of the thread's reads
        self._seen = threading.Event()
        self._stream = stream
        self._original = base.write.__get__(stream)
        self._assigned: Any = None  # a ``write`` set on the stream since (IPython's, or the user's)
        drain = self

        def get_write(stream: Any) -> Any:
            if threading.current_thread() is getattr(stream, "watch_fd_thread", None):
                return drain._filter
            return drain._outer()

        def set_write(stream: Any, value: Any) -> None:
            drain._assigned = None if value == drain._original else value  # put back: unassigned

        namespace = {"write": property(get_write, set_write), "__module__": base.__module__}
        stream.__dict__.pop("write", None)
        stream.__class__ = type(base.__name__, (base,), namespace)

    def _outer(self) -> Any:
        """The ``write`` that everyone but the pipe thread sees."""
        return self._assigned or self._original

    def _filter(self, string: str) -> int:
        """The pipe thread's ``write``: cuts out the mark, and says when it has passed."""
        with self._lock:
            if not self._waiting:
                return int(self._outer()(string) or 0)
            text = self._carry + string
            self._carry = ""
            before, found, after = text.partition(DRAIN_MARK)
            if found:
                self._waiting = False
                text = before + after
            else:
                self._carry = _mark_prefix_at_end(text)
                text = text[: len(text) - len(self._carry)]
            if text:
                self._outer()(text)
            if found:
                self._seen.set()
        return len(string)

    def drain(self) -> None:
        fd = self._pipe_fd()
        if fd is None:
            return
        with self._lock:
            self._seen.clear()
            self._waiting = True
        try:
            os.write(fd, DRAIN_MARK.encode())
        except OSError:
            with self._lock:
                self._waiting = False
            return
        if not self._seen.wait(DRAIN_TIMEOUT):
            with self._lock:
                self._waiting = False
                carry, self._carry = self._carry, ""
            if carry:
                self._outer()(carry)

    def _pipe_fd(self) -> int | None:
        """The descriptor the stream watches, if it still leads into the stream's pipe (user code
        may have closed it or pointed it elsewhere: then there is nothing to drain)."""
        stream = self._stream
        fd = getattr(stream, "_original_stdstream_fd", None)
        pipe = getattr(stream, "_fid", None)
        if not getattr(stream, "_should_watch", False) or fd is None or pipe is None:
            return None
        try:
            written, read = os.fstat(fd), os.fstat(pipe)
        except OSError:
            return None
        if not stat.S_ISFIFO(written.st_mode) or written.st_ino != read.st_ino:
            return None
        return int(fd)


def _mark_prefix_at_end(text: str) -> str:
    """The longest end of ``text`` that is a proper start of the drain mark."""
    for size in range(min(len(text), len(DRAIN_MARK) - 1), 0, -1):
        if DRAIN_MARK.startswith(text[-size:]):
            return text[-size:]
    return ""


def _install_fd_drains(shell: Any) -> None:
    try:
        out_stream = _untyped("ipykernel.iostream").OutStream
    except ImportError:
        return
    streams = (sys.stdout, sys.stderr)
    drains = [_FdDrain(stream) for stream in streams if isinstance(stream, out_stream)]

    def drain_all() -> None:
        for drain in drains:
            drain.drain()

    if drains:
        shell.events.register("post_execute", drain_all)


def install() -> None:
    """Set up the running kernel (called once, by the agent, right after it starts)."""
    shell = _untyped("IPython").get_ipython()
    shell.colors = "nocolor"
    _install_formatters(shell)
    _display_saved_images()
    _install_fd_drains(shell)


def bootstrap_code(source: str) -> str:
    """Code that runs ``source`` (this file) as the module ``_e2bq_kernel`` and installs it.

    It leaves nothing in the user's namespace.
    """
    return (
        "def __e2bq_bootstrap(source):\n"
        "    import sys, types\n"
        f"    module = types.ModuleType({MODULE_NAME!r})\n"
        f"    exec(compile(source, {MODULE_NAME + '.py'!r}, 'exec'), module.__dict__)\n"
        f"    sys.modules[{MODULE_NAME!r}] = module\n"
        "    module.install()\n"
        f"__e2bq_bootstrap({source!r})\n"
        "del __e2bq_bootstrap\n"
    )


def set_env_code(values: dict[str, str]) -> str:
    return f"__import__({MODULE_NAME!r}).set_env({values!r})"


def restore_env_code() -> str:
    return f"__import__({MODULE_NAME!r}).restore_env()"
