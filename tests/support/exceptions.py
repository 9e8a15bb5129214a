"""Every exception class a package defines, found by importing each of its modules."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType


def exception_classes(package: ModuleType) -> dict[str, type[BaseException]]:
    """``{"module.Class": class}`` for each exception class defined in ``package`` (private
    modules and names included), whatever the module that re-exports it."""
    modules = [package]
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        modules.append(importlib.import_module(info.name))
    found: dict[str, type[BaseException]] = {}
    for module in modules:
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__.split(".")[0] == package.__name__
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found
