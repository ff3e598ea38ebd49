"""Large tag diffs (a new segment on a big store, a changed prefix) as bulk mutations.

Above SHOPSEG_TAG_BULK_THRESHOLD customers with due changes, their diffs are written as JSONL
variables (`{"id": gid, "tags": [...]}` per line), uploaded through stagedUploadsCreate and run by
bulkOperationRunMutation: one operation for the removals, then one for the additions (a customer
near the 250-tag limit makes room first). Bulk operations do not spend the request bucket, so a
diff of tens of thousands of customers takes minutes instead of the bucket's hours.

The operation's lines are kept (TagBulkOperation.lines), its customers' outbox rows are claimed by
it (the direct path leaves them alone) and each line's result (`__lineNumber`, userErrors) is
applied exactly as a direct answer would be, in chunks that record how far they got (and, within a
chunk, customers whose line has its audit rows), so a worker that dies while applying resumes without
auditing anything twice. A failed operation applies its partial results and gives every other line
back to the queue.

An operation that ended keeps its counts, not its lines: they name customers (pk and Shopify id)
and nothing reads them again. A customers/redact takes its customer's line out of a queued
operation and blanks it in a running one, whose results refer to line numbers (`bulk_lines_erase`);
applying the results skips a blanked line.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from segments.membership.models import TagChange
from segments.shops.bulk_operations import bulk_operation_read, jsonl_lines, result_file
from segments.shops.models import Shop
from segments.shops.throttle import ShopThrottle
from segments.tags import ledger as tag_ledger
from segments.tags import plans as tag_plans
from segments.tags import transport as tag_transport
from segments.tags.ledger import Outcome
from segments.tags.models import BulkStatus, TagAudit, TagBulkOperation, TagResult, TagSource, tag_key
from segments.tags.plans import Plan, Want
from segments.tags.transport import Sender, SyncReport

log = logging.getLogger(__name__)
MAX_CUSTOMERS = 100_000          # per bulk batch (an upload holds at most 100 MB; a line is ~70 bytes)
APPLY_CHUNK = 2000               # result lines applied per transaction
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, read=300.0)
ACTIVE = (BulkStatus.QUEUED, BulkStatus.RUNNING)
ERASED_LINE = [None, None, [], [], [], [], []]   # a redacted customer's line in a running operation

MUTATIONS = {
    True: "mutation call($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { node { id } "
          "userErrors { field message } } }",
    False: "mutation call($id: ID!, $tags: [String!]!) { tagsRemove(id: $id, tags: $tags) { node { id } "
           "userErrors { field message } } }",
}
STAGED_UPLOAD = """mutation Stage($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) { stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message } } }"""
RUN = """mutation Run($mutation: String!, $path: String!, $client: String) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $path, clientIdentifier: $client) {
    bulkOperation { id status } userErrors { field message code } } }"""


def bulk_threshold(*, shop: Shop) -> int:
    """Customers with due changes from which a bulk mutation is used: the setting, but never less
    than what a full bucket absorbs at once (one tagsAdd each: 200 on Standard, 2,000 on Plus), since
    below that the direct path is done in a request or two. 0 in the setting: never."""
    setting = settings.SHOPSEG_TAG_BULK_THRESHOLD
    if setting <= 0:
        return 0
    return max(setting, int(ShopThrottle(shop.pk).capacity() // tag_transport.MUTATION_COST))


def bulk_should_start(*, shop: Shop) -> bool:
    threshold = bulk_threshold(shop=shop)
    if threshold <= 0 or TagBulkOperation.objects.filter(shop=shop, status__in=ACTIVE).exists():
        return False
    return tag_plans.due_customers(shop=shop, at_least=threshold) >= threshold


# -- starting ----------------------------------------------------------------------------------------
def _due_customers(shop: Shop, limit: int) -> tuple[list[int], int]:
    """Up to `limit` customers with due rows (oldest first) and the highest row id read."""
    now = timezone.now()
    picked: dict[int, None] = {}
    last = 0
    while len(picked) < limit:
        rows = list(TagChange.objects.filter(tag_plans.due_filter(now), shop=shop, id__gt=last).order_by("id")
                    .values_list("id", "customer_id")[:50_000])
        if not rows:
            break
        for row_id, customer_id in rows:
            if customer_id not in picked:
                if len(picked) == limit:
                    break
                picked[customer_id] = None
            last = row_id
    return list(picked), last


def bulk_start(*, shop: Shop, client: Sender, report: SyncReport) -> list[TagBulkOperation]:
    """Diff the next batch of customers, queue a remove and an add operation, launch the first."""
    customers, last = _due_customers(shop, MAX_CUSTOMERS)
    removes: list[Plan] = []
    adds: list[Plan] = []
    for start in range(0, len(customers), APPLY_CHUNK):
        chunk = customers[start:start + APPLY_CHUNK]
        changes = list(TagChange.objects.filter(shop=shop, customer_id__in=chunk, processed_at__isnull=True,
                                                bulk__isnull=True, id__lte=last).order_by("id")
                       .values(*tag_plans.CHANGE_FIELDS))
        plans = tag_plans.plans_for(shop=shop, customer_ids=chunk, changes=changes)
        quiet = [p for p in plans if not p.mutations]
        if quiet:
            report.add(tag_ledger.confirm(shop=shop, plans=quiet, outcomes={}, at=timezone.now()))
        report.customers += len(plans)
        removes += [p for p in plans if p.remove]
        adds += [p for p in plans if p.add]
    ops = []
    with transaction.atomic():
        for add, plans in ((False, removes), (True, adds)):
            if plans:
                ops.append(TagBulkOperation.objects.create(shop=shop, add=add, lines=[_line(p, add) for p in plans],
                                                           line_count=len(plans)))
        if not ops:
            return []
        # A customer's rows belong to the last operation that has a line for it.
        owner = {p.customer_id: ops[0] for p in removes}
        owner.update({p.customer_id: ops[-1] for p in adds})
        by_op: dict[int, list[int]] = defaultdict(list)
        for plan in removes + adds:
            by_op[owner[plan.customer_id].pk] += plan.change_ids
        for op_id, ids in by_op.items():
            for start in range(0, len(ids), 5000):
                TagChange.objects.filter(pk__in=ids[start:start + 5000]).update(bulk_id=op_id)
        tag_ledger.ledger_intend(shop=shop, plans=list({p.customer_id: p for p in removes + adds}.values()),
                               now=timezone.now())
    report.bulk += [f"queued {'add' if op.add else 'remove'} x{op.line_count}" for op in ops]
    _launch(shop, ops[0], client, report)
    return ops


def _line(plan: Plan, add: bool) -> list:
    """[customer pk, Shopify id, tags, segment ids, versions, sources, holdout flags]: enough to
    rebuild the plan when the results come back."""
    wants = plan.add if add else plan.remove
    return [plan.customer_id, plan.shopify_id, [w.tag for w in wants], [w.segment_id for w in wants],
            [w.version for w in wants], [plan.sources.get(tag_key(w.tag), "") for w in wants],
            [w.holdout for w in wants]]


def _jsonl(op: TagBulkOperation) -> bytes:
    return b"".join(json.dumps({"id": f"gid://shopify/Customer/{line[1]}", "tags": line[2]},
                               separators=(",", ":")).encode() + b"\n" for line in op.lines)


def _launch(shop: Shop, op: TagBulkOperation, client: Sender, report: SyncReport) -> bool:
    """Upload the variables and start the operation; False when Shopify has no slot free yet."""
    staged = client.call(STAGED_UPLOAD, {"input": [{"resource": "BULK_MUTATION_VARIABLES",
                                                    "filename": f"shopseg-tags-{op.pk}.jsonl",
                                                    "mimeType": "text/jsonl", "httpMethod": "POST"}]},
                         tag_transport.MUTATION_COST)
    payload = staged.data["stagedUploadsCreate"]
    if payload["userErrors"]:
        _fail(op, f"stagedUploadsCreate: {payload['userErrors'][0].get('message', '')}")
        return False
    target = payload["stagedTargets"][0]
    form = {p["name"]: p["value"] for p in target["parameters"]}
    try:
        with httpx.Client(timeout=DOWNLOAD_TIMEOUT) as http:
            uploaded = http.post(target["url"], data=form, files={"file": ("vars.jsonl", _jsonl(op), "text/jsonl")})
    except httpx.HTTPError as exc:
        log.warning("bulk tag upload for shop %s failed (%s); retried on the next run", shop.pk, type(exc).__name__)
        return False
    if uploaded.status_code >= 300:
        log.warning("bulk tag upload for shop %s answered %s; retried on the next run", shop.pk, uploaded.status_code)
        return False
    run = client.call(RUN, {"mutation": MUTATIONS[op.add], "path": form["key"], "client": f"shopseg-tags-{op.pk}"},
                      tag_transport.MUTATION_COST)
    payload = run.data["bulkOperationRunMutation"]
    if payload["userErrors"]:
        error = payload["userErrors"][0]
        if error.get("code") == "LIMIT_REACHED":     # other bulk operations (a backfill) hold every slot
            return False
        _fail(op, f"bulkOperationRunMutation: {error.get('message', '')}")
        return False
    TagBulkOperation.objects.filter(pk=op.pk).update(status=BulkStatus.RUNNING, started_at=timezone.now(),
                                                     shopify_gid=payload["bulkOperation"]["id"])
    report.bulk.append(f"started {'add' if op.add else 'remove'} x{op.line_count}")
    return True


def _fail(op: TagBulkOperation, error: str) -> None:
    """Give up on an operation and on the ones queued behind it: their customers go back to the queue."""
    log.warning("bulk tag operation %s failed: %s", op.pk, error)
    with transaction.atomic():
        active = TagBulkOperation.objects.filter(shop_id=op.shop_id, status__in=ACTIVE)
        ids = list(active.values_list("pk", flat=True)) + [op.pk]
        TagChange.objects.filter(bulk_id__in=ids, processed_at__isnull=True).update(bulk=None)
        active.update(status=BulkStatus.FAILED, error=error[:255], finished_at=timezone.now(), lines=[])
        TagBulkOperation.objects.filter(pk=op.pk).update(status=BulkStatus.FAILED, error=error[:255],
                                                         finished_at=timezone.now(), lines=[])


# -- advancing ---------------------------------------------------------------------------------------
def bulk_advance(*, shop: Shop, client: Sender, report: SyncReport) -> None:
    """Poll the running operation, apply a finished one's results, launch the next queued one."""
    for op in TagBulkOperation.objects.filter(shop=shop, status__in=ACTIVE).order_by("pk"):
        if op.status == BulkStatus.QUEUED:
            _launch(shop, op, client, report)
            return
        state = bulk_operation_read(client, op.shopify_gid)
        if state is not None and state.active:
            return
        if state is not None and state.status == "COMPLETED":
            _apply(shop, op, state.url, report)
            TagBulkOperation.objects.filter(pk=op.pk).update(status=BulkStatus.COMPLETED, finished_at=timezone.now(),
                                                             lines=[])
            report.bulk.append(f"completed {'add' if op.add else 'remove'} x{op.line_count}")
            continue
        # FAILED, CANCELED, EXPIRED or gone: what ran is applied, the rest goes back to the queue.
        if state is not None and state.partial_data_url:
            _apply(shop, op, state.partial_data_url, report)
        ended = f"{state.status} {state.error_code or ''}" if state is not None else "GONE"
        _fail(op, f"Shopify ended the operation: {ended}".strip())
        return


