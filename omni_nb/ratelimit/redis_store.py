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

Why not Lua: the maths (spacing, leases, learning from 429s) stays in one place, Python, for
both stores; a transaction costs two round trips per step (watch and read; write).
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
from .store import BudgetStore, Entry, KeyState, Store, StoreError, apply_delta, deltas, key_state

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
        self.where = self.path = address.shown
        self.prefix = address.prefix
        self._lock = threading.Lock()
        self._patience = PATIENT_S
        self._offset, self._offset_err, self._offset_at = 0.0, math.inf, -math.inf
        redis = self._redis = _redis_module()
        retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)  # the link retries, not redis-py
        # One connection, used under this store's lock: a step's WATCH (sent with its reads)
        # and its MULTI/EXEC (a second pipeline) must go over the same connection.
        # No CLIENT SETINFO on connect (the minimal ACL grants no CLIENT): redis-py 7+ says
        # so with driver_info=None (its lib_name/lib_version warn as deprecated), older ones
        # with lib_name/lib_version.
        quiet: dict[str, None] = ({"driver_info": None} if hasattr(redis, "driver_info")
                                  else {"lib_name": None, "lib_version": None})
        self._pool = redis.BlockingConnectionPool.from_url(
            address.url, max_connections=1, timeout=None, decode_responses=True,
            socket_timeout=PATIENT_S, socket_connect_timeout=PATIENT_S, retry=retry,
            retry_on_error=[], **quiet)
        self._client = redis.Redis(connection_pool=self._pool, retry=retry)
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
            raise StoreError(f"budget store {self.where} cannot be reached ({_words(exc)})"
                             ) from None

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
        """Which Redis answers now (OSError when none does): a restart that lost the data
        answers with another (or no) marker.

        Example:
            >>> # RedisBudgetStore(address).identity() == store.opened while nothing happened
        """
        with self._lock:
            try:
                value = self._client.get(f"{self.prefix}instance")
            except self._redis.RedisError as exc:
                raise OSError(_words(exc)) from None
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
            >>> # store.clock() - time.time() is the offset measured from Redis TIME
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
            self._pool.connection_kwargs.update(socket_timeout=seconds,
                                                socket_connect_timeout=seconds)
            self._pool.disconnect()  # the next step connects with the new timeouts

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
                except _Foreign as exc:
                    self._unwatch()
                    raise StoreError(f"budget store {self.where}: {exc}; it is left as is"
                                     ) from None
                except _Lost:
                    # Found by a process that saw no outage (idle through a restart): the
                    # link makes the store anew at once, seeded with its sends, as the
                    # others that saw the outage do.
                    self._unwatch()
                    raise StoreError(f"budget store {self.where} {self.lost}") from None
                except (redis.RedisError, OSError) as exc:
                    self._pool.disconnect()  # no step may go on a connection in doubt
                    raise StoreError(f"budget store {self.where} cannot be reached "
                                     f"({_words(exc)})") from None
                except (KeyError, TypeError, ValueError, IndexError) as exc:
                    self._unwatch()
                    raise StoreError(f"budget store {self.where}: a key of ours holds what "
                                     f"omni_nb cannot read ({exc}); it is left as is") from None

    def _unwatch(self) -> None:
        try:
            self._client.execute_command("UNWATCH")
        except self._redis.RedisError:
            self._pool.disconnect()

    def _attempt(self, key: str, change: Callable[[Budget], T], delta: Counter[Entry],
                 sends: bool, forget_before: float | None) -> T:
        main, log_key = self._names(key)
        wanted = sorted({bucket_of(at) for at, _ in delta})
        read = self._client.pipeline(transaction=False)
        # Queued with the reads (execute_command would run a WATCH at once, alone).
        read.pipeline_execute_command("WATCH", main, log_key)
        read.type(main).type(log_key).time().hgetall(main).get(f"{self.prefix}instance")
        if sends:
            read.zrange(log_key, 0, -1)
        else:
            for bucket in wanted:
                read.zrangebyscore(log_key, bucket, bucket)
        before = time.time()
        replies = read.execute(raise_on_error=False)
        self._clock_sample(before, time.time(), replies[3][0] + replies[3][1] / 1e6)
        if replies[5] != self.opened:
            raise _Lost
        fields, rows = _check(main, log_key, replies[1], replies[2], replies[4], replies[6:])
        state = fields.get("state")
        leases = {name[6:]: _lease(text) for name, text in fields.items()
                  if name.startswith("lease:")}
        loaded: list[Entry] = []
        if sends:
            for (_bucket, kind), (n, at) in sorted(rows.items()):
                loaded.extend([(at, kind)] * max(0, n))
        entries = list(loaded)
        if sends:
            apply_delta(entries, delta)
        budget = (Budget.from_scalars(json.loads(state), entries) if state is not None
                  else Budget(sends=entries))
        budget.leases = dict(leases)
        before_state = budget.scalars()
        result = change(budget)
        write = self._client.pipeline(transaction=True)
        if state is None or budget.scalars() != before_state:
            write.hset(main, mapping={"app": MARK, "state": json.dumps(budget.scalars())})
        gone = [f"lease:{i}" for i in leases if i not in budget.leases]
        if gone:
            write.hdel(main, *gone)
        changed = {f"lease:{i}": json.dumps(list(lease)) for i, lease in budget.leases.items()
                   if leases.get(i) != lease}
        if changed:
            write.hset(main, mapping=changed)
        moved = (deltas(loaded, budget.sends) if sends
                 else Counter({entry: n for entry, n in delta.items() if n}))
        _write_rows(write, log_key, rows, moved)
        if forget_before is not None:
            write.zremrangebyscore(log_key, "-inf", f"({bucket_of(forget_before)}")
        write.expire(main, IDLE_S).expire(log_key, IDLE_S)
        write.execute()
        return result

    def snapshot(self, now: float | None = None) -> list[KeyState]:
        """Every key's state in this Redis under the prefix (see
        :class:`~omni_nb.ratelimit.store.KeyState`), by digest; keys not ours are skipped.

        Example:
            >>> # RedisBudgetStore(address).snapshot() -> [KeyState(key='…', …), …]
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
                raise StoreError(f"budget store {self.where} cannot be reached "
                                 f"({_words(exc)})") from None
        return sorted(found)

    def clear(self, key: str | None = None) -> int:
        """Drop a key's (or every key's) leases, pause, learned limit and sends; returns how
        many keys had any. Keys under the prefix that are not ours are left as they are.

        Example:
            >>> # RedisBudgetStore(address).clear() -> 2 (two keys' budgets dropped)
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
                    raise StoreError(f"budget store {self.where} cannot be reached "
                                     f"({_words(exc)})") from None
        return cleared

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._pool.disconnect()


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


