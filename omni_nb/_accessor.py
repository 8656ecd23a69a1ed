"""``df.omni``: the pandas accessor, registered without importing pandas first.

If pandas is already imported, the accessor is registered at once; otherwise a one-shot
import hook registers it right after pandas finishes importing. Either way ``import omni_nb``
is all it takes, and ``import omni_nb`` alone never pays for pandas.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["OmniAccessor", "install"]


class OmniAccessor:
    """``df.omni``: Omni calls over the rows of a DataFrame.

    Example:
        >>> import pandas as pd, omni_nb
        >>> hasattr(pd.DataFrame({"document_id": ["a"]}), "omni")
        True
    """

    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def create_drafts(
        self, document_col: str = "document_id", branch_col: str | None = None, **kwargs: Any
    ) -> Any:
        """Create a draft for each row; returns the results table (see
        :func:`omni_nb.create_drafts`, whose keyword arguments it takes).

        ``branch_col`` names a column of branch UUIDs (missing values: ``branch_id=``).

        Example:
            >>> import pandas as pd
            >>> from omni_nb import sandbox
            >>> docs = pd.DataFrame({"identifier": ["doc-0001", "nope"]})
            >>> with sandbox.serve() as sb:
            ...     t = docs.omni.create_drafts("identifier", base_url=sb.base_url,
            ...                                 token=sb.token, ledger="off")
            >>> t["status"].tolist()
            ['ok', 'not_found']
        """
        from .batch import create_drafts

        return create_drafts(
            self._frame, document_col=document_col, branch_col=branch_col, **kwargs
        )

    def discard_drafts(
        self, document_col: str = "document_id", branch_col: str | None = None, **kwargs: Any
    ) -> Any:
        """Discard drafts (see :func:`omni_nb.discard_drafts`, whose keyword arguments it
        takes). On a results table (``document_id``, ``status``, ``draft_id`` columns) its
        ``ok`` creates are undone carefully; on another frame each row's active draft is
        discarded, as asked.

        Example:
            >>> import pandas as pd
            >>> from omni_nb import sandbox
            >>> with sandbox.serve() as sb:
            ...     kw = dict(base_url=sb.base_url, token=sb.token, ledger="off")
            ...     made = pd.DataFrame({"document_id": ["doc-0001"]}).omni.create_drafts(**kw)
            ...     undone = made.omni.discard_drafts(**kw)
            >>> undone[["status", "action"]].values.tolist()
            [['ok', 'discard']]
        """
        from .batch import discard_drafts

        return discard_drafts(
            self._frame, document_col=document_col, branch_col=branch_col, **kwargs
        )

    def list_drafts(self, document_col: str = "document_id", **kwargs: Any) -> Any:
        """The drafts of each row's document, one row per draft (see
        :func:`omni_nb.list_drafts`, whose keyword arguments it takes).

        Example:
            >>> import pandas as pd
            >>> from omni_nb import sandbox
            >>> docs = pd.DataFrame({"identifier": ["doc-0001"]})
            >>> with sandbox.serve() as sb:
            ...     d = docs.omni.list_drafts("identifier", base_url=sb.base_url, token=sb.token)
            >>> len(d)
            0
        """
        from .batch import list_drafts

        return list_drafts(self._frame, document_col=document_col, **kwargs)


_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    from pandas.api.extensions import register_dataframe_accessor

    register_dataframe_accessor("omni")(OmniAccessor)
    _registered = True


class _AfterExec(importlib.abc.Loader):
    """Wraps pandas' own loader: runs it, then registers the accessor."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._inner  # pandas sees its real loader (resources, reload)
        self._inner.exec_module(module)
        _register()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _PandasHook(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "pandas":
            return None
        _remove_hook()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _AfterExec(spec.loader)
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PandasHook)]


def install() -> None:
    """Make ``df.omni`` available now or as soon as pandas is imported.

    Example:
        >>> install()
    """
    if "pandas" in sys.modules:
        _register()
    elif not any(isinstance(f, _PandasHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _PandasHook())
