"""The ledger room (omni_nb.ledger): rows committed as they arrive, read back by run, time and
API root, resume's view of ok rows, where the ledger lives, and sharing one file."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from omni_nb import OmniClient, create_draft, create_drafts, sandbox
from omni_nb.errors import LedgerError, OmniError
from omni_nb.ledger import APPLICATION_ID, SCHEMA_VERSION, Ledger, open_ledger, results
from omni_nb.rows import Row
from omni_nb.table import frame_from_rows

from ..conftest import V0_LEDGER_SCHEMA

ROOT_A = "https://a.omniapp.co/api"
ROOT_B = "https://b.omniapp.co/api"
BRANCH = "081c8cec-a997-5c87-9f41-00dd4e31bc04"
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds


def row(doc: str = "doc-1", branch: str | None = None, draft: str | None = "d1",
        status: str = "ok", *, at: int = T0, root: str = ROOT_A, run: str = "r1") -> Row:
    """A ledger row; only the fields a test cares about vary."""
    http_status = {"ok": 200, "not_found": 404, "invalid": None}.get(status, 500)
    return Row(doc, branch, draft if status == "ok" else None, status, http_status,
               "" if status == "ok" else "why", 1, 0.25, at, root, run)


def test_record_is_committed_when_it_returns(tmp_path: Path) -> None:
    """Rows are committed by record() itself: another connection sees them at once."""
    path = tmp_path / "l.sqlite3"
    led = Ledger(path)
    led.record([row("doc-1"), row("doc-2", status="not_found")])
    with sqlite3.connect(path) as other:
        seen = other.execute("SELECT document_id, status FROM calls ORDER BY id").fetchall()
    assert seen == [("doc-1", "ok"), ("doc-2", "not_found")]


def test_a_failing_record_stores_none_of_its_rows(tmp_path: Path) -> None:
    """record() is one transaction: a refused row rolls back its whole batch."""
    led = Ledger(tmp_path / "l.sqlite3")
    bad = row("doc-2")
    bad.document_id = None  # type: ignore[assignment]  # NOT NULL in the schema
    with pytest.raises(sqlite3.IntegrityError):
        led.record([row("doc-1"), bad])
    assert led.rows() == []
    led.record([row("doc-3")])
    assert [r[0] for r in led.rows()] == ["doc-3"]


def test_results_read_back_the_rows_with_the_tables_dtypes(tmp_path: Path) -> None:
    """results() gives the recorded rows with the batch table's columns, values and dtypes."""
    rows = [row("doc-1", BRANCH), row("doc-2", status="not_found", at=T0 + 5),
            row("bad/x", status="invalid", at=T0 + 9)]
    led = Ledger(tmp_path / "l.sqlite3")
    led.record(rows)
    pd.testing.assert_frame_equal(pd.DataFrame(led.results()),
                                  pd.DataFrame(frame_from_rows(rows)))


def test_ok_rows_are_the_latest_ok_per_pair_for_one_api_root(tmp_path: Path) -> None:
    """ok_rows() is the newest ok row per asked pair, for that API root only."""
    led = Ledger(tmp_path / "l.sqlite3")
    led.record([
        row("doc-1", draft="old", run="r1"),
        row("doc-1", draft="new", run="r2"),
        row("doc-1", status="not_found", run="r3"),  # a later failure does not hide the ok
        row("doc-1", BRANCH, draft="on-branch"),
        row("doc-2", draft="other-root", root=ROOT_B),
        row("doc-3", status="not_found"),
        row("doc-4", draft="not-asked"),
    ])
    pairs = [("doc-1", None), ("doc-1", BRANCH), ("doc-2", None), ("doc-3", None)]
    found = led.ok_rows(ROOT_A, pairs)
    assert {pair: r.draft_id for pair, r in found.items()} == {
        ("doc-1", None): "new", ("doc-1", BRANCH): "on-branch",
    }
    assert found[("doc-1", None)].run_id == "r2"
    assert {p: r.draft_id for p, r in led.ok_rows(ROOT_B, pairs).items()} == {
        ("doc-2", None): "other-root"}


