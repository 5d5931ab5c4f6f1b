"""tekoa.exchanges: the one place that knows exchanges.

* `capabilities`: what each venue can do (client order ids, look-ups, native stops).
* `rules`: market precision and limits, and the rounding and checks every order goes through.
* `clients`: the only code that builds ccxt clients (sync for the executor and reconciliation,
  async/pro for the market stream), and loads markets into `MarketRules`.
* `simulated`: the simulated exchange's markets.

Only `clients` imports ccxt, lazily: the API validates orders with `rules` and stays slim.
"""
