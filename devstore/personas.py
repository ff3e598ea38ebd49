"""What the store generator draws from: customer personas, holiday windows, the catalog vocabulary
and the names, user agents and discount codes that make seeded shops look real."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    """How one kind of customer behaves over the shop's history."""

    name: str
    share: float                          # fraction of seeded customers
    orders: tuple[int, ...]               # order count over the history, drawn uniformly from these
    timing: str                           # spread | loyal | holiday | interval | lapsed | recent
    tier: tuple[float, float] = (0.0, 1.0)   # price quantiles of the catalog the customer buys from
    items: tuple[float, ...] = (0.55, 0.27, 0.12, 0.06)  # weights of 1, 2, 3, 4 line items
    discount: float = 0.18                # share of orders placed with a discount code
    devices: tuple[float, ...] = (0.48, 0.40, 0.07, 0.05)  # desktop, mobile, tablet, pos
    app: float = 0.12                     # share of mobile orders placed in the iPhone/Android app
    shipping: tuple[float, ...] = (0.72, 0.14, 0.04, 0.10)  # standard, express, overnight, pickup
    abandoned: tuple[int, ...] = (0, 0, 0, 0, 1)  # abandoned checkout count, drawn uniformly
    focus: float = 0.3                    # share of line items from the customer's favourite type
    guest_may_be_customer: bool = True    # False: a guest order never carries this customer's email


PERSONA_DEFS: tuple[Persona, ...] = (
    Persona("vip", 0.02, tuple(range(10, 25)), "loyal", tier=(0.6, 1.0),
            items=(0.15, 0.30, 0.30, 0.25), discount=0.25, shipping=(0.50, 0.30, 0.15, 0.05),
            abandoned=(0, 0, 1)),
    Persona("high_value_repeat", 0.05, tuple(range(4, 10)), "loyal", tier=(0.5, 1.0),
            items=(0.25, 0.35, 0.25, 0.15), discount=0.2, shipping=(0.60, 0.25, 0.10, 0.05),
            abandoned=(0, 0, 1)),
    Persona("bargain_hunter", 0.08, tuple(range(3, 9)), "spread", tier=(0.0, 0.45), discount=0.85,
            shipping=(0.90, 0.03, 0.0, 0.07), abandoned=(0, 1, 1, 2)),
    Persona("full_price_loyalist", 0.05, tuple(range(3, 9)), "loyal", tier=(0.2, 1.0), discount=0.0,
            abandoned=(0, 0, 1)),
    Persona("one_time_buyer", 0.20, (1,), "spread", items=(0.6, 0.25, 0.1, 0.05),
            guest_may_be_customer=False),
    Persona("seasonal_holiday", 0.06, tuple(range(2, 7)), "holiday", tier=(0.2, 0.9), discount=0.3),
    Persona("mobile_first", 0.08, tuple(range(2, 7)), "spread", devices=(0.06, 0.88, 0.06, 0.0), app=0.5),
    Persona("cart_abandoner", 0.06, (0, 0, 1, 1, 2), "spread", abandoned=tuple(range(3, 11))),
    Persona("category_loyalist", 0.05, tuple(range(3, 9)), "loyal", discount=0.15, focus=0.92),
    Persona("replenisher", 0.04, tuple(range(6, 21)), "interval", items=(0.8, 0.2, 0.0, 0.0),
            discount=0.15, devices=(0.5, 0.45, 0.05, 0.0), shipping=(0.9, 0.08, 0.02, 0.0), focus=1.0),
    Persona("lapsing", 0.05, tuple(range(2, 7)), "lapsed"),
    Persona("new_customer", 0.03, (1, 1, 1, 2), "recent", items=(0.6, 0.25, 0.1, 0.05)),
    Persona("fastest_shipping", 0.03, tuple(range(2, 7)), "spread", tier=(0.3, 1.0),
            devices=(0.55, 0.40, 0.05, 0.0), shipping=(0.10, 0.50, 0.37, 0.03)),
    Persona("casual", 0.20, (0, 1, 1, 1, 2, 2, 3, 4), "spread"),
)

PERSONAS: tuple[str, ...] = tuple(p.name for p in PERSONA_DEFS)
PERSONA_BY_NAME: dict[str, Persona] = {p.name: p for p in PERSONA_DEFS}

# Replenishers reorder every 25-35 days (their own interval) with a few days of jitter either way.
REPLENISH_INTERVAL = (25, 35)
REPLENISH_JITTER = 3
LAPSED_QUIET_DAYS = 190   # lapsing customers' last activity is at least this long ago (segment: 180)
NEW_CUSTOMER_DAYS = 30    # new customers were created and first ordered within this many days


