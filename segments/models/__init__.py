"""segments' models, one module per domain."""
from .mirror import (
    BackfillStatus, Cart, Checkout, ComplianceKind, ComplianceRequest, Customer, Device, LineItem, MarketingState,
    Order, Product, Refund, ShippingSpeed, ShopSync,
)
from .shops import OAuthState, Shop, ShopStatus
from .metrics import CustomerMetrics
from .segments import (
    ExclusiveGroup, Membership, MembershipEvent, Segment, SegmentClock, SegmentStatus, SegmentVersion, TagChange,
    Trigger,
)
from .playbooks import Channel, Playbook, PlaybookKpi
from .kpis import SegmentKpiSnapshot
from .tags import (
    BulkStatus, CustomerTag, DriftPolicy, LedgerState, OwnedTag, TagAudit, TagBulkOperation, TagResult, TagSource,
)

__all__ = [
    "BackfillStatus", "Cart", "Checkout", "ComplianceKind", "ComplianceRequest", "Customer", "Device", "LineItem",
    "MarketingState", "OAuthState", "Order", "Product", "Refund", "ShippingSpeed", "Shop", "ShopStatus", "ShopSync",
    "CustomerMetrics", "ExclusiveGroup", "Membership", "MembershipEvent", "Segment", "SegmentClock", "SegmentStatus",
    "SegmentVersion", "TagChange", "Trigger",
    "BulkStatus", "CustomerTag", "DriftPolicy", "LedgerState", "OwnedTag", "TagAudit", "TagBulkOperation", "TagResult",
    "TagSource", "Channel", "Playbook", "PlaybookKpi", "SegmentKpiSnapshot",
]