def _check(main: str, log_key: str, main_type: Any, log_type: Any, fields: Any,
           members: list[Any]) -> tuple[dict[str, str], dict[tuple[int, int], Row]]:
    """The key's hash and log rows, after checking both are ours (else :class:`_Foreign`)."""
    for reply in (main_type, log_type, fields, *members):
        if isinstance(reply, Exception):
            if "WRONGTYPE" in str(reply):
                raise _Foreign(f"its key {main} holds another application's data")
            raise reply
    if main_type not in ("hash", "none") or log_type not in ("zset", "none"):
        raise _Foreign(f"its key {main if main_type not in ('hash', 'none') else log_key} "
                       "holds another application's data")
    if main_type == "hash" and fields.get("app") != MARK:
        raise _Foreign(f"its key {main} holds another application's data")
    rows: dict[tuple[int, int], Row] = {}
    for chunk in members:
        for member in chunk:
            bucket, kind, n, at = member.split(":")
            rows[(int(bucket), int(kind))] = (int(n), float(at))
    return dict(fields), rows


def _write_rows(write: Any, log_key: str, rows: dict[tuple[int, int], Row],
                change: Counter[Entry]) -> None:
    """Apply +n / -n per entry to the log's rows as the SQLite store does (an added send
    raises its bucket's count and latest time; a removed one lowers the count; a row at
    zero goes), queued on the transaction ``write``."""
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
    for slot, row in new.items():
        if rows.get(slot) == row:
            continue
        if slot in rows:
            write.zrem(log_key, _member(slot, rows[slot]))
        if row[0] > 0:
            write.zadd(log_key, {_member(slot, row): slot[0]})


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
