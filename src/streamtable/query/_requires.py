"""Imported first by :mod:`streamtable.query`: a clear error when the ``query`` extra is missing."""

import importlib.util

MISSING = [name for name in ("starlette", "httpx") if importlib.util.find_spec(name) is None]
if MISSING:  # the library alone does not install the HTTP stack
    raise ModuleNotFoundError(
        f"streamtable.query needs the query extra ({', '.join(MISSING)} not installed): "
        "pip install 'streamtable[query]'",
        name=MISSING[0],
    )
