"""Is this API root a sandbox? Asked of the server itself, never guessed from the address.

A loopback address proves nothing (an SSH tunnel to a real instance is loopback too): the
sandbox says what it is in every answer's ``Server`` header, and that is what is checked.

Example::

    with serve() as sb:
        assert is_sandbox(sb.base_url)
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

__all__ = ["SERVER_NAME", "is_sandbox"]

#: The product token every sandbox answer carries in its ``Server`` header.
SERVER_NAME = "omni-nb-sandbox"


def is_sandbox(base_url: str, timeout: float = 2.0) -> bool:
    """True when ``base_url`` (an API root) is answered by an omni_nb sandbox.

    Sends one unauthenticated ``GET {base_url}/v1/documents`` (no token ever goes with it)
    and reads the ``Server`` header of whatever comes back; False on any failure.

    Example:
        >>> is_sandbox("not a url")
        False
    """
    if urlsplit(base_url).scheme not in ("http", "https"):
        return False
    url = f"{base_url.rstrip('/')}/v1/documents"  # http(s) only: checked above
    request = urllib.request.Request(url, method="GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            server = answer.headers.get("Server", "")
    except urllib.error.HTTPError as answer:  # a 401 still names its server
        server = answer.headers.get("Server", "") if answer.headers else ""
    except (OSError, ValueError):
        return False
    return str(server).split("/", 1)[0].strip() == SERVER_NAME