def test_results_filter_by_run_since_and_api_root(tmp_path: Path) -> None:
    """results() filters by run id, by time (naive ISO is UTC) and by API root."""
    path = tmp_path / "l.sqlite3"
    open_ledger(path).record([
        row("doc-1", at=T0, run="r1"),
        row("doc-2", at=T0 + 1_000_000, run="r2"),
        row("doc-3", at=T0 + 2_000_000, run="r2", root=ROOT_B),
    ])

    def docs(**filters: object) -> list[str]:
        return list(results(ledger=path, **filters)["document_id"])  # type: ignore[arg-type]

    assert docs() == ["doc-1", "doc-2", "doc-3"]
    assert docs(run_id="r2") == ["doc-2", "doc-3"]
    assert docs(since=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)) == ["doc-2", "doc-3"]
    assert docs(since="2026-01-01T00:00:02") == ["doc-3"]
    assert docs(since="2026-01-01T01:00:01+01:00") == ["doc-2", "doc-3"]
    assert docs(api_root=ROOT_B) == ["doc-3"]
    assert docs(run_id="r2", api_root=ROOT_A) == ["doc-2"]
    assert docs(run_id="nope") == []


def test_off_keeps_rows_in_memory_and_writes_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """OMNI_NB_LEDGER=off is one shared in-memory ledger: rows readable, no file."""
    monkeypatch.setenv("OMNI_NB_LEDGER", "off")
    monkeypatch.chdir(tmp_path)
    led = open_ledger()
    assert led.path is None
    assert open_ledger("memory") is led
    assert open_ledger(":memory:") is led
    led.record([row("doc-1", run="mem-run")])
    assert list(results(run_id="mem-run")["document_id"]) == ["doc-1"]
    assert list(tmp_path.iterdir()) == []


def test_ledgers_are_shared_per_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """open_ledger() gives one Ledger per file, however the path is spelled."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "l.sqlite3"
    led = open_ledger(path)
    assert open_ledger(str(path)) is led
    assert open_ledger("l.sqlite3") is led
    assert open_ledger(tmp_path / "other.sqlite3") is not led
    monkeypatch.setenv("OMNI_NB_LEDGER", str(path))
    assert open_ledger() is led
    own = Ledger(None)
    assert open_ledger(own) is own


def test_a_file_ledger_is_in_wal_mode(tmp_path: Path) -> None:
    """A file ledger uses SQLite's write-ahead log: the -wal file exists once a row is in."""
    path = tmp_path / "l.sqlite3"
    Ledger(path).record([row()])
    assert Path(f"{path}-wal").exists()
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_two_ledger_objects_on_one_path_both_write(tmp_path: Path) -> None:
    """Two connections to one file (two Ledger objects) interleave writes; each sees all."""
    path = tmp_path / "l.sqlite3"
    first, second = Ledger(path), Ledger(path)
    for i in range(5):
        first.record([row(f"doc-{i}", run="first")])
        second.record([row(f"doc-{i}", run="second")])
    for led in (first, second):
        assert led.results()["run_id"].value_counts().to_dict() == {"first": 5, "second": 5}


