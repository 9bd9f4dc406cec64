"""Search strategies, one module each, registered by decorator (`base.register_strategy`):
importing the package imports every module in it, so a new strategy is one new file."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
