"""The store mirror's write side: typed records in, set-at-a-time upserts out.

Webhook payloads (REST shapes) and backfill/reconciliation results (GraphQL shapes) are parsed
into the records of `records.py` by their own modules; `writer.py` is the only code that writes
mirror rows, so the out-of-order guard and guest linking live in one place.
"""
