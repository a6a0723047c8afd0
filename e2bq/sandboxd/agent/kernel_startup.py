"""Code that every kernel runs when it starts, to behave like a kernel in E2B's template.

Kernels run this file's source as the module ``_e2bq_kernel``: the agent sends it, wrapped by
``bootstrap_code``, and itself uses only the ``*_code`` helpers at the bottom. Once installed:

- an ``e2b/chart`` display formatter turns matplotlib Figures into E2B's chart dict (with the
  ``e2b_charts`` package), an ``e2b/data`` formatter turns pandas DataFrames into ``{column:
  [values]}``, and the ``application/json`` formatter also renders plain lists and dicts;
- tracebacks carry no colour codes;
- a PIL image saved to a file path, or shown, is also displayed;
- ``set_env``/``restore_env`` give one execution its own environment variables.

The formatters know pandas and matplotlib types by name, so those libraries are imported only by
code that uses them: a kernel starts in about half a second and stays small.
"""

from __future__ import annotations

import datetime
import importlib
import json
import math
import os
import sys
from typing import Any

MODULE_NAME = "_e2bq_kernel"

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


def install() -> None:
    """Set up the running kernel (called once, by the agent, right after it starts)."""
    shell = _untyped("IPython").get_ipython()
    shell.colors = "nocolor"
    _install_formatters(shell)
    _display_saved_images()


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
