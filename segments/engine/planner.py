"""PostgreSQL planner settings for statements that read whole shops (the metrics rebuild, ranking
and full recomputes), set for the statements inside a block and restored after."""
from __future__ import annotations

from contextlib import contextmanager

# PostgreSQL settings for the rebuild's statements, which read whole shops:
# - work_mem: sorts and hashes over every order of a large shop; the default 4 MB spills to disk.
# - jit: the statements' estimates trip JIT compilation, which costs more than it saves here.
# - enable_indexscan: an index scan on (shop, customer, created_at) spares the sort the gaps need
#   but fetches the orders in random heap order, several times slower than a (parallel) sequential
#   scan and sort; bitmap scans stay, so a small shop in a shared database still reads by index.
# - parallel_tuple_cost: passing the joined line items up from parallel workers costs less than
#   the default estimate; at 0.01 the planner joins and sorts them in parallel (1.6x faster).
REBUILD_SETTINGS = {"work_mem": "256MB", "jit": "off", "enable_indexscan": "off", "parallel_tuple_cost": "0.01"}
# A full recompute's statement groups every order of the shop by customer, with a sum or count per
# rule feature (a dozen or more). In a hash table those states outgrow work_mem for a large shop and
# spill to disk; sorting the narrow order rows by customer and aggregating one customer at a time
# needs the memory of one customer (1M customers, 25 templates: 16.7 s hashed, 13.2 s sorted).
RECOMPUTE_SETTINGS = {**REBUILD_SETTINGS, "enable_hashagg": "off"}


@contextmanager
def planner_settings(cursor, settings: dict[str, str] = REBUILD_SETTINGS):
    """`settings` for the statements inside, then the caller's settings again."""
    names = list(settings)
    cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in names))
    before = dict(zip(names, cursor.fetchone()))
    for name, value in settings.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
    yield
    # Restored on success only: the settings are local to the transaction, so a failure's rollback
    # drops them, and a restore in an aborted transaction would raise and hide the failure's cause.
    for name, value in before.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
