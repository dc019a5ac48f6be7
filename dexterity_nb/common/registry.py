"""Registries by name: how a saved agent's names become classes again, without importing anything.

A checkpoint is data. It names its transformers, distribution and gatherer by the names they are
registered under (``TRANSFORMERS``, ``DISTRIBUTIONS``, ``GATHERERS``; model builders have
``MODEL_BUILDERS``), and ``PPOAgent.load`` looks those names up in the registries that the package
and the user filled in *this* process. A name that is not there is an error that says how to
register it, never a reason to import the module a file names.

The helpers here are shared by ``register_transformer``, ``register_distribution`` and
``register_gatherer``, so that the three registries follow one rule.
"""

from __future__ import annotations

__all__ = ["register_class", "registered_name", "same_definition"]


def same_definition(first: type, second: type) -> bool:
    """True for two class objects from the same ``class`` statement run twice (a notebook cell re-run)."""
    return first.__module__ == second.__module__ and first.__qualname__ == second.__qualname__


def register_class(registry: dict, cls, name: str | None, base: type, overwrite: bool, kind: str):
    """Put ``cls`` (a subclass of ``base``) in ``registry`` under ``name`` (default: its class name).

    A name taken by a different class raises unless ``overwrite=True``. The exception is a class
    with the same module and qualname as the registered one: running a notebook cell again
    redefines the class, and the new definition replaces the old one silently.
    Returns ``cls``, so that the register functions also work as decorators.
    """
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"Only subclasses of {base.__name__} can be registered as {kind}s (the class itself, not an "
                        f"instance); got {cls!r}.")
    name = cls.__name__ if name is None else name
    if not isinstance(name, str) or not name:
        raise TypeError(f"A {kind} is registered under a non-empty string name; got {name!r}.")
    current = registry.get(name)
    if current is not None and current is not cls and not overwrite and not same_definition(current, cls):
        raise ValueError(
            f"The {kind} name {name!r} is already taken by {current.__module__}.{current.__qualname__}. "
            f"Register {cls.__qualname__} under another name (name=...), or pass overwrite=True to replace it."
        )
    registry[name] = cls
    return cls


def registered_name(registry: dict, cls: type, preferred: str | None = None) -> str | None:
    """The name ``cls`` is registered under (``preferred`` if that is one of several), or ``None``.

    A class whose notebook cell was run again after registering counts as registered: its new
    definition (same module and qualname) is what the registry holds.
    """
    names = [name for name, entry in registry.items() if entry is cls]
    if not names:
        names = [name for name, entry in registry.items() if same_definition(entry, cls)]
    if not names:
        return None
    return preferred if preferred in names else names[0]
