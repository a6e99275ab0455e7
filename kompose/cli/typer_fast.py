"""Plain coercion for kompose's CLI parameters, so a run never imports pydantic.

typer >= 0.29 converts every non-bool parameter through a pydantic TypeAdapter: importing
pydantic and building the adapters costs ~0.15 s of CPU per run, more than everything else
kompose does before it talks to Docker. kompose's parameters are plain (str, bool, int,
float, Path, lists of str), so each gets a converter of a few lines instead.

This leans on two typer internals (``_TyperParameter._runtime_param`` and
``typer._coercion.RuntimeParam``). When a typer release changes them, ``install`` does
nothing and typer's own coercion runs: slower, same results. tests/unit/test_startup.py
notices the slowdown.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

Converter = Callable[[Any], Any]


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _number(kind: type, info) -> Converter | None:
    if getattr(info, "clamp", False):
        return None
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    name = "integer" if kind is int else "number"

    def convert(value: Any) -> Any:
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a valid {name}.") from None
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = " and ".join(
                part for part in (f">={low}" if low is not None else "", f"<={high}" if high is not None else "") if part
            )
            raise ValueError(f"{number} is not in the range x{bounds}.")
        return number

    return convert


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a valid boolean.")


def converter(annotation: Any, info) -> Converter | None:
    """A plain converter for ``annotation``, or None when typer's own coercion should run."""
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return None
    annotation = _unwrap_optional(annotation)
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation) or (str,)
        convert_item = converter(item, info)
        if convert_item is None:
            return None
        return lambda values: [convert_item(v) for v in (values if isinstance(values, (list, tuple)) else [values])]
    if annotation is bool:
        return _boolean
    if annotation is str:
        return lambda value: value if isinstance(value, str) else str(value)
    if annotation in (int, float):
        return _number(annotation, info)
    if annotation is Path:
        # existence/readability checks are typer's job: kompose's Path options have none
        if any(getattr(info, flag, None) for flag in ("exists", "resolve_path", "allow_dash")):
            return None
        return lambda value: value if isinstance(value, Path) else Path(value)
    return None


def install(command) -> int:
    """Give the parameters of a click command made by typer a plain coercion. Returns how many got one."""
    try:
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:
        return 0

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):
        convert: Optional[Converter] = None

        def _coerce_value(self, value, param, ctx):
            try:
                return self.convert(value)
            except ValueError as exc:
                raise BadParameter(str(exc), ctx=ctx, param=param) from None

    def give(param) -> bool:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or not hasattr(param, "_runtime_param") or param._runtime_param is not None:
            return False
        convert = converter(descriptor.annotation, descriptor.parameter_info)
        if convert is None:
            return False
        param._runtime_param = PlainRuntimeParam(descriptor.parameter_info, descriptor.annotation, convert)
        return True

    count = sum(give(param) for param in getattr(command, "params", []))
    # click makes the --help option when parsing starts: give it one then
    get_params = command.get_params

    def get_params_with_plain_coercion(ctx):
        params = get_params(ctx)
        for param in params:
            give(param)
        return params

    command.get_params = get_params_with_plain_coercion
    return count


def plain_help(command) -> None:
    """Help without typer's type labels: an argument shows its name (``PATTERN``), not ``PATTERN <str>``;
    an option without a metavar shows its name in capitals (``--network NETWORK``), not ``<str>``."""
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "argument":
            param.display_type_rich = lambda ctx=None: None
        elif getattr(param, "metavar", "") is None and not getattr(param, "is_flag", True):
            param.metavar = (param.name or "value").upper()