def test_two_processes_write_the_ledger_at_once(tmp_path: Path) -> None:
    """Two processes appending 300 rows each to one ledger both succeed; all 600 are there."""
    ledger = tmp_path / "shared.sqlite3"
    script = textwrap.dedent(f"""
        import sys
        from omni_nb.ledger import open_ledger
        from omni_nb.rows import Row
        led = open_ledger({str(ledger)!r})
        for i in range(300):
            led.record([Row(f"doc-{{i}}", None, "d", "ok", 200, "", 1, 0.0, 0,
                            "https://a.omniapp.co/api", sys.argv[1])])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    df = results(ledger=ledger)
    assert df["run_id"].value_counts().to_dict() == {"a": 300, "b": 300}


def test_record_outcome_logs_every_client_call(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """record_outcome logs each client call under run id 'client', never the token."""
    path = tmp_path / "l.sqlite3"
    led = open_ledger(path)
    with OmniClient(sb.base_url, sb.token, rate_limit=None,
                    on_result=led.record_outcome) as client:
        draft = client.create_draft("doc-0001")
        client.create_draft_outcome("nope")
    table = led.results()
    assert list(table["document_id"]) == ["doc-0001", "nope"]
    assert list(table["status"]) == ["ok", "not_found"]
    assert table["draft_id"].iloc[0] == draft.identifier
    assert set(table["run_id"]) == {"client"}
    assert set(table["api_root"]) == {sb.base_url}
    stored = b"".join(f.read_bytes() for f in tmp_path.glob("l.sqlite3*"))  # with -wal
    assert table["draft_id"].iloc[0].encode() in stored
    assert sb.token.encode() not in stored


# -- opening: our files only, checked before anything is written -----------------------------

V0_SCHEMA = V0_LEDGER_SCHEMA
#: The columns each legacy version added to v0 (see ledger._ADDED).
ADDED_BY = {
    0: "",
    1: "ALTER TABLE calls ADD COLUMN queued_s REAL NOT NULL DEFAULT 0;"
       "ALTER TABLE calls ADD COLUMN key TEXT;",
    2: "ALTER TABLE calls ADD COLUMN queued_s REAL NOT NULL DEFAULT 0;"
       "ALTER TABLE calls ADD COLUMN key TEXT;"
       "ALTER TABLE calls ADD COLUMN action TEXT NOT NULL DEFAULT 'create';"
       "ALTER TABLE calls ADD COLUMN from_ledger INTEGER NOT NULL DEFAULT 0;",
}
V0_ROW = ("INSERT INTO calls (document_id, draft_id, status, attempts, elapsed_s, "
          "requested_at_us, api_root, run_id) VALUES ('doc-1', 'd1', 'ok', 1, 0.1, 1, "
          "'https://a/api', 'old')")


def make_db(path: Path, script: str, *, pragmas: str = "") -> None:
    """An SQLite file made by someone else (rollback journal, as most programs leave it)."""
    conn = sqlite3.connect(path)
    conn.executescript(script + pragmas)
    conn.commit()
    conn.close()


def snapshot(path: Path) -> tuple[str, list[str]]:
    """The file's hash and what lies beside it: a refusal must change neither."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest, sorted(p.name for p in path.parent.iterdir())


def refused(path: Path, *fragments: str) -> LedgerError:
    with pytest.raises(LedgerError) as info:
        Ledger(path)
    message = str(info.value)
    assert str(path) in message
    assert "OMNI_NB_LEDGER=off" in message
    assert "another path" in message
    for fragment in fragments:
        assert fragment in message
    assert isinstance(info.value, OmniError)
    assert info.value.path == str(path)
    assert info.value.result is None
    return info.value


def test_garbage_bytes_are_refused_and_left_untouched(tmp_path: Path) -> None:
    """A file that is not SQLite is refused naming the path and the ways out; its bytes are
    unchanged and no -wal or -shm appears beside it."""
    path = tmp_path / "notes.sqlite3"
    path.write_bytes(bytes(range(256)) * 40)
    before = snapshot(path)
    refused(path, "not an SQLite database")
    assert snapshot(path) == before


@pytest.mark.parametrize(
    ("script", "why"),
    [
        ("CREATE TABLE calls (id INTEGER PRIMARY KEY, who TEXT, at INTEGER);",
         "its calls table has at, id, who"),
        (V0_SCHEMA + "CREATE TABLE contacts (name TEXT);", "it holds contacts"),
        (V0_SCHEMA + "CREATE VIEW ok AS SELECT * FROM calls;", "it holds ok"),  # noqa: S608
        (V0_SCHEMA + "PRAGMA application_id = 1234;", "application_id 0x000004d2"),
        (V0_SCHEMA + "PRAGMA user_version = 3;", "user_version 3"),
        ("PRAGMA user_version = 12;", "empty, user_version 12"),
    ],
    ids=["own-calls-table", "extra-table", "extra-view", "other-app-id", "unknown-version",
         "empty-with-version"],
)
@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_another_programs_database_is_refused_and_left_untouched(
    tmp_path: Path, script: str, why: str, journal: str,
) -> None:
    """Another program's SQLite file (even with a calls table, even with our exact columns
    beside a table of its own) is refused; not one byte changes, nothing appears beside it
    (no -wal, no -shm, even for a file in WAL mode), and its journal mode stays its own."""
    path = tmp_path / "other.db"
    make_db(path, script, pragmas=f"PRAGMA journal_mode = {journal};")
    before = snapshot(path)
    refused(path, "another program's SQLite database", why)
    assert snapshot(path) == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == (journal,)
    with pytest.raises(LedgerError):
        open_ledger(path)  # refused through the shared entry too, and not remembered


@pytest.mark.parametrize("version", [0, 1, 2])
@pytest.mark.parametrize("indexes", [True, False], ids=["with-indexes", "bare-table"])
def test_a_ledger_from_before_the_application_id_is_taken_and_stamped(
    tmp_path: Path, version: int, indexes: bool,
) -> None:
    """A ledger written before the application id (user_version 0-2, its exact table, with or
    without its indexes) is ours: opened, migrated in place, stamped, its rows kept."""
    path = tmp_path / f"v{version}.sqlite3"
    script = V0_SCHEMA if indexes else V0_SCHEMA.split("CREATE INDEX")[0]
    make_db(path, script + ADDED_BY[version] + V0_ROW + ";",
            pragmas=f"PRAGMA user_version = {version};")
    led = Ledger(path)
    led.record([row("doc-2", run="new")])
    table = led.results()
    assert list(table["run_id"]) == ["old", "new"]
    assert list(table["action"]) == ["create", "create"]
    led.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"calls_run", "calls_when", "calls_ok"} <= names


