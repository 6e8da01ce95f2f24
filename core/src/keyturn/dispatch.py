"""Calling a hook without pluggy's per-call overhead, with the outcome pluggy would give.

A pluggy hook call checks its arguments, fills in defaults and hands the implementations to
pluggy's call loop: about 2 µs, most of it spent before the first implementation runs.
keyturn calls ``keyturn_jwt`` and ``keyturn_session`` on every request, usually when only
its own defaults implement them, so that overhead was most of the cost of a request that
needs no refresh.

:func:`plan` looks at a hook's implementations once and returns the cheapest callable that
gives the same result, or raises the same exception:

* a single plain implementation taking every argument: that function, called directly;
* a first-result hook whose implementations are plain functions and new-style wrappers
  (``@hookimpl(wrapper=True)``): a loop that follows pluggy's rules (last registered first,
  ``tryfirst``/``trylast`` as pluggy orders them, the first non-``None`` result wins, each
  wrapper gets the result or the exception at its ``yield`` and may replace either);
* anything else (old-style ``hookwrapper=True`` implementations, keyword arguments with
  defaults, hooks that are not first-result): pluggy's own ``HookCaller``.

:class:`~keyturn.plugins.KeyturnPluginManager` keeps the plans and throws them all away when
anything changes: a plugin registered, unregistered or blocked, a hook spec added, call
monitoring (``add_hookcall_monitoring``, ``enable_tracing``) installed or removed. While
monitoring is installed every call goes through pluggy, so the monitor sees it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, cast

import pluggy

__all__ = ["HookCall", "plan"]

#: What :func:`plan` returns: call it with the hook's arguments as keywords.
HookCall = Callable[..., Any]

_Arguments = Callable[[dict[str, Any]], tuple[Any, ...]]
_Step = tuple[Callable[..., Any], _Arguments, bool]


def plan(caller: pluggy.HookCaller) -> HookCall:
    """The cheapest callable that calls ``caller``'s implementations as pluggy would.

    Call the result with keyword arguments, every argument of the hook spec given.
    """
    spec = caller.spec
    if spec is None or not spec.opts.get("firstresult") or spec.opts.get("historic"):
        return caller
    impls = caller.get_hookimpls()
    if any(impl.hookwrapper or impl.kwargnames for impl in impls):
        return caller
    steps = [(impl.function, _getter(impl.argnames), impl.wrapper) for impl in reversed(impls)]
    if len(steps) == 1:
        only = impls[0]
        if not only.wrapper and set(only.argnames) == set(spec.argnames):
            return only.function
    return _chain(caller.name, tuple(steps))


def _getter(argnames: Sequence[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Picks an implementation's positional arguments out of the call's keywords."""
    if not argnames:
        return lambda kwargs: ()
    if len(argnames) == 1:
        (name,) = argnames
        return lambda kwargs: (kwargs[name],)
    return cast(Callable[[dict[str, Any]], tuple[Any, ...]], operator.itemgetter(*argnames))


def _chain(name: str, steps: Sequence[_Step]) -> HookCall:
    """pluggy's call loop for a first-result hook of plain functions and new-style wrappers."""
    wrappers = [(function, arguments) for function, arguments, wrapper in steps if wrapper]
    plains = [(function, arguments) for function, arguments, wrapper in steps if not wrapper]
    if len(wrappers) == 1 and steps[0][2]:  # pluggy runs every wrapper before the rest
        call = _one_wrapper(*wrappers[0], tuple(plains))
    else:

        def call(**kwargs: Any) -> Any:
            result: Any = None
            teardowns: list[Any] = []
            try:
                for function, arguments, wrapper in steps:
                    if wrapper:
                        generator = function(*arguments(kwargs))
                        try:
                            next(generator)
                        except StopIteration:
                            _wrapper_failed(generator.gi_code, "did not yield")
                        teardowns.append(generator)
                    else:
                        value = function(*arguments(kwargs))
                        if value is not None:
                            result = value
                            break
            except BaseException as exc:
                return _unwind(teardowns, None, exc)
            return _unwind(teardowns, result, None)

    call.__qualname__ = call.__name__ = name
    return call


def _one_wrapper(
    wrap: Callable[..., Any], wrap_arguments: _Arguments, plains: Sequence[tuple[Any, _Arguments]]
) -> HookCall:
    """The usual shape, an app's wrapper around the implementations, without the loops."""

    def call(**kwargs: Any) -> Any:
        generator = wrap(*wrap_arguments(kwargs))
        try:
            next(generator)
        except StopIteration:
            _wrapper_failed(generator.gi_code, "did not yield")
        result: Any = None
        try:
            for function, arguments in plains:
                value = function(*arguments(kwargs))
                if value is not None:
                    result = value
                    break
        except BaseException as exc:
            return _unwind([generator], None, exc)
        try:
            generator.send(result)
        except StopIteration as stop:
            return stop.value
        generator.close()  # a second yield: what pluggy does, then the same error
        _wrapper_failed(generator.gi_code, "has second yield")

    return call


def _unwind(teardowns: list[Any], result: Any, exception: BaseException | None) -> Any:
    """Hand the outcome to each wrapper in turn, innermost first, as pluggy does."""
    for generator in reversed(teardowns):
        try:
            if exception is not None:
                try:
                    generator.throw(exception)
                except RuntimeError as error:
                    # A StopIteration thrown into a generator comes out as a RuntimeError
                    # caused by it; pluggy then carries on with the StopIteration, and so
                    # do we.
                    if isinstance(exception, StopIteration) and error.__cause__ is exception:
                        generator.close()
                        continue
                    raise
            else:
                generator.send(result)
            generator.close()
        except StopIteration as stop:
            result = stop.value
            exception = None
            continue
        except BaseException as exc:
            exception = exc
            continue
        _wrapper_failed(generator.gi_code, "has second yield")
    if exception is not None:
        raise exception
    return result


def _wrapper_failed(code: Any, what: str) -> NoReturn:
    # pluggy's wording, so that an error reads the same whichever path made the call.
    raise RuntimeError(
        f"wrap_controller at {code.co_name!r} {code.co_filename}:{code.co_firstlineno} {what}"
    )
