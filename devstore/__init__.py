"""devstore: a local Shopify for development, the demo, tests and benchmarks.

It runs as its own HTTP server process (`python manage.py devstore`) with its own SQLite state.
The app reaches it only through configuration (a per-shop base URL); production code never
imports this package.
"""
