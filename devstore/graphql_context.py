"""Per-request context for the Admin API resolvers, and Shopify's access-scope errors."""
from __future__ import annotations

import datetime as dt
import sqlite3
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from graphql import GraphQLError, GraphQLResolveInfo

from .config import DevstoreConfig
from .state import DevStore, iso
from .topics import Scope, scope_granted, scope_text

if TYPE_CHECKING:
    from .bulk import BulkRunner

# Without read_all_orders an app sees only the last 60 days of orders
# (https://shopify.dev/docs/api/usage/access-scopes#orders-permissions).
RECENT_ORDER_DAYS = 60
ACCESS_SCOPES_DOC = "https://shopify.dev/api/usage/access-scopes"


@dataclass
class BulkPage:
    """While a bulk query runs, the root connection is read page by page from `after`."""

    size: int
    after: str | None = None
    next_after: str | None = None
    has_next: bool = False


@dataclass
class RequestContext:
    store: DevStore
    config: DevstoreConfig
    shop: str
    shop_row: sqlite3.Row
    api_key: str
    scopes: frozenset[str]
    api_version: str
    now: dt.datetime
    bulk: BulkRunner
    bulk_page: BulkPage | None = None       # set only inside a bulk query
    search_warnings: list[dict] = field(default_factory=list)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.conn()

    @property
    def in_bulk(self) -> bool:
        return self.bulk_page is not None

    @property
    def currency(self) -> str:
        return self.shop_row["currency"]

    def granted(self, scope: Scope) -> bool:
        return scope_granted(set(self.scopes), scope)

    def order_cutoff(self) -> str | None:
        """Oldest created_at this app may read, or None with read_all_orders."""
        if "read_all_orders" in self.scopes:
            return None
        return iso(self.now - dt.timedelta(days=RECENT_ORDER_DAYS))

    def app_namespace(self) -> str:
        """What `$app` (or an omitted namespace) means for metafields: this app's reserved namespace."""
        return f"app--{app_numeric_id(self.api_key)}"


def app_numeric_id(api_key: str) -> int:
    """A stable numeric id for an app (devstore has no app ids of its own)."""
    return zlib.crc32(api_key.encode()) or 1


def access_denied(info: GraphQLResolveInfo, scope: Scope, also: str | None = None) -> GraphQLError:
    """`scope` may be alternatives (a tuple), any one of which would do. `also` is what Shopify adds
    after the scope when a field needs more (another scope, say)."""
    required = f"{scope_text(scope)}." + (f" Also: {also}" if also else "")
    return GraphQLError(
        f"Access denied for {info.field_name} field. Required access: {required}",
        nodes=info.field_nodes, path=info.path.as_list(),
        extensions={"code": "ACCESS_DENIED", "documentation": ACCESS_SCOPES_DOC, "requiredAccess": required},
    )


def require(ctx: RequestContext, info: GraphQLResolveInfo, scope: Scope) -> None:
    if not ctx.granted(scope):
        raise access_denied(info, scope)
