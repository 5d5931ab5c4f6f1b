"""Entry point of the market-stream container: the service lives in `tekoa.market.stream.service`."""

from __future__ import annotations

from tekoa.market.stream.service import main

if __name__ == "__main__":
    main()