def holiday_windows(year: int) -> dict[str, tuple[dt.date, dt.date]]:
    """The shopping holidays of `year` as inclusive (first day, last day) pairs of calendar dates.

    Black Friday-Cyber Monday: the Friday after US Thanksgiving (4th Thursday of November) through
    the following Monday. Christmas: Dec 1-24. Valentine's: Feb 1-14. Mother's Day: the two weeks
    before US Mother's Day (2nd Sunday of May), not including the day itself.
    """
    nov1 = dt.date(year, 11, 1)
    thanksgiving = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7 + 21)
    may1 = dt.date(year, 5, 1)
    mothers_day = may1 + dt.timedelta(days=(6 - may1.weekday()) % 7 + 7)
    return {
        "valentines": (dt.date(year, 2, 1), dt.date(year, 2, 14)),
        "mothers_day": (mothers_day - dt.timedelta(days=14), mothers_day - dt.timedelta(days=1)),
        "black_friday_cyber_monday": (thanksgiving + dt.timedelta(days=1), thanksgiving + dt.timedelta(days=4)),
        "christmas": (dt.date(year, 12, 1), dt.date(year, 12, 24)),
    }


# Relative order volume by month (Q4 peak) and extra lift inside each holiday window.
MONTH_WEIGHT = (0.80, 0.85, 0.90, 0.90, 0.95, 0.90, 0.90, 0.95, 1.00, 1.10, 1.60, 1.70)
HOLIDAY_LIFT = {"black_friday_cyber_monday": 2.5, "christmas": 1.4, "valentines": 1.2, "mothers_day": 1.2}

# Orders by UTC hour for a US audience: quiet overnight Eastern, busy at lunch and in the evening.
HOUR_WEIGHT = (6, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 7, 6, 5, 5, 6, 7)


@dataclass(frozen=True)
class ProductType:
    name: str
    price: tuple[int, int]        # base price range in whole currency units
    nouns: tuple[str, ...]
    options: tuple[str, ...]      # variant titles, first one to three are used
    vendors: tuple[str, ...]
    consumable: bool = False      # bought again when it runs out (replenishers buy these)
    scaled: bool = False          # later options are bigger and cost more


PRODUCT_TYPES: tuple[ProductType, ...] = (
    ProductType("Apparel", (25, 120), ("Tee", "Hoodie", "Crewneck", "Flannel Shirt", "Joggers", "Denim Jacket",
                "Polo", "Tank Top", "Cardigan"), ("S", "M", "L"),
                ("Northbound Apparel", "Common Thread", "Harbor & Pine")),
    ProductType("Footwear", (60, 220), ("Sneaker", "Trail Runner", "Chelsea Boot", "Loafer", "Sandal", "Slip-On",
                "High-Top"), ("US 8", "US 9", "US 10"), ("Stride Co.", "Fieldstone Footwear")),
    ProductType("Accessories", (15, 90), ("Beanie", "Tote Bag", "Leather Belt", "Wallet", "Sunglasses", "Scarf",
                "Cap", "Backpack"), ("Black", "Tan", "Olive"), ("Carry Goods", "Harbor & Pine")),
    ProductType("Jewelry", (40, 600), ("Pendant Necklace", "Hoop Earrings", "Signet Ring", "Charm Bracelet",
                "Stud Earrings", "Chain Anklet"), ("Silver", "Gold", "Rose Gold"),
                ("Lumen Jewelry", "Goldleaf Studio")),
    ProductType("Home Decor", (20, 250), ("Throw Pillow", "Ceramic Vase", "Wall Print", "Table Lamp", "Wool Throw",
                "Planter", "Mirror"), ("Small", "Medium", "Large"), ("Hearth & Home", "Oakline Living"),
                scaled=True),
    ProductType("Kitchen", (15, 180), ("Chef Knife", "Cast Iron Skillet", "Pour-Over Set", "Cutting Board",
                "Mixing Bowls", "French Press", "Spice Rack"), ("Default Title",),
                ("Copper Kettle Co.", "Oakline Living")),
    ProductType("Beauty", (10, 60), ("Lip Tint", "Mascara", "Eyeliner", "Nail Polish", "Brow Gel", "Blush Stick"),
                ("Rose", "Nude", "Berry"), ("Glow Theory", "Petal & Pine")),
    ProductType("Skincare", (18, 90), ("Face Serum", "Night Cream", "Gel Cleanser", "Sunscreen SPF 50", "Toner",
                "Eye Cream", "Clay Mask"), ("30 ml", "50 ml", "100 ml"), ("Glow Theory", "Dermalab"),
                consumable=True, scaled=True),
    ProductType("Coffee", (12, 40), ("Espresso Blend", "House Roast", "Ethiopia Yirgacheffe", "Decaf Colombia",
                "Cold Brew Pack", "Dark Roast"), ("12 oz", "2 lb", "5 lb"),
                ("Ridgeback Roasters", "Morning Ritual Coffee"), consumable=True, scaled=True),
    ProductType("Tea", (8, 35), ("Earl Grey", "Jasmine Green", "Chamomile", "Masala Chai", "Sencha", "Rooibos"),
                ("20 bags", "50 bags", "Loose 8 oz"), ("Leaf & Kettle", "Morning Ritual Coffee"),
                consumable=True, scaled=True),
    ProductType("Supplements", (20, 70), ("Daily Multivitamin", "Magnesium Glycinate", "Omega-3", "Vitamin D3",
                "Collagen Powder", "Protein Powder", "Electrolyte Mix"), ("30 servings", "60 servings",
                "90 servings"), ("Vital Basics", "Peak Nutrition"), consumable=True, scaled=True),
    ProductType("Pet Supplies", (10, 80), ("Grain-Free Kibble", "Salmon Treats", "Dental Chews", "Cat Litter",
                "Rope Toy", "Pet Shampoo"), ("Small", "Large"), ("Happy Tails", "Paw Pantry"),
                consumable=True, scaled=True),
)

