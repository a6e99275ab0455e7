"""Every step kind has a renderer (the dry run prints it) and a handler (the run runs it); every
hook kind is in the registry with what the plan and the runner need."""

from __future__ import annotations

import dataclasses

import pytest

from kompose.hooks import kinds
from kompose.plan import render, steps
from kompose.plan.steps import HookStep
from kompose.run.handlers import HANDLERS


def _fallback():
    return render.describe.dispatch(object)


@pytest.mark.parametrize("kind", steps.CORE_STEPS, ids=lambda k: k.__name__)
def test_every_core_step_kind_has_a_renderer_and_a_handler(kind):
    assert dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen
    assert render.describe.dispatch(kind) is not _fallback(), f"{kind.__name__} has no renderer in plan/render.py"
    assert kind in HANDLERS, f"{kind.__name__} has no handler in run/handlers.py"


def test_every_step_module_registers_renderers_and_handlers():
    import importlib

    from kompose.run.handlers import STEP_MODULES

    for name in STEP_MODULES:
        module = importlib.import_module(name)
        assert module.STEPS, name
        for kind, handler in module.STEPS.items():
            assert dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen, kind
            assert render.describe.dispatch(kind) is not _fallback(), f"{kind.__name__} ({name}) has no renderer"
            assert HANDLERS[kind] is handler


def test_every_handler_is_for_a_step_kind_with_a_renderer():
    for kind in HANDLERS.load_all():
        assert render.describe.dispatch(kind) is not _fallback(), kind


@pytest.mark.parametrize("name", list(kinds.KINDS))
def test_every_hook_kind_module_has_its_parts(name):
    module = kinds.KINDS[name]
    assert module.KIND == name
    assert issubclass(module.STEP, HookStep) and module.STEP.kind == name
    assert callable(module.run)
    # the plan renders it through the HookStep renderer, the runner dispatches on its class
    assert render.describe.dispatch(module.STEP) is render.describe.dispatch(HookStep)
    if name in kinds.DECLARED:
        assert callable(module.parse) and callable(module.step)


def test_the_hook_kinds_run_in_the_documented_order():
    assert kinds.ORDER == ("tcp", "bash", "sql", "exec", "http")


def test_an_unknown_step_kind_is_refused_by_the_renderer():
    @dataclasses.dataclass(frozen=True)
    class Stranger:
        x: int = 0

    with pytest.raises(TypeError):
        render.describe(Stranger())
