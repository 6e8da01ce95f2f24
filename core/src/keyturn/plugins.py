"""Finding plugins, checking them, and collecting the providers they register.

Plugins are found through the ``keyturn`` entry-point group::

    [project.entry-points.keyturn]
    google = "keyturn_google"

``KEYTURN_DISABLE_PLUGINS`` (comma-separated entry-point names, or ``*`` for all) keeps
installed plugins from loading: useful in tests and to rule a plugin out when debugging.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pluggy

from . import callbacks, defaults, hookspecs
from .dispatch import HookCall, plan
from .errors import PluginError
from .hookspecs import NAME
from .models import ProviderSpec

__all__ = [
    "DISABLE_ENV",
    "KeyturnPluginManager",
    "RegisteredProvider",
    "check_pending",
    "collect_providers",
    "default_plugin_manager",
    "for_provider",
    "get_plugin_manager",
]

#: Environment variable listing entry-point names not to load (``*`` for all).
DISABLE_ENV = "KEYTURN_DISABLE_PLUGINS"

#: Plugin names of keyturn's own default implementations.
BUILTIN_PLUGINS = ("keyturn.defaults", "keyturn.callbacks")

F = TypeVar("F", bound=Callable[..., Any])


class Plans(dict[str, HookCall]):
    """Hook name -> how to call it now; a name not planned yet is planned when first asked for.

    Read it with ``plans[name]`` (a plain dictionary lookup on every call after the first);
    :class:`KeyturnPluginManager` empties it whenever what a hook call does could change.
    """

    __slots__ = ("_plan",)

    def __init__(self, plan: Callable[[str], HookCall]) -> None:
        super().__init__()
        self._plan = plan

    def __missing__(self, name: str) -> HookCall:
        return self._plan(name)


class KeyturnPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from, and calls hooks cheaply.

    :meth:`caller` (or :attr:`plans`) is what keyturn calls hooks with: the same outcome as
    ``pm.hook.<name>(...)`` without pluggy's per-call overhead when nothing needs it (see
    :mod:`keyturn.dispatch`). :attr:`generation` changes whenever what a hook call does could
    change, and :attr:`plans` is emptied then.
    """

    def __init__(self) -> None:
        super().__init__(NAME)
        #: plugin name -> (distribution name, version), for plugins loaded from entry points.
        self.distributions: dict[str, tuple[str, str]] = {}
        #: Bumped by every change to plugins, specs, blocks or call monitoring.
        self.generation = 0
        self._monitors = 0
        # Held while a change empties the plans and while a plan is stored, so that a plan
        # made from what was there before a change is never kept after it.
        self._plans_lock = threading.Lock()
        #: hook name -> how to call it in this generation (see :meth:`caller`).
        self.plans = Plans(self._plan)

    def caller(self, name: str) -> HookCall:
        """How to call hook ``name`` now: call the result with every argument as a keyword.

        While call monitoring is installed this is pluggy's ``HookCaller``, so monitors see
        every call.
        """
        return self.plans[name]

    def _plan(self, name: str) -> HookCall:
        generation = self.generation  # read first: a change while planning is not kept
        hook_caller: pluggy.HookCaller = getattr(self.hook, name)
        found = hook_caller if self._monitors else plan(hook_caller, callbacks.PASSTHROUGH)
        with self._plans_lock:
            if generation == self.generation:
                self.plans[name] = found
        return found

    def _changed(self) -> None:
        with self._plans_lock:
            self.generation += 1
            self.plans.clear()

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        try:
            return super().register(plugin, name)
        finally:
            self._changed()

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        try:
            return super().unregister(plugin, name)
        finally:
            self._changed()

    def set_blocked(self, name: str) -> None:
        try:
            super().set_blocked(name)
        finally:
            self._changed()

    def unblock(self, name: str) -> bool:
        try:
            return super().unblock(name)
        finally:
            self._changed()

    def add_hookspecs(self, module_or_class: Any) -> None:
        try:
            super().add_hookspecs(module_or_class)
        finally:
            self._changed()

    def add_hookcall_monitoring(
        self, before: Callable[..., None], after: Callable[..., None]
    ) -> Callable[[], None]:
        undo_monitor = super().add_hookcall_monitoring(before, after)
        self._monitors += 1
        self._changed()
        undone = False

        def undo() -> None:
            nonlocal undone
            undo_monitor()
            if not undone:
                undone = True
                self._monitors -= 1
            self._changed()

        return undo


@dataclass(frozen=True)
class RegisteredProvider:
    """A provider spec with where it came from."""

    spec: ProviderSpec
    plugin: str
    distribution: str | None
    version: str | None
    #: The provider hooks its plugin implements for it (keyturn's defaults serve the rest).
    hooks: tuple[str, ...] = ()


