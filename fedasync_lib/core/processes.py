"""Starting Python worker processes safely: what the "spawn" start method needs of the caller.

Dask's local workers and :func:`fedasync_lib.run_seeds`'s pool start new Python
processes with ``spawn`` (never ``fork``, which is unsafe once torch or Jupyter
run threads). A spawned process imports the caller's main script again, so:

* a script whose top level starts workers, outside ``if __name__ == "__main__":``,
  would start them again in each worker (:func:`unguarded_call_in_main_script`);
* a main "script" that is not a file (``python - < code.py``, ``python -c``) cannot
  be imported again at all.

:func:`spawn_is_safe` says whether neither is the case.
"""

from __future__ import annotations

import ast
import os
import sys
from typing import Any, Optional, Tuple


def unguarded_call_in_main_script() -> Optional[Tuple[str, int]]:
    """``(script, line)`` when the running Python script executes this call from its top
    level outside an ``if __name__ == "__main__":`` block; None otherwise (a guarded call,
    a notebook, ``python -c``, an interactive session)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or not str(path).endswith(".py"):
        return None
    frame = sys._getframe()
    while frame is not None and not (frame.f_globals is main.__dict__
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            return None if _is_main_guard(node) else (str(path), line)
    return None


def _is_main_guard(node: Any) -> bool:
    """Is ``node`` the statement ``if __name__ == "__main__":`` (either way round)?"""
    if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and len(node.test.ops) == 1 and isinstance(node.test.ops[0], ast.Eq)):
        return False
    sides = [node.test.left, *node.test.comparators]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    values = {s.value for s in sides if isinstance(s, ast.Constant)}
    return names == {"__name__"} and values == {"__main__"}


def spawn_is_safe() -> bool:
    """Can this process start "spawn" workers: its main module is a notebook, an
    interactive session, a module run with ``-m``, or a script file that starts them
    under ``if __name__ == "__main__":``."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path and not os.path.exists(path):  # <stdin>, <string>: nothing to import again
        return False
    return unguarded_call_in_main_script() is None
