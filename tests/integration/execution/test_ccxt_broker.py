"""CcxtBroker through real ccxt against the loopback fake Binance: client ids on every order,
no blind retry of a create, look-ups by client id after a timeout or a duplicate answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from pydantic import SecretStr

from tekoa.domain.execution import Order, OrderStatus
from tekoa.domain.orders import OrderSide, OrderType
from tekoa.domain.resources import CredentialRejected, CredentialSecrets
from tekoa.errors import ServiceUnavailable
from tekoa.exchanges.capabilities import capabilities
from tekoa.exchanges.clients import build_client
from tekoa.execution.brokers import CcxtBroker, ExchangeRejected, ExchangeStatus
from tekoa.execution.credential_check import ExchangeCredentialVerifier
from tests.fakes.exchange import FakeBinance, FakeBinanceThread, OrderFault


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinanceThread() as running:
        yield running


def broker_for(fake: FakeBinance, timeout_ms: int = 1_000) -> CcxtBroker:
    client = build_client(
        "binance",
        credentials=CredentialSecrets(api_key=SecretStr("key-1234567890"), secret=SecretStr("s3cret")),
        url_overrides=fake.url_overrides(),
        timeout_ms=timeout_ms,
    )
    return CcxtBroker(client, "binance", capabilities("binance"), lookup_delay_s=0.05)


def order(side: OrderSide = OrderSide.BUY, type: OrderType = OrderType.MARKET, **fields: Any) -> Order:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": uuid4(),
        "account_id": uuid4(),
        "bot_id": None,
        "position_id": None,
        "client_order_id": f"tk{uuid4().hex}",
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "side": side,
        "type": type,
        "quantity": Decimal("0.01"),
        "limit_price": None,
        "stop_price": None,
        "reduce_only": False,
        "status": OrderStatus.SUBMITTED,
        "filled_quantity": Decimal(0),
        "average_price": None,
        "fees": {},
        "held_asset": None,
        "held_amount": Decimal(0),
        "exchange_order_id": None,
        "reason": None,
        "reject_code": None,
        "intent": {},
        "not_found_count": 0,
        "created_at": now,
        "updated_at": now,
        "submitted_at": now,
        "closed_at": None,
        **fields,
    }
    return Order.model_validate(values)


def test_a_market_order_carries_our_client_id_and_reports_its_trades(fake: FakeBinance) -> None:
    placed = order()

    report = broker_for(fake).place(placed)

    assert fake.create_requests[0]["newClientOrderId"] == placed.client_order_id
    assert (report.status, report.filled, report.client_order_id) == (
        ExchangeStatus.FILLED,
        Decimal("0.01"),
        placed.client_order_id,
    )
    (trade,) = report.trades
    assert (trade.quantity, trade.price, trade.fee, trade.fee_currency) == (
        Decimal("0.01"),
        Decimal("60000"),
        Decimal("0.6"),
        "USDT",
    )


def test_a_create_that_times_out_after_the_exchange_accepted_is_found_not_resent(fake: FakeBinance) -> None:
    fake.slow_answer_s = 2.0
    fake.script_next_order(OrderFault.ACCEPT_THEN_TIMEOUT)
    placed = order()

    report = broker_for(fake, timeout_ms=300).place(placed)

    assert len(fake.create_requests) == 1
    assert report.status is ExchangeStatus.FILLED
    assert report.client_order_id == placed.client_order_id


def test_a_duplicate_client_id_answer_means_find_the_existing_order(fake: FakeBinance) -> None:
    fake.script_next_order(OrderFault.DUPLICATE)
    placed = order()

    report = broker_for(fake).place(placed)

    assert len(fake.create_requests) == 1
    assert report.exchange_order_id == str(fake.order_by_client_id(placed.client_order_id).order_id)  # type: ignore[union-attr]


def test_a_rejected_order_is_reported_as_rejected_with_the_exchanges_reason(fake: FakeBinance) -> None:
    fake.script_next_order(OrderFault.REJECT)

    with pytest.raises(ExchangeRejected, match="insufficient balance"):
        broker_for(fake).place(order())


def test_a_partial_fill_reports_what_filled_and_stays_open(fake: FakeBinance) -> None:
    fake.script_next_order(OrderFault.PARTIAL_FILL)

    report = broker_for(fake).place(
        order(type=OrderType.LIMIT, limit_price=Decimal("60000"), quantity=Decimal("0.02"))
    )

    assert (report.status, report.filled, len(report.trades)) == (
        ExchangeStatus.PARTIALLY_FILLED,
        Decimal("0.01"),
        1,
    )


def test_an_order_the_exchange_never_saw_is_not_found(fake: FakeBinance) -> None:
    assert broker_for(fake).lookup(order()) is None


def test_a_resting_order_can_be_canceled(fake: FakeBinance) -> None:
    broker = broker_for(fake)
    resting = order(type=OrderType.LIMIT, limit_price=Decimal("50000"))
    placed = broker.place(resting)
    assert placed.status is ExchangeStatus.OPEN

    report = broker.cancel(resting.model_copy(update={"exchange_order_id": placed.exchange_order_id}))

    assert report is not None and report.status is ExchangeStatus.CANCELED


def test_a_credential_is_verified_by_a_signed_balance_request(fake: FakeBinance) -> None:
    verifier = ExchangeCredentialVerifier(url_overrides=fake.url_overrides())

    def secrets(key: str) -> CredentialSecrets:
        return CredentialSecrets(api_key=SecretStr(key), secret=SecretStr("s3cret"))

    verifier.verify("binance", secrets("key-working-1234"))
    fake.refused_api_keys.add("key-revoked-1234")
    with pytest.raises(CredentialRejected) as refused:
        verifier.verify("binance", secrets("key-revoked-1234"))
    fake.fail_next_rest(1)
    with pytest.raises(ServiceUnavailable):
        verifier.verify("binance", secrets("key-working-1234"))

    assert refused.value.field == "api_key" and "s3cret" not in str(refused.value)
    assert any(path.endswith("/account") for path, _ in fake.rest_requests)