def _disabled_names(environ: Mapping[str, str]) -> set[str]:
    raw = environ.get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def get_plugin_manager(
    *,
    entry_points: bool = True,
    plugins: Iterable[object] = (),
    environ: Mapping[str, str] | None = None,
) -> KeyturnPluginManager:
    """A fresh plugin manager: keyturn's defaults, then entry-point plugins, then ``plugins``.

    :param entry_points: load plugins from the ``keyturn`` entry-point group.
    :param plugins: extra plugin objects (modules or instances with hookimpls) to register
        last, so they run first.
    :param environ: where to read ``KEYTURN_DISABLE_PLUGINS`` (default ``os.environ``).
    :raises PluginError: a plugin fails to import or breaks the hook contract.
    """
    pm = KeyturnPluginManager()
    pm.add_hookspecs(hookspecs)
    pm.register(defaults, name=BUILTIN_PLUGINS[0])
    pm.register(callbacks, name=BUILTIN_PLUGINS[1])
    if entry_points:
        _load_entry_points(pm, _disabled_names(os.environ if environ is None else environ))
    for plugin in plugins:
        _register(pm, plugin, None)
    check_pending(pm)
    return pm


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} breaks the hook contract: {exc}") from exc
    except ValueError as exc:  # registered twice under one name
        raise PluginError(str(exc)) from exc


def _load_entry_points(pm: KeyturnPluginManager, disabled: set[str]) -> None:
    if "*" in disabled:
        return
    for ep in importlib.metadata.entry_points(group=NAME):
        if ep.name in disabled or pm.has_plugin(ep.name):
            continue
        # Reading metadata parses the distribution's METADATA file: do it once.
        metadata = ep.dist.metadata if ep.dist is not None else None
        dist = metadata["Name"] if metadata is not None else "unknown distribution"
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} from {dist} failed to load ({ep.value}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        _register(pm, plugin, ep.name)
        if ep.dist is not None and metadata is not None:
            pm.distributions[ep.name] = (dist, metadata["Version"])


def check_pending(pm: pluggy.PluginManager) -> None:
    """Fail if a plugin implements a hook that does not exist (usually a misspelt name).

    :raises PluginError: naming the plugin and the unknown hook.
    """
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin {pm.get_name(exc.plugin)!r} implements a hook keyturn does not have: {exc}"
        ) from exc


def collect_providers(
    pm: KeyturnPluginManager, environ: Mapping[str, str] | None = None
) -> dict[str, RegisteredProvider]:
    """Ask every plugin for its providers.

    :param environ: the environment handed to ``keyturn_register_providers`` (a client
        passes its own ``environ=``); ``os.environ`` by default.

    :raises PluginError: two plugins register the same id, or a plugin registers something
        that is not a :class:`ProviderSpec`.
    """
    found: dict[str, RegisteredProvider] = {}
    for impl in reversed(pm.hook.keyturn_register_providers.get_hookimpls()):
        plugin_name = impl.plugin_name
        dist = pm.distributions.get(plugin_name)

        def register(spec: ProviderSpec, _plugin: str = plugin_name, _dist: Any = dist) -> None:
            if not isinstance(spec, ProviderSpec):
                raise PluginError(
                    f"plugin {_plugin!r} registered a {type(spec).__name__}, not a ProviderSpec"
                )
            if spec.id in found:
                raise PluginError(
                    f"provider id {spec.id!r} is registered twice: by plugin "
                    f"{found[spec.id].plugin!r} and by plugin {_plugin!r}"
                )
            found[spec.id] = RegisteredProvider(
                spec,
                _plugin,
                _dist[0] if _dist else None,
                _dist[1] if _dist else None,
                _hooks_for(pm, _plugin, spec.id),
            )

        arguments = {"register": register, "environ": os.environ if environ is None else environ}
        impl.function(*(arguments[name] for name in impl.argnames))
    return found


def _hooks_for(pm: pluggy.PluginManager, plugin_name: str, provider_id: str) -> tuple[str, ...]:
    """The hooks ``plugin_name`` implements that can answer for ``provider_id``."""
    plugin = pm.get_plugin(plugin_name)
    names: list[str] = []
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.name == "keyturn_register_providers":
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            only = getattr(impl.function, "__keyturn_providers__", None)
            if only is None or provider_id in only:
                names.append(caller.name)
                break
    return tuple(sorted(names))


@functools.cache
def default_plugin_manager() -> KeyturnPluginManager:
    """The process-wide plugin manager the clients use when given none (loaded once)."""
    return get_plugin_manager()


def for_provider(*provider_ids: str) -> Callable[[F], F]:
    """Make a hook implementation answer only for the given provider ids.

    For any other provider the wrapped function is not called and ``None`` is returned, so a
    firstresult hook falls through to the next implementation::

        @keyturn.hookimpl
        @keyturn.for_provider("github")
        def keyturn_refresh(provider, credentials, tokens, clock):
            return my_refresh_flow(provider, credentials, tokens, clock)

    The function must take a ``provider`` argument.
    """
    if not provider_ids:
        raise TypeError("for_provider() needs at least one provider id")
    wanted = frozenset(provider_ids)

    def decorate(func: F) -> F:
        names = list(inspect.signature(func).parameters)
        if "provider" not in names:
            raise TypeError(f"{func.__qualname__} has no 'provider' argument to check")
        index = names.index("provider")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            provider = args[index] if len(args) > index else kwargs["provider"]
            if provider.id not in wanted:
                return None
            return func(*args, **kwargs)

        # Lets `keyturn providers` tell which provider each hook answers for.
        wrapper.__dict__["__keyturn_providers__"] = wanted
        return cast(F, wrapper)

    return decorate
