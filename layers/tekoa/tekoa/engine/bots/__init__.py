"""The built-in bot types, each compiled against one market's data: scalper, grid, DCA, dip
and momentum. Each module's docstring states the bot's behaviour."""
