"""Tag add/remove on a shop's customers, orders and products, with the webhook events Shopify fires.

Semantics of `tagsAdd`/`tagsRemove` (https://shopify.dev/docs/api/admin-graphql/latest/mutations/tagsAdd):
set operations on the named tags only; `tags` is a list or a comma-separated string; whitespace is
trimmed; tags compare case-insensitively (the stored spelling wins); at most 255 characters each and
250 per resource. A call that changes nothing fires no webhook.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from .state import DevStore, Event, iso, parse_gid, utcnow

MAX_TAG_LENGTH = 255
MAX_TAGS = 250


@dataclass(frozen=True)
class _Taggable:
    table: str
    update_topic: str                     # the resource's own update webhook
    added_topic: str | None = None        # dedicated tag topics exist for customers only
    removed_topic: str | None = None


TAGGABLE: dict[str, _Taggable] = {
    "Customer": _Taggable("customers", "customers/update", "customer.tags_added", "customer.tags_removed"),
    "Order": _Taggable("orders", "orders/updated"),
    "Product": _Taggable("products", "products/update"),
}

# The scope a tag write needs, by resource kind.
WRITE_SCOPES = {"Customer": "write_customers", "Order": "write_orders", "Product": "write_products"}


@dataclass
class TagResult:
    kind: str | None                       # resource kind of the id, when it parsed
    id: int | None                         # resource id when the resource exists
    changed: list[str] = field(default_factory=list)
    errors: list[tuple[list[str], str]] = field(default_factory=list)   # (field path, message)


def resource_kind(gid_value: str) -> str | None:
    """`gid://shopify/Customer/7` -> "Customer" when it is a taggable kind."""
    for kind in TAGGABLE:
        if parse_gid(gid_value, kind) is not None:
            return kind
    return None


def normalize_tags(value: str | Iterable[str]) -> list[str]:
    """Split on commas, trim, drop blanks and case-insensitive duplicates (first spelling kept)."""
    parts = [value] if isinstance(value, str) else list(value)
    seen: set[str] = set()
    tags: list[str] = []
    for part in parts:
        for raw in str(part).split(","):
            tag = raw.strip()
            if tag and tag.lower() not in seen:
                seen.add(tag.lower())
                tags.append(tag)
    return tags


def add_tags(store: DevStore, shop: str, gid_value: str, tags: str | Iterable[str]) -> TagResult:
    return _change(store, shop, gid_value, tags, adding=True)


def remove_tags(store: DevStore, shop: str, gid_value: str, tags: str | Iterable[str]) -> TagResult:
    return _change(store, shop, gid_value, tags, adding=False)


def _resolve(gid_value: str) -> tuple[str | None, int | None, list[tuple[list[str], str]]]:
    kind = resource_kind(gid_value)
    if kind is None:
        if parse_gid(gid_value) is None:
            return None, None, [(["id"], f"Invalid global id '{gid_value}'")]
        return None, None, [(["id"], "The resource type of this id doesn't support tags")]
    return kind, parse_gid(gid_value, kind), []


def _change(store: DevStore, shop: str, gid_value: str, tags: str | Iterable[str], *, adding: bool) -> TagResult:
    kind, resource_id, errors = _resolve(gid_value)
    if errors:
        return TagResult(kind, None, errors=errors)
    assert kind is not None and resource_id is not None
    wanted = normalize_tags(tags)
    if not wanted:
        return TagResult(kind, None, errors=[(["tags"], "Tags can't be blank")])
    too_long = [t for t in wanted if len(t) > MAX_TAG_LENGTH]
    if too_long:
        return TagResult(kind, None, errors=[(["tags"], f"Tag '{too_long[0][:40]}…' is too long "
                                                        f"(maximum is {MAX_TAG_LENGTH} characters)")])
    spec = TAGGABLE[kind]
    # The read-modify-write runs under one write lock, so concurrent tag calls never lose an update.
    with store.tx() as conn:
        row = conn.execute(f"SELECT tags FROM {spec.table} WHERE id = ? AND shop = ?",
                           (resource_id, shop)).fetchone()
        if row is None:
            return TagResult(kind, None, errors=[(["id"], f"{kind} does not exist")])
        current: list[str] = json.loads(row["tags"])
        have = {t.lower() for t in current}
        if adding:
            changed = [t for t in wanted if t.lower() not in have]
            if len(current) + len(changed) > MAX_TAGS:
                return TagResult(kind, resource_id,
                                 errors=[(["tags"], f"Exceeded the maximum number of tags ({MAX_TAGS}) "
                                                    f"for this {kind.lower()}")])
            updated = current + changed
        else:
            drop = {t.lower() for t in wanted}
            changed = [t for t in current if t.lower() in drop]
            updated = [t for t in current if t.lower() not in drop]
        if changed:
            conn.execute(f"UPDATE {spec.table} SET tags = ?, updated_at = ? WHERE id = ?",
                         (json.dumps(updated), iso(utcnow()), resource_id))
            store.emit(Event(shop, spec.update_topic, kind, resource_id))
            topic = spec.added_topic if adding else spec.removed_topic
            if topic:
                store.emit(Event(shop, topic, kind, resource_id, {"tags": changed}))
    return TagResult(kind, resource_id, changed=changed)
