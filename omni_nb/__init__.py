"""omni_nb: Omni's Create-draft endpoint as a notebook tool.

``import omni_nb`` is light: httpx, pandas and ipywidgets are imported only when a name that
needs them is first used (PEP 562 module ``__getattr__``), so ``%load_ext omni_nb`` and the
kernel start-up file cost almost nothing.

Example:
    >>> import omni_nb
    >>> omni_nb.RateLimit(60, 60)
    RateLimit(requests=60, per=60.0)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .config import logout
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigError,
    DraftsFailedError,
    HostUnreachableError,
    InvalidInputError,
    KeyRefusedWarning,
    LedgerError,
    LedgerWarning,
    NotEligibleError,
    NotFoundError,
    OmniError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from .ratelimit import RateLimit

if TYPE_CHECKING:
    from . import sandbox
    from .batch import (
        BatchInterrupted,
        Operation,
        acreate_drafts,
        adiscard_drafts,
        alist_drafts,
        arun_operation,
        create_draft,
        create_drafts,
        discard_drafts,
        list_drafts,
        register_operation,
        run_operation,
    )
    from .client import AsyncOmniClient, CallOutcome, Draft, OmniClient, RetryPolicy
    from .ledger import Ledger, open_ledger, results
    from .ratelimit.report import rate_budget
    from .session import login
    from .widget import DraftForm

# name -> module that defines it; imported on first access.
_LAZY = {
    "AsyncOmniClient": ".client",
    "CallOutcome": ".client",
    "Draft": ".client",
    "OmniClient": ".client",
    "RetryPolicy": ".client",
    "BatchInterrupted": ".batch",
    "Operation": ".batch",
    "acreate_drafts": ".batch",
    "adiscard_drafts": ".batch",
    "alist_drafts": ".batch",
    "arun_operation": ".batch",
    "create_draft": ".batch",
    "create_drafts": ".batch",
    "discard_drafts": ".batch",
    "list_drafts": ".batch",
    "register_operation": ".batch",
    "run_operation": ".batch",
    "Ledger": ".ledger",
    "open_ledger": ".ledger",
    "results": ".ledger",
    "DraftForm": ".widget",
    "sandbox": ".sandbox",
    "login": ".session",
    "rate_budget": ".ratelimit.report",
}

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncOmniClient",
    "AuthenticationError",
    "BatchInterrupted",
    "CallOutcome",
    "ConfigError",
    "Draft",
    "DraftForm",
    "DraftsFailedError",
    "HostUnreachableError",
    "InvalidInputError",
    "KeyRefusedWarning",
    "Ledger",
    "LedgerError",
    "LedgerWarning",
    "NotEligibleError",
    "NotFoundError",
    "OmniClient",
    "OmniError",
    "Operation",
    "PermissionDeniedError",
    "RateLimit",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "UnexpectedResponseError",
    "__version__",
    "acreate_drafts",
    "adiscard_drafts",
    "alist_drafts",
    "arun_operation",
    "create_draft",
    "create_drafts",
    "discard_drafts",
    "list_drafts",
    "load_ipython_extension",
    "login",
    "logout",
    "open_ledger",
    "rate_budget",
    "register_operation",
    "results",
    "run_operation",
    "sandbox",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'omni_nb' has no attribute {name!r}")
    mod = importlib.import_module(module, __name__)
    value = mod if name == "sandbox" else getattr(mod, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext omni_nb``: register ``%omni_draft`` (heavy imports wait for first use).

    Example:
        >>> from IPython.core.interactiveshell import InteractiveShell
        >>> shell = InteractiveShell.instance()  # the running shell (a kernel's, a test's)
        >>> load_ipython_extension(shell)
        >>> "omni_draft" in shell.magics_manager.magics["line"]
        True
    """
    from .magic import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext omni_nb``: remove ``%omni_draft``.

    Example:
        >>> from IPython.core.interactiveshell import InteractiveShell
        >>> shell = InteractiveShell.instance()
        >>> load_ipython_extension(shell)
        >>> unload_ipython_extension(shell)
        >>> "omni_draft" in shell.magics_manager.magics["line"]
        False
    """
    from .magic import unregister

    unregister(ipython)


def _install_accessor() -> None:
    # df.omni must exist whichever of pandas and omni_nb is imported first, without making
    # this import pay for pandas.
    from ._accessor import install

    install()


_install_accessor()
del _install_accessor