ADJECTIVES = ("Classic", "Everyday", "Premium", "Organic", "Vintage", "Signature", "Essential", "Heritage",
              "Modern", "Coastal", "Alpine", "Studio", "Urban", "Artisan", "Weekend")

# (code, kind, value): percentage codes take value % off every line; fixed codes take value cents
# off orders of at least five times that amount.
DISCOUNT_CODES = (
    ("WELCOME10", "percentage", 10), ("SAVE15", "percentage", 15), ("SPRING20", "percentage", 20),
    ("SUMMER20", "percentage", 20), ("FLASH30", "percentage", 30), ("VIP15", "percentage", 15),
    ("TAKE5", "fixed_amount", 500), ("TENOFF", "fixed_amount", 1000),
)
HOLIDAY_CODE = ("BFCM25", "percentage", 25)

SHIPPING = (   # (code, title, price in cents; standard is free from FREE_SHIPPING_FROM)
    ("standard", "Standard Shipping", 599),
    ("express", "Express Shipping (2-3 days)", 1499),
    ("overnight", "Overnight Shipping", 2999),
    ("pickup", "Local Pickup", 0),
)
FREE_SHIPPING_FROM = 7500

CANCEL_REASONS = ("customer", "customer", "customer", "inventory", "fraud", "declined", "other")
TAX_BASIS_POINTS = (0, 400, 600, 625, 700, 725, 800, 875, 1025)
MERCHANT_TAGS = ("wholesale", "newsletter", "vip-event", "influencer", "staff", "b2b", "loyalty-program")
EMAIL_STATES = (("SUBSCRIBED", 0.40), ("NOT_SUBSCRIBED", 0.45), ("UNSUBSCRIBED", 0.10), ("PENDING", 0.05))
SMS_STATES = (("SUBSCRIBED", 0.18), ("NOT_SUBSCRIBED", 0.70), ("UNSUBSCRIBED", 0.09), ("PENDING", 0.03))
ACCOUNT_STATES = (("enabled", 0.55), ("disabled", 0.40), ("invited", 0.04), ("declined", 0.01))
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas", "Mia", "Mason",
    "Amelia", "Ethan", "Harper", "Logan", "Evelyn", "Aiden", "Abigail", "Jackson", "Emily", "Sebastian",
    "Ella", "Mateo", "Scarlett", "Henry", "Grace", "Leo", "Chloe", "Daniel", "Zoe", "Jack", "Lily", "Owen",
    "Nora", "Samuel", "Aria", "Wyatt", "Riley", "Julian", "Layla", "Levi", "Hannah", "Isaac", "Priya",
    "Arjun", "Mei", "Hiroshi", "Fatima", "Omar", "Sofia", "Diego", "Chiara", "Lars", "Ingrid", "Kwame",
    "Amara", "Tomasz", "Yara", "Ravi",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Patel",
    "Kim", "Chen", "Okafor", "Schmidt", "Rossi", "Novak", "Sato", "Haddad", "Larsen",
)
AREA_CODES = ("212", "310", "312", "415", "512", "617", "702", "206", "303", "404", "503", "615")

USER_AGENTS = {
    "desktop": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    ),
    "ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    ),
    "android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    ),
    "ios_tablet": (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    ),
    "android_tablet": (
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ),
    "ios_app": ("ShopApp/2.145.0 (iPhone; iOS 17.4; Scale/3.00)",),
    "android_app": ("ShopApp/2.145.0 (Linux; Android 14; Pixel 8) Mobile",),   # phones say Mobile, tablets not
}