def test_a_newer_ledger_of_ours_is_opened_as_it_is(tmp_path: Path) -> None:
    """Our application id with a newer schema (a column this version does not know): opened,
    written, read, never downgraded; migrations are additive, so nothing here is missing."""
    path = tmp_path / "newer.sqlite3"
    Ledger(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE calls ADD COLUMN comes_later TEXT")
        conn.execute("CREATE TABLE later_things (x)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    led = Ledger(path)
    led.record([row("doc-1")])
    assert list(led.results()["document_id"]) == ["doc-1"]
    led.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 5,)


def test_an_application_id_stamped_under_wal_is_read_through_sqlite(tmp_path: Path) -> None:
    """A ledger whose newest header is still in its -wal (a kernel was killed before any
    checkpoint) reads as ours: the check asks SQLite, not the main file's stale header."""
    path = tmp_path / "l.sqlite3"
    first = Ledger(path)
    first.record([row("doc-1")])
    assert path.read_bytes()[68:72] == b"\0\0\0\0"  # the main file does not know it yet
    second = Ledger(path)  # while the first still holds the -wal
    assert len(second.rows()) == 1
    first.close()
    second.close()


@pytest.mark.parametrize("content", [None, b""], ids=["absent", "empty-file"])
def test_a_missing_or_empty_file_is_ours_to_make(tmp_path: Path, content: bytes | None) -> None:
    """Nothing at the path, or an empty file: a new ledger, stamped with our id; a missing
    directory is made."""
    path = tmp_path / "new" / "dir" / "l.sqlite3"
    if content is not None:
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    Ledger(path).record([row()])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert conn.execute("SELECT count(*) FROM calls").fetchone() == (1,)


def test_a_place_that_cannot_hold_a_ledger_is_refused(tmp_path: Path) -> None:
    """A directory at the path, or a directory that cannot be made (its parent is a file):
    LedgerError naming the path, and nothing made."""
    (tmp_path / "a-dir.sqlite3").mkdir()
    refused(tmp_path / "a-dir.sqlite3", "a directory, not a file")
    (tmp_path / "plain-file").write_text("x")
    refused(tmp_path / "plain-file" / "sub" / "l.sqlite3", "its directory cannot be made")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-dir.sqlite3", "plain-file"]


def test_a_bad_ledger_stops_a_batch_and_a_single_call_before_anything_is_sent(
    sb: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """create_drafts (foreground and background), create_draft and results() all refuse a
    ledger that is not ours before a request leaves (the configured one, OMNI_NB_LEDGER)."""
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"not a database at all\n" * 100)
    monkeypatch.setenv("OMNI_NB_LEDGER", str(path))
    kw = {"base_url": sb.base_url, "token": sb.token, "rate_limit": None}
    for call in (lambda: create_drafts(["doc-0001", "doc-0002"], **kw),
                 lambda: create_drafts(["doc-0001"], background=True, **kw),
                 lambda: create_draft("doc-0001", **kw),
                 lambda: results()):
        with pytest.raises(LedgerError, match="OMNI_NB_LEDGER=off"):
            call()
    assert sb.requests() == []
    assert path.read_bytes() == b"not a database at all\n" * 100


def test_a_write_the_place_refuses_is_a_ledger_error(tmp_path: Path) -> None:
    """A write that fails for the place (here: locked past the busy timeout) is a LedgerError
    naming the path; none of its rows is stored; the ledger works again once it is free."""
    path = tmp_path / "l.sqlite3"
    led = Ledger(path, busy_timeout_s=0.01)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(LedgerError, match="database is locked") as info:
        led.record([row("doc-1"), row("doc-2")])
    assert info.value.path == str(path)
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    other.execute("ROLLBACK")
    other.close()
    assert led.rows() == []
    led.record([row("doc-3")])
    assert [r[0] for r in led.rows()] == ["doc-3"]
