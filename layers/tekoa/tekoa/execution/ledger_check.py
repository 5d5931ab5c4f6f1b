"""The ledger's invariants for one account, checked against the database.

Reconciliation runs it every minute on the accounts whose ledger moved; the API runs it when
a user asks (`GET /v1/accounts/{id}/ledger-check`). Imports nothing heavy: the API uses it.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from tekoa.db import ledger as ledger_rows
from tekoa.db.connection import Database, tenant_transaction
from tekoa.execution.ledger import Book


def ledger_problems(database: Database, user_id: UUID, account_id: UUID) -> list[str]:
    """What is wrong with one account's books (empty: nothing): stored balances that differ
    from the sums of their entries, postings that do not balance, held books that differ from
    what working orders hold, and negative spendable books."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        stored = _nonzero(ledger_rows.books(conn, user_id, account_id))
        rebuilt = _nonzero(ledger_rows.entry_sums(conn, user_id, account_id))
        unbalanced = ledger_rows.unbalanced_postings(conn, user_id, account_id)
        by_orders = {a: v for a, v in ledger_rows.held_by_orders(conn, user_id, account_id).items() if v}
    problems = []
    if stored != rebuilt:
        keys = sorted(set(stored) | set(rebuilt))
        diff = [
            f"{a} {b}: stored {stored.get((a, b), 0)} vs entries {rebuilt.get((a, b), 0)}"
            for a, b in keys
            if stored.get((a, b)) != rebuilt.get((a, b))
        ]
        problems.append("balances differ from the ledger (" + ", ".join(diff) + ")")
    if unbalanced:
        problems.append(f"{unbalanced} postings do not balance")
    held = {asset: v for (asset, book), v in stored.items() if book is Book.HELD}
    if held != by_orders:
        problems.append(f"held {held} but working orders hold {by_orders}")
    negative = [f"{a} {b}" for (a, b), v in stored.items() if b in (Book.AVAILABLE, Book.HELD) and v < 0]
    if negative:
        problems.append("negative books: " + ", ".join(negative))
    return problems


def _nonzero(books: dict[tuple[str, Book], Decimal]) -> dict[tuple[str, Book], Decimal]:
    return {key: value for key, value in books.items() if value != 0}
