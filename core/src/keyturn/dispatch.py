"""Calling a hook without pluggy's per-call overhead, with the outcome pluggy would give.

A pluggy hook call checks its arguments, fills in defaults and hands the implementations to
pluggy's call loop: about 2 µs, most of it spent before the first implementation runs.
keyturn calls ``keyturn_jwt`` and ``keyturn_session`` on every request, usually when only
its own defaults implement them, or with one app wrapper around them, so that overhead was
most of the cost of a request that needs no refresh.

:func:`plan` looks at a hook's implementations once and returns the cheapest callable that
gives the same result, or raises the same exception:

* a single plain implementation taking every argument: that function, called directly;
* a first-result hook whose implementations are plain functions and new-style wrappers
  (``@hookimpl(wrapper=True)``): a function written for exactly those implementations, with
  the hook's arguments as keyword-only parameters, that follows pluggy's rules (last
  registered first, ``tryfirst``/``trylast`` as pluggy orders them, the first non-``None``
  result wins, each wrapper gets the result or the exception at its ``yield`` and may
  replace either). Its source is generated, as :mod:`dataclasses` generates ``__init__``:
  no argument dictionary, no loop, no picking of arguments at call time;
* anything else (old-style ``hookwrapper=True`` implementations, keyword arguments with
  defaults, hooks that are not first-result): pluggy's own ``HookCaller``.

An implementation known to return one of its arguments unchanged, with no other effect, when
another argument has a given value can be declared as a :class:`Passthrough`; the planned
call then hands that argument on without calling it. keyturn declares its default
``keyturn_jwt``, which returns ``token`` on a ``read``.

:class:`~keyturn.plugins.KeyturnPluginManager` keeps the plans and throws them all away when
anything changes: a plugin registered, unregistered or blocked, a hook spec added, call
monitoring (``add_hookcall_monitoring``, ``enable_tracing``) installed or removed. While
monitoring is installed every call goes through pluggy, so the monitor sees it.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import pluggy

__all__ = ["HookCall", "Passthrough", "plan"]

#: What :func:`plan` returns: call it with the hook's arguments as keywords.
HookCall = Callable[..., Any]

#: Names the generated functions use for themselves; a hook argument may not start so.
_PREFIX = "_kt_"


@dataclass(frozen=True)
class Passthrough:
    """A promise about an implementation: when argument ``when`` equals ``equals`` and
    argument ``returns`` is not ``None``, it returns ``returns`` and does nothing else.
    """

    when: str
    equals: object
    returns: str


def plan(
    caller: pluggy.HookCaller, passthrough: Mapping[Callable[..., Any], Passthrough] | None = None
) -> HookCall:
    """The cheapest callable that calls ``caller``'s implementations as pluggy would.

    Call the result with keyword arguments, every argument of the hook spec given.

    :param passthrough: implementations (by function) whose call may be skipped, and when.
    """
    spec = caller.spec
    if spec is None or not spec.opts.get("firstresult") or spec.opts.get("historic"):
        return caller
    impls = list(reversed(caller.get_hookimpls()))  # the order pluggy calls them in
    if any(impl.hookwrapper or impl.kwargnames for impl in impls):
        return caller
    if not all(_usable(name) for name in spec.argnames):
        return caller
    wrappers = [impl for impl in impls if impl.wrapper]
    if impls[: len(wrappers)] != wrappers:  # pluggy sets every wrapper up before the rest
        return caller
    plains = impls[len(wrappers) :]
    if len(impls) == 1 and plains and set(plains[0].argnames) == set(spec.argnames):
        return plains[0].function
    return _compile(caller.name, spec.argnames, wrappers, plains, passthrough or {})


def _usable(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith(_PREFIX)


def _compile(
    name: str,
    argnames: Sequence[str],
    wrappers: Sequence[pluggy.HookImpl],
    plains: Sequence[pluggy.HookImpl],
    passthrough: Mapping[Callable[..., Any], Passthrough],
) -> HookCall:
    """Write, compile and return the call function for exactly these implementations."""
    namespace: dict[str, Any] = {
        "_kt_next": next,
        "_kt_failed": _wrapper_failed,
        "_kt_unwind": _unwind,
        "_kt_drive": _drive,
        "_kt_throw": _throw,
        "_kt_returned": _returned,
        "_kt_Stop": StopIteration,
        "_kt_Base": BaseException,
    }

    def bind(value: Any, kind: str, index: int) -> str:
        key = f"{_PREFIX}{kind}{index}"
        namespace[key] = value
        return key

    def call(impl: pluggy.HookImpl, kind: str, index: int) -> str:
        return f"{bind(impl.function, kind, index)}({', '.join(impl.argnames)})"

    # The chain of plain implementations: the first non-None result wins.
    chain: list[str] = []
    for index, impl in enumerate(plains):
        expression = call(impl, "p", index)
        skip = passthrough.get(impl.function)
        if skip is not None and {skip.when, skip.returns} <= set(argnames):
            equals = bind(skip.equals, "k", index)
            expression = (
                f"{skip.returns} if {skip.when} == {equals} and {skip.returns} is not None"
                f" else {expression}"
            )
        chain.append(
            f"_kt_r = {expression}" if index == 0 else f"if _kt_r is None: _kt_r = {expression}"
        )
    if not chain:
        chain.append("_kt_r = None")

    lines = [f"def {name}(*, {', '.join(argnames)}):"]
    if len(wrappers) == 1:
        # The usual shape: an app's wrapper around the implementations. The wrapper runs
        # inside _drive, so its return value comes back without a StopIteration (see
        # _drive); a failing set-up has nothing to unwind.
        lines += [
            f"    _kt_g = {call(wrappers[0], 'w', 0)}",
            "    _kt_d = _kt_drive(_kt_g)",
            "    _kt_v = _kt_d.send(None)",
            "    if not _kt_g.gi_suspended:",
            "        _kt_returned(_kt_g, _kt_v)",
            "    try:",
            *(f"        {line}" for line in chain),
            "    except _kt_Base as _kt_e:",
            "        _kt_x = _kt_e",
            "    else:",
            "        _kt_x = None",
            "    if _kt_x is not None:  # handed on outside the handler, as pluggy does",
            "        return _kt_throw(_kt_d, _kt_g, _kt_x)",
            "    _kt_r = _kt_d.send(_kt_r)",
            "    if _kt_g.gi_suspended:",
            "        _kt_d.close()  # a second yield: pluggy closes the wrapper, then raises",
            "        _kt_failed(_kt_g, 'has second yield')",
            "    for _kt_ in _kt_d:  # _drive's own end",
            "        pass",
            "    return _kt_r",
        ]
    elif wrappers:
        lines += ["    _kt_t = []", "    try:"]
        for index, impl in enumerate(wrappers):
            lines += [
                f"        _kt_g = {call(impl, 'w', index)}",
                "        try:",
                "            _kt_next(_kt_g)",
                "        except _kt_Stop:",
                "            _kt_failed(_kt_g, 'did not yield')",
                "        _kt_t.append(_kt_g)",
            ]
        lines += [
            *(f"        {line}" for line in chain),
            "    except _kt_Base as _kt_e:",
            "        _kt_x = _kt_e",
            "    else:",
            "        return _kt_unwind(_kt_t, _kt_r, None)",
            "    return _kt_unwind(_kt_t, None, _kt_x)  # outside the handler, as pluggy does",
        ]
    else:
        lines += [*(f"    {line}" for line in chain), "    return _kt_r"]

    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<keyturn.dispatch {name}>", "exec"), namespace)  # noqa: S102
    function: HookCall = namespace[name]
    function.__module__ = __name__
    function.__qualname__ = name
    function.__doc__ = f"``{name}`` planned for its implementations:\n\n{source}"
    return function


def _drive(wrapper: Generator[Any, Any, Any]) -> Generator[Any, Any, None]:
    """Run one wrapper, and yield the value it returns instead of raising it.

    A generator's return value reaches a plain caller inside a ``StopIteration``, whose
    raising and catching cost more than the rest of a wrapper's call together. ``yield
    from`` receives it without one. Driven as ``send(None)`` (the wrapper runs to its
    ``yield``), then ``send(result)`` (the wrapper gets the result and the value it returns
    comes back), this is the wrapper's own protocol with one generator in between; whether
    the wrapper is suspended after each step tells a missing or second ``yield`` apart.
    """
    yield (yield from wrapper)


def _throw(driver: Generator[Any, Any, None], wrapper: Any, exception: BaseException) -> Any:
    """Hand the implementations' exception to the one wrapper inside ``driver``, as pluggy does."""
    if isinstance(exception, GeneratorExit):
        # Thrown through a generator delegating with ``yield from``, GeneratorExit closes
        # the wrapper instead of reaching its ``yield``: throw it at the wrapper itself.
        return _unwind((wrapper,), None, exception)
    try:
        result = driver.throw(exception)
    except RuntimeError as error:
        # pluggy carries on with a StopIteration that came out as a RuntimeError caused by
        # it; raised below, outside this handler, as pluggy raises it.
        if not (isinstance(exception, StopIteration) and error.__cause__ is exception):
            raise
    else:
        if wrapper.gi_suspended:
            driver.close()  # closes the wrapper, as pluggy does, then the driver
            _wrapper_failed(wrapper, "has second yield")
        for _ in driver:  # _drive's own end
            pass
        return result
    raise exception


def _returned(wrapper: Generator[Any, Any, Any], value: Any) -> NoReturn:
    """A wrapper returned ``value`` without yielding: pluggy's error, raised as pluggy does.

    pluggy raises it while handling the wrapper's ``StopIteration``, so the error's context
    is that ``StopIteration``; so is it here.
    """
    try:
        raise StopIteration() if value is None else StopIteration(value)
    except StopIteration:
        _wrapper_failed(wrapper, "did not yield")


def _unwind(teardowns: Sequence[Any], result: Any, exception: BaseException | None) -> Any:
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
        _wrapper_failed(generator, "has second yield")
    if exception is not None:
        raise exception
    return result


def _wrapper_failed(generator: Any, what: str) -> NoReturn:
    # pluggy's wording, so that an error reads the same whichever path made the call.
    code = generator.gi_code
    raise RuntimeError(
        f"wrap_controller at {code.co_name!r} {code.co_filename}:{code.co_firstlineno} {what}"
    )