def _results(url: str | None) -> Iterator[tuple[int, Outcome]]:
    """(line number, outcome) from a bulk mutation's JSONL result."""
    if not url:
        return
    with result_file(url) as response:
        response.raise_for_status()
        for raw in jsonl_lines(response.iter_bytes(1 << 16)):
            if not raw.strip():
                continue
            line = json.loads(raw)
            number = int(line["__lineNumber"])
            payload = next(iter((line.get("data") or {}).values()), None)
            if payload is None:
                yield number, Outcome(False, TagResult.FAILED, str(line.get("errors", "no result"))[:255], retry=True)
            else:
                yield number, tag_ledger.classify_user_errors(payload.get("userErrors") or [],
                                                            payload.get("node") is None)


def _apply(shop: Shop, op: TagBulkOperation, url: str | None, report: SyncReport) -> None:
    """Apply per-line results in chunks, each recording how far it got (op.applied)."""
    outcomes = dict(_results(url))
    at = op.started_at or timezone.now()
    done, errors = op.applied, op.errors
    while done < op.line_count:
        lines = op.lines[done:done + APPLY_CHUNK]
        customers = [line[0] for line in lines if line[0] is not None]
        claims: dict[int, list[int]] = defaultdict(list)
        for pk, customer_id in TagChange.objects.filter(bulk=op, processed_at__isnull=True,
                                                        customer_id__in=customers).values_list("pk", "customer_id"):
            claims[customer_id].append(pk)
        plans, answered = [], {}
        for number, line in enumerate(lines, start=done):
            customer_id, shopify_id, tags, segments, versions, sources, holdouts = line
            if customer_id is None:     # redacted while the operation ran: nobody to apply it to
                continue
            wants = [Want(t, s, v, h) for t, s, v, h in zip(tags, segments, versions, holdouts)]
            plan = Plan(customer_id, shopify_id, claims.get(customer_id, []),
                        add=wants if op.add else [], remove=[] if op.add else wants,
                        sources={tag_key(w.tag): src for w, src in zip(wants, sources) if src})
            plans.append(plan)
            if number in outcomes:
                answered[(customer_id, op.add)] = outcomes[number]
        unanswered = {p.customer_id for p in plans if (p.customer_id, op.add) not in answered
                      or answered[(p.customer_id, op.add)].retry}
        answered_plans = [p for p in plans if p.customer_id not in unanswered]
        # The recording commits customer by customer as their rows are free (tag_ledger.confirm), so a
        # worker that died after recording some of the chunk left audit rows for them: the line's mark.
        recorded = set(TagAudit.objects.filter(bulk=op, customer_id__in=[p.customer_id for p in answered_plans])
                       .values_list("customer_id", flat=True))
        fresh = [p for p in answered_plans if p.customer_id not in recorded]
        report.add(tag_ledger.confirm(shop=shop, plans=fresh, outcomes=answered, at=at, bulk=op))
        with transaction.atomic():
            if unanswered:   # back to the queue, including rows a later operation of the batch holds
                TagChange.objects.filter(customer_id__in=unanswered, processed_at__isnull=True,
                                         bulk__isnull=False).update(bulk=None)
                tag_ledger.changes_back_off(change_ids=list(TagChange.objects.filter(
                    customer_id__in=unanswered, processed_at__isnull=True).values_list("pk", flat=True)),
                    error="bulk operation gave no result for the line")
            if shop.tag_metafield:   # bulk lines carry tags only: the direct path writes their metafields
                tag_plans.customers_tag_check(shop=shop, customer_ids=[p.customer_id for p in answered_plans],
                                             source=TagSource.RESYNC)
            done += len(lines)
            errors += sum(1 for p in answered_plans if not answered[(p.customer_id, op.add)].ok)
            TagBulkOperation.objects.filter(pk=op.pk).update(applied=done, errors=errors)
        report.calls += len(fresh)
    op.applied = done


# -- privacy ------------------------------------------------------------------------------------------
@transaction.atomic
def bulk_lines_erase(*, shop: Shop, customer_pks) -> dict[str, int]:
    """customers/redact (segments.privacy calls it): the customer's lines leave the operations that
    still hold lines."""
    pks = set(customer_pks)
    erased = 0
    for op in TagBulkOperation.objects.select_for_update().filter(shop=shop).exclude(lines=[]).order_by("pk"):
        theirs = sum(1 for line in op.lines if line[0] in pks)
        if not theirs:
            continue
        erased += theirs
        if op.status == BulkStatus.QUEUED:      # not uploaded yet: the upload numbers what is left
            op.lines = [line for line in op.lines if line[0] not in pks]
            op.line_count = len(op.lines)
            if not op.lines:
                op.status, op.finished_at = BulkStatus.COMPLETED, timezone.now()
        else:
            op.lines = [ERASED_LINE if line[0] in pks else line for line in op.lines]
        op.save(update_fields=["lines", "line_count", "status", "finished_at"])
    return {"bulk_tag_lines": erased}
