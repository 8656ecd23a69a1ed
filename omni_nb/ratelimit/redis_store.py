"""The budget store on Redis: one key's budget shared by a team's machines.

The same store as :class:`~omni_nb.ratelimit.store.BudgetStore` (the SQLite file one machine
shares), with the same semantics and the same maths: each step is a ``WATCH``/``MULTI``
transaction around the Python function the limiter gives (:meth:`RedisBudgetStore.update`),
tried again when another process changed the key meanwhile. Per key digest ``D`` under the
prefix ``P`` (``omni_nb:`` unless the address says ``?prefix=``)::

    P{D}         HASH  app   "omni_nb budget 2" (a key of ours; anything else is refused)
                       state JSON: pause, learned limit, probe, allowance, processes seen
                       lease:<id>  JSON [requests, per, expires, holder]
    P{D}:sends   ZSET  "<bucket>:<kind>:<n>:<at>" scored by bucket (1 ms buckets, as SQLite)
    Pinstance    STRING  "omni_nb budget store <uuid>": which Redis this is (a restart
                        without persistence loses it: the limiters seed the new one)

Both keys of a digest expire after :data:`IDLE_S` without a step, so nothing grows; the
braces put them in one Redis Cluster slot. Times are the Redis server's (``TIME``, read with
every step): :meth:`RedisBudgetStore.clock` is this machine's clock plus the offset measured
with the least round trip, so machines whose clocks disagree still share one log.

A step is two round trips on one connection: ``WATCH``, ``TIME``, ``HGETALL`` and the log's
rows sent together, then ``MULTI`` … ``EXEC`` (nil when another process changed the key
meanwhile: the step is tried again). Why not Lua: the maths (spacing, leases, learning from
429s) stays in one place, Python, for both stores.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..budget_url import RedisAddress
from ..errors import ConfigError
from . import log
from .log import Budget, bucket_of
from .store import BudgetStore, Entry, KeyState, Store, StoreError, change_budget, key_state

__all__ = ["IDLE_S", "MARK", "RedisBudgetStore", "open_at"]

T = TypeVar("T")
MARK = "omni_nb budget 2"  # the app field of every hash of ours
INSTANCE = "omni_nb budget store "
IDLE_S = 3600  # a key with no step for this long expires (its state is stale by then)
PATIENT_S = 1.0  # socket timeout while the store works (as SQLite's busy timeout)
CLOCK_DRIFT = 1e-4  # how fast an old clock sample is trusted less (100 ppm)
Row = tuple[int, float]  # (n, at) of one bucket and kind


class _Foreign(Exception):
    """A key of ours holds something omni_nb did not write."""


class _Lost(Exception):
    """The instance marker is not the one this store opened: Redis lost its data."""


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:
        raise ConfigError("OMNI_NB_BUDGET names a Redis server, but redis-py is not "
                          "installed: pip install 'omni_nb[redis]'") from None
    return redis


class RedisBudgetStore:
    """A Redis server's budgets (see the module); :meth:`update` runs a function on a key's
    budget atomically, like :class:`~omni_nb.ratelimit.store.BudgetStore`.

    Raises :class:`~omni_nb.errors.ConfigError` when Redis refuses the password or the
    database (or redis-py is missing), :class:`StoreError` when it cannot be reached or is
    another application's.

    Example:
        >>> from omni_nb.budget_url import RedisAddress
        >>> try:
        ...     RedisBudgetStore(RedisAddress.parse("redis://127.0.0.1:1/0"))
        ... except StoreError as exc:
        ...     print(exc)
        budget store redis://127.0.0.1:1/0 cannot be reached (Connection refused)
    """

    lost = "lost its data (restarted or flushed)"

    def __init__(self, address: RedisAddress) -> None:
        self.address = address
        self.where = address.shown
        self.prefix = address.prefix
        self._lock = threading.Lock()
        self._patience = PATIENT_S
        self._offset, self._offset_err, self._offset_at = 0.0, math.inf, -math.inf
        redis = self._redis = _redis_module()
        self._pool, self._client = self._connect(PATIENT_S)
        try:
            self.opened = self._instance()
            for _ in range(3):  # the clock's offset: the least round trip of a few
                self._sample_clock()
        except redis.AuthenticationError as exc:
            self._pool.disconnect()
            raise ConfigError(f"budget store {self.where}: Redis refused the user or password "
                              f"({exc})") from None
        except redis.ResponseError as exc:
            self._pool.disconnect()
            text = str(exc)
            if "DB index" in text or "invalid DB" in text:
                raise ConfigError(f"budget store {self.where}: Redis has no such database "
                                  f"({text})") from None
            if "NOPERM" in text or "permission" in text.lower():
                raise ConfigError(f"budget store {self.where}: the Redis user may not do what "
                                  f"the budget needs ({text}; see docs/team-budget.md for the "
                                  "ACL)") from None
            raise StoreError(f"budget store {self.where} cannot be used ({text})") from None
        except _Foreign as exc:
            self._pool.disconnect()
            raise StoreError(f"budget store {self.where}: {exc}; it is left as is") from None
        except (redis.RedisError, OSError) as exc:
            self._pool.disconnect()
            raise _unreachable(self.where, exc) from None

    # -- the store's identity and clock -----------------------------------------------------

    def _instance(self) -> str:
        """Which Redis this is: the instance marker, set once (a fresh Redis gets a new one)."""
        name = f"{self.prefix}instance"
        self._client.set(name, INSTANCE + uuid.uuid4().hex, nx=True)
        value = self._client.get(name)
        if not isinstance(value, str) or not value.startswith(INSTANCE):
            raise _Foreign(f"its key {name} holds another application's data")
        return value

    def identity(self) -> str:
        """Which Redis answers now: a restart that lost the data answers with another (or
        no) marker. Raises :class:`StoreError` when none answers (there is nothing to open
        anew yet, unlike a deleted file).

        Example:
            ``store.identity() == store.opened`` while Redis kept its data.
        """
        with self._lock:
            try:
                value = self._client.get(f"{self.prefix}instance")
            except (self._redis.RedisError, OSError) as exc:
                self._pool.disconnect()
                raise _unreachable(self.where, exc) from None
        return str(value)

    def _sample_clock(self) -> None:
        before = time.time()
        sec, usec = self._client.time()
        self._clock_sample(before, time.time(), sec + usec / 1e6)

    def _clock_sample(self, before: float, after: float, server: float) -> None:
        """Keep the offset whose error (half its round trip, aged by drift) is least."""
        err = (after - before) / 2
        aged = self._offset_err + (after - self._offset_at) * CLOCK_DRIFT
        if err <= aged:
            self._offset = server - (before + after) / 2
            self._offset_err, self._offset_at = err, after

    def clock(self) -> float:
        """The Redis server's time now, in seconds (this machine's clock, corrected).

        Example:
            ``store.clock() - time.time()`` is the offset measured from Redis ``TIME``.
        """
        return time.time() + self._offset

    def skew(self) -> float:
        """Seconds to add to this machine's ``time.time()`` to get the store's time."""
        return self._offset

    def patience(self, seconds: float) -> None:
        """How long a step may wait for Redis (its socket timeouts, and how long a step tries
        again when other processes keep changing the key)."""
        with self._lock:
            self._patience = seconds
            old = self._pool
            # A new pool: redis-py keeps each connection's timeouts from its creation.
            self._pool, self._client = self._connect(seconds)
            old.disconnect()

    def _connect(self, timeout: float) -> tuple[Any, Any]:
        """A pool of one connection (a step's WATCH and its MULTI/EXEC must share it; the
        store's lock serialises its use) and a client on it; redis-py does not retry: the
        link does, without holding the callers."""
        redis = self._redis
        retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
        # No CLIENT SETINFO on connect (the minimal ACL grants no CLIENT): redis-py 7+ says
        # so with driver_info=None (its lib_name/lib_version warn as deprecated), older ones
        # with lib_name/lib_version.
        quiet: dict[str, None] = ({"driver_info": None} if hasattr(redis, "driver_info")
                                  else {"lib_name": None, "lib_version": None})
        pool = redis.BlockingConnectionPool.from_url(
            self.address.url, max_connections=1, timeout=None, decode_responses=True,
            socket_timeout=timeout, socket_connect_timeout=timeout, retry=retry,
            retry_on_error=[], **quiet)
        return pool, redis.Redis(connection_pool=pool, retry=retry)

    def reopen(self) -> RedisBudgetStore:
        """The same address opened anew (after Redis lost its data)."""
        return RedisBudgetStore(self.address)

    # -- steps ------------------------------------------------------------------------------

    def _names(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}{{{key}}}", f"{self.prefix}{{{key}}}:sends"

    def update(self, key: str, change: Callable[[Budget], T], *,
               delta: Counter[Entry] | None = None, sends: bool = True,
               forget_before: float | None = None) -> T:
        """As :meth:`omni_nb.ratelimit.store.BudgetStore.update`: load ``key``'s budget,
        apply ``delta`` and ``change``, write back what changed, atomically (tried again
        while other processes change the key, for as long as the store's patience).

        Raises :class:`StoreError` when Redis cannot be reached, or the key is not ours.
        """
        redis = self._redis
        with self._lock:
            until = time.monotonic() + self._patience
            while True:
                try:
                    return self._attempt(key, change, delta or Counter(), sends,
                                         forget_before)
                except redis.WatchError:
                    if time.monotonic() > until:
                        raise StoreError(f"budget store {self.where} is busy: other "
                                         "processes kept changing the key") from None
                except _Lost:
                    # Found by a process that saw no outage (idle through a restart): the
                    # link makes the store anew at once, seeded with its sends, as the
                    # others that saw the outage do.
                    raise StoreError(f"budget store {self.where} {self.lost}") from None
                except _Foreign as exc:
                    raise StoreError(f"budget store {self.where}: {exc}; it is left as is"
                                     ) from None
                except (redis.RedisError, OSError) as exc:
                    self._pool.disconnect()  # no step may go on a connection in doubt
                    # Refused (an ACL narrowed mid-run, say) is not unreachable.
                    how = ("cannot be used" if isinstance(exc, redis.ResponseError)
                           else "cannot be reached")
                    raise StoreError(f"budget store {self.where} {how} ({_words(exc)})"
                                     ) from None
                except (KeyError, TypeError, ValueError, IndexError) as exc:
                    raise StoreError(f"budget store {self.where}: a key of ours holds what "
                                     f"omni_nb cannot read ({exc}); it is left as is") from None

    def _exchange(self, conn: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one write and read every reply (an error reply is returned,
        not raised, so the replies stay in step). On the connection itself, not a redis-py
        pipeline: a pipeline ends with an UNWATCH, and a step's WATCH must outlive its reads
        until its MULTI/EXEC."""
        conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except self._redis.ResponseError as exc:
                replies.append(exc)
        return replies

    def _attempt(self, key: str, change: Callable[[Budget], T], delta: Counter[Entry],
                 sends: bool, forget_before: float | None) -> T:
        conn = self._pool.get_connection()
        try:
            result = self._step(conn, key, change, delta, sends, forget_before)
        except self._redis.WatchError:
            raise  # EXEC ended the watch: the connection is clean
        except BaseException:
            conn.disconnect()  # a watch or half-read replies may be left on it
            raise
        finally:
            self._pool.release(conn)
        return result

    def _step(self, conn: Any, key: str, change: Callable[[Budget], T], delta: Counter[Entry],
              sends: bool, forget_before: float | None) -> T:
        main, log_key = self._names(key)
        read: list[tuple[Any, ...]] = [("WATCH", main, log_key), ("TIME",), ("HGETALL", main),
                                       ("GET", f"{self.prefix}instance")]
        wanted = sorted({bucket_of(at) for at, _ in delta})
        if sends:
            read.append(("ZRANGE", log_key, 0, -1))
        elif wanted:  # a batched write reads only the rows it changes (and those between)
            read.append(("ZRANGEBYSCORE", log_key, wanted[0], wanted[-1]))
        before = time.time()
        replies = self._exchange(conn, read)
        if not isinstance(replies[1], Exception):
            sec, usec = replies[1]
            self._clock_sample(before, time.time(), int(sec) + int(usec) / 1e6)
        if replies[3] != self.opened:
            raise _Lost
        fields, rows = _check(main, replies)
        leases = {name[6:]: _lease(text) for name, text in fields.items()
                  if name.startswith("lease:")}
        done = change_budget(fields.get("state"), leases,
                             [(at, kind, n) for (_, kind), (n, at) in sorted(rows.items())]
                             if sends else None, change, delta)
        write: list[tuple[Any, ...]] = []
        if done.state is not None:
            write.append(("HSET", main, "app", MARK, "state", done.state))
        if done.gone:
            write.append(("HDEL", main, *(f"lease:{i}" for i in done.gone)))
        for i, lease in done.leases.items():
            write.append(("HSET", main, f"lease:{i}", json.dumps(list(lease))))
        write += _row_writes(log_key, rows, done.sends)
        if forget_before is not None:
            write.append(("ZREMRANGEBYSCORE", log_key, "-inf", f"({bucket_of(forget_before)}"))
        write += [("EXPIRE", main, IDLE_S), ("EXPIRE", log_key, IDLE_S)]
        replied = self._exchange(conn, [("MULTI",), *write, ("EXEC",)])
        executed = replied[-1]
        if executed is None:
            raise self._redis.WatchError("the key changed since it was read")
        for reply in (*replied[:-1], *(executed if isinstance(executed, list) else [executed])):
            if isinstance(reply, Exception):
                raise reply
        return done.result

    def snapshot(self, now: float | None = None) -> list[KeyState]:
        """Every key's state in this Redis under the prefix (see
        :class:`~omni_nb.ratelimit.store.KeyState`), by digest; keys not ours are skipped.

        Example:
            ``RedisBudgetStore(address).snapshot()`` gives ``[KeyState(key='…', …), …]``.
        """
        at = self.clock() if now is None else now
        out = []
        for name in self._digests():
            try:
                b = self.update(name, lambda budget: budget)
            except StoreError:
                continue  # another application's key under our prefix: not shown, not touched
            out.append(key_state(name, b, at))
        return out

    def _digests(self) -> list[str]:
        with self._lock:
            try:
                found = {name[len(self.prefix) + 1:].partition("}")[0]
                         for name in self._client.scan_iter(match=f"{self.prefix}{{*}}*",
                                                            count=500)}
            except self._redis.RedisError as exc:
                raise _unreachable(self.where, exc) from None
        return sorted(found)

    def clear(self, key: str | None = None) -> int:
        """Drop a key's (or every key's) leases, pause, learned limit and sends; returns how
        many keys had any. Keys under the prefix that are not ours are left as they are.

        Example:
            ``RedisBudgetStore(address).clear()`` gives 2 when two keys had a budget.
        """
        names = self._digests() if key is None else [key]
        cleared = 0
        with self._lock:
            for name in names:
                main, log_key = self._names(name)
                try:
                    kinds = (self._client.type(main), self._client.type(log_key))
                    # HGET only on a hash: on another type it is refused (WRONGTYPE).
                    ours = (kinds[0] == "none" or (kinds[0] == "hash" and self._client.hget(
                        main, "app") == MARK)) and kinds[1] in ("none", "zset")
                    if ours and kinds != ("none", "none"):
                        self._client.delete(main, log_key)
                        cleared += 1
                except self._redis.RedisError as exc:
                    raise _unreachable(self.where, exc) from None
        return cleared

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._pool.disconnect()


def _unreachable(where: str, exc: BaseException) -> StoreError:
    return StoreError(f"budget store {where} cannot be reached ({_words(exc)})")


def _words(exc: BaseException) -> str:
    """A connection error in a few words (redis-py's text names host and port, never the
    password)."""
    text = str(exc).strip().rstrip(".")
    for words in ("Connection refused", "Timeout", "timed out", "No such file",
                  "Name or service not known", "Connection reset", "Connection closed"):
        if words.lower() in text.lower():
            return words
    return text or type(exc).__name__


def _lease(text: str) -> log.Lease:
    n, per, expires, holder = json.loads(text)
    return int(n), float(per), float(expires), str(holder)


def _check(main: str, replies: list[Any]
           ) -> tuple[dict[str, str], dict[tuple[int, int], Row]]:
    """The key's hash and log rows from a step's replies (WATCH, TIME, HGETALL, GET[, ZRANGE]),
    after checking both are ours (else :class:`_Foreign`)."""
    for reply in replies:
        if isinstance(reply, Exception):
            if "WRONGTYPE" in str(reply):
                raise _Foreign(f"its key {main} (or its :sends) holds another application's "
                               "data")
            raise reply
    flat = replies[2]  # RESP2 gives a flat list, RESP3 a map
    fields = (dict(flat) if isinstance(flat, dict)
              else dict(zip(flat[::2], flat[1::2], strict=True)))
    if fields and fields.get("app") != MARK:
        raise _Foreign(f"its key {main} holds another application's data")
    rows: dict[tuple[int, int], Row] = {}
    for member in replies[4] if len(replies) > 4 else ():
        bucket, kind, n, at = member.split(":")
        rows[(int(bucket), int(kind))] = (int(n), float(at))
    return fields, rows


def _row_writes(log_key: str, rows: dict[tuple[int, int], Row], change: Counter[Entry]
                ) -> list[tuple[Any, ...]]:
    """The commands that apply +n / -n per entry to the log's rows as the SQLite store does
    (an added send raises its bucket's count and latest time; a removed one lowers the
    count; a row at zero goes)."""
    new = dict(rows)
    for (at, kind), n in change.items():
        if n > 0:
            slot = (bucket_of(at), kind)
            old = new.get(slot)
            new[slot] = (old[0] + n, max(old[1], at)) if old else (n, at)
    for (at, kind), n in change.items():
        slot = (bucket_of(at), kind)
        if n < 0 and slot in new:
            new[slot] = (new[slot][0] + n, new[slot][1])
    out: list[tuple[Any, ...]] = []
    for slot, row in new.items():
        if rows.get(slot) == row:
            continue
        if slot in rows:
            out.append(("ZREM", log_key, _member(slot, rows[slot])))
        if row[0] > 0:
            out.append(("ZADD", log_key, slot[0], _member(slot, row)))
    return out


def _member(slot: tuple[int, int], row: Row) -> str:
    return f"{slot[0]}:{slot[1]}:{row[0]}:{row[1]!r}"


def open_at(place: Path | RedisAddress) -> Store:
    """The store at ``place``: a path (SQLite) or a Redis address (redis-py imported only
    then). Raises :class:`StoreError` when it cannot be used now.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     store = open_at(Path(tmp) / "b.sqlite3")
        ...     store.close()
        >>> type(store).__name__
        'BudgetStore'
    """
    if isinstance(place, Path):
        return BudgetStore(place)
    return RedisBudgetStore(place)  # (redis-py is imported then, not with this module)
