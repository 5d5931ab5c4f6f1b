"""The ledger: postings in, balances out.

`post` writes postings as ONE statement; the table's trigger checks that each posting balances
and adds it to `balances` in the same statement, so stored balances are sums of entries by
construction. Overdrafts fail there too (`balances_spendable_never_negative`) and surface as
`InsufficientBalance`, although the executor checks before it posts and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from tekoa.db import bulk
from tekoa.domain.execution import AssetBalance, InsufficientBalance
from tekoa.execution.ledger import Book, Posting

Books = dict[tuple[str, Book], Decimal]


_ENTRY_COLUMNS = (
    ("number", "int"),
    ("user_id", "uuid"),
    ("account_id", "uuid"),
    ("kind", "text"),
    ("asset", "text"),
    ("book", "text"),
    ("amount", "numeric"),
    ("order_id", "uuid"),
    ("fill_id", "uuid"),
)


# A posting id per posting from the sequence, joined to its entries in the same statement.
_INSERT_ENTRIES = (
    "INSERT INTO ledger_entries (user_id, account_id, posting_id, kind, asset, book, amount, order_id,"  # noqa: S608 -- fixed identifiers
    " fill_id) SELECT v.user_id, v.account_id, p.id, v.kind, v.asset, v.book, v.amount, v.order_id, v.fill_id"
    f" FROM {bulk.recordset(_ENTRY_COLUMNS)}"
    " JOIN (SELECT n, nextval('ledger_posting_id') AS id FROM generate_series(1, %s) AS n) AS p"
    " ON p.n = v.number"
)


@dataclass(frozen=True, slots=True)
class PostingRow:
    """A posting and whose it is: the owner, the account, and the order and fill it belongs to."""

    user_id: UUID
    account_id: UUID
    posting: Posting
    order_id: UUID | None = None
    fill_id: UUID | None = None


def post(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    account_id: UUID,
    postings: Sequence[Posting],
    *,
    order_id: UUID | None = None,
    fill_id: UUID | None = None,
) -> None:
    """Write `postings` (each balanced) of one account in one statement."""
    post_rows(conn, [PostingRow(user_id, account_id, p, order_id, fill_id) for p in postings])


def post_rows(conn: psycopg.Connection[Any], rows: Sequence[PostingRow]) -> None:
    """Write postings (each balanced, any accounts) in one statement.

    A posting id per posting comes from the sequence, joined to its entries in the same
    statement; the table's trigger checks each posting balances and adds it to `balances`.
    Postings must be written under their accounts' row locks (the trigger creates books).
    """
    rows = [row for row in rows if not row.posting.empty]
    if not rows:
        return
    entries = [
        (
            number,
            row.user_id,
            row.account_id,
            row.posting.kind.value,
            e.asset,
            e.book.value,
            e.amount,
            row.order_id,
            row.fill_id,
        )
        for number, row in enumerate(rows, start=1)
        for e in row.posting.entries
    ]
    try:
        conn.execute(_INSERT_ENTRIES, (bulk.document(_ENTRY_COLUMNS, entries), len(rows)))
    except psycopg.errors.CheckViolation as exc:
        if exc.diag.constraint_name == "balances_spendable_never_negative":
            raise InsufficientBalance("the account's balance cannot cover this") from None
        raise


def books(conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID) -> Books:
    """Every stored book of the account: {(asset, book): amount}."""
    rows = conn.execute(
        "SELECT asset, book, amount FROM balances WHERE user_id = %s AND account_id = %s",
        (user_id, account_id),
    ).fetchall()
    return {(asset, Book(book)): amount for asset, book, amount in rows}


def available(conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID, asset: str) -> Decimal:
    """What the account may spend of `asset` now."""
    row = conn.execute(
        "SELECT amount FROM balances WHERE user_id = %s AND account_id = %s AND asset = %s AND book ="
        " 'available'",
        (user_id, account_id, asset),
    ).fetchone()
    return Decimal(0) if row is None else Decimal(row[0])


def asset_balances(conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID) -> list[AssetBalance]:
    """Available and held per asset, for assets the account has or had."""
    rows = conn.execute(
        "SELECT asset, coalesce(sum(amount) FILTER (WHERE book = 'available'), 0),"
        " coalesce(sum(amount) FILTER (WHERE book = 'held'), 0)"
        " FROM balances WHERE user_id = %s AND account_id = %s AND book IN ('available', 'held')"
        " GROUP BY asset ORDER BY asset",
        (user_id, account_id),
    ).fetchall()
    return [AssetBalance(asset=asset, available=avail, held=held) for asset, avail, held in rows]


def entry_sums(conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID) -> Books:
    """The same books rebuilt from the entries alone (what reconciliation compares)."""
    rows = conn.execute(
        "SELECT asset, book, sum(amount) FROM ledger_entries WHERE user_id = %s AND account_id = %s"
        " GROUP BY asset, book",
        (user_id, account_id),
    ).fetchall()
    return {(asset, Book(book)): amount for asset, book, amount in rows}


def unbalanced_postings(conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID) -> int:
    """How many postings of the account do not sum to zero per asset (always 0, or a bug)."""
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM ledger_entries WHERE user_id = %s AND account_id = %s"
        " GROUP BY posting_id, asset HAVING sum(amount) <> 0) AS unbalanced",
        (user_id, account_id),
    ).fetchone()
    return int(row[0]) if row else 0


def held_by_orders(conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID) -> dict[str, Decimal]:
    """What the account's working orders hold, per asset (equals the held books)."""
    rows = conn.execute(
        "SELECT held_asset, sum(held_amount) FROM orders WHERE user_id = %s AND account_id = %s"
        " AND held_amount > 0 GROUP BY held_asset",
        (user_id, account_id),
    ).fetchall()
    return dict(rows)
