"""shopifyapp (Shopify's package) against ours, on the same inputs: where it decides as we do, and
the differences that keep our code in place.

Session tokens: shopifyapp verifies the signature, aud and exp/nbf (10 s leeway) under our own
checks; the verdicts equal those of the shopifyapi-based verifier it replaced, case by case.
Webhooks and token exchange stay ours; the tests pin why.
"""
import base64
import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from shopify import session_token as shopifyapi_session_token
from shopify_app import ShopifyApp, verify_app_home_req, verify_webhook_req

from shopseg.shopify.domains import normalize_shop_domain
from shopseg.shopify.errors import OAuthGrantError, ShopifyTransientError
from shopseg.shopify.oauth import OAuthClient
from shopseg.shopify.session_tokens import SessionTokenInvalid, session_token_decode
from shopseg.shopify.signatures import webhook_hmac, webhook_hmac_valid

KEY = "app-key"
SECRET, PREVIOUS, WRONG = "s" * 40, "p" * 40, "w" * 40


def token(shop="demo.myshopify.com", secret=SECRET, algorithm="HS256", **overrides):
    now = int(time.time())
    claims = {"iss": f"https://{shop}/admin", "dest": f"https://{shop}", "aud": KEY, "sub": "1",
              "exp": now + 60, "nbf": now, "iat": now, "jti": str(uuid.uuid4()), "sid": "abc"}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm=algorithm)


def shopifyapi_verdict(raw: str, secrets: list[str]) -> tuple[bool, bool]:
    """(accepted, expired) of the verifier before shopifyapp: shopifyapi's decode_from_header, then
    exp/nbf required and dest a valid https shop."""
    last = None
    for secret in secrets:
        try:
            claims = shopifyapi_session_token.decode_from_header(f"Bearer {raw}", KEY, secret)
            break
        except shopifyapi_session_token.SessionTokenError as exc:
            last = exc
    else:
        return False, isinstance(getattr(last, "__cause__", None), jwt.ExpiredSignatureError)
    try:
        jwt.decode(raw, options={"verify_signature": False, "require": ["exp", "nbf"]})
    except jwt.PyJWTError:
        return False, False
    dest = urlsplit(claims["dest"])
    return normalize_shop_domain(dest.hostname or "") is not None and dest.scheme == "https", False


def our_verdict(raw: str, secrets: list[str]) -> tuple[bool, bool]:
    try:
        session_token_decode(raw, api_key=KEY, secrets=secrets)
    except SessionTokenInvalid as exc:
        return False, exc.expired
    return True, False


def shopifyapp_alone(raw: str, secrets: list[str]) -> bool:
    request = {"method": "GET", "url": "https://app.invalid/", "headers": {"Authorization": f"Bearer {raw}"},
               "body": ""}
    config = {"client_id": KEY, "client_secret": secrets[0], "old_client_secret": (secrets[1:] or [None])[0]}
    return verify_app_home_req(request, config, "/").ok


NOW = int(time.time())
# name -> (token factory, secrets, (accepted, expired) by both verifiers, accepted by shopifyapp alone)
SESSION_CASES = {
    "valid": (lambda: token(), [SECRET], (True, False), True),
    "rotated: signed with the previous secret": (lambda: token(secret=PREVIOUS), [SECRET, PREVIOUS], (True, False), True),
    "forged": (lambda: token(secret=WRONG), [SECRET, PREVIOUS], (False, False), False),
    "expired": (lambda: token(exp=int(time.time()) - 30, nbf=int(time.time()) - 90), [SECRET], (False, True), False),
    "expired, previous secret": (lambda: token(secret=PREVIOUS, exp=int(time.time()) - 30,
                                               nbf=int(time.time()) - 90), [SECRET, PREVIOUS], (False, True), False),
    "expired 5 s ago (leeway)": (lambda: token(exp=int(time.time()) - 5), [SECRET], (True, False), True),
    "nbf 5 s ahead (leeway)": (lambda: token(nbf=int(time.time()) + 5), [SECRET], (True, False), True),
    "nbf 30 s ahead": (lambda: token(nbf=int(time.time()) + 30), [SECRET], (False, False), False),
    "another app": (lambda: token(aud="another-app"), [SECRET], (False, False), False),
    "HS512": (lambda: token(algorithm="HS512"), [SECRET], (False, False), False),
    "alg none": (lambda: jwt.encode({"aud": KEY, "dest": "https://demo.myshopify.com"}, None, algorithm="none"),
                 [SECRET], (False, False), False),
    "empty": (lambda: "", [SECRET], (False, False), False),
    "not a jwt": (lambda: "not-a-jwt", [SECRET], (False, False), False),
    "truncated signature": (lambda: token()[:-4], [SECRET], (False, False), False),
    "exp not a number": (lambda: token(exp="soon"), [SECRET], (False, False), False),
    # What shopifyapp alone accepts and our checks refuse:
    "no exp": (lambda: token(exp=None), [SECRET], (False, False), True),
    "no nbf": (lambda: token(nbf=None), [SECRET], (False, False), True),
    "no sub": (lambda: token(sub=None), [SECRET], (False, False), True),
    "iss and dest disagree": (lambda: token(iss="https://other.myshopify.com/admin"), [SECRET], (False, False), True),
    "dest not a shop": (lambda: token(shop="evil.com"), [SECRET], (False, False), True),
    "dest over http": (lambda: token(iss="http://demo.myshopify.com/admin", dest="http://demo.myshopify.com"),
                       [SECRET], (False, False), True),
}


@pytest.mark.parametrize("case", sorted(SESSION_CASES))
def test_session_token_verdicts_match_the_verifier_shopifyapp_replaced(case):
    make, secrets, expected, alone = SESSION_CASES[case]
    raw = make()
    assert shopifyapi_verdict(raw, secrets) == expected   # before
    assert our_verdict(raw, secrets) == expected          # now, on shopifyapp
    assert (shopifyapp_alone(raw, secrets) if raw else False) is alone


def test_shopifyapp_alone_reports_an_expired_previous_secret_token_as_invalid():
    # Given both secrets it reports its last failure (the current secret's bad signature), so the
    # embedded entry would show an error instead of fetching a fresh token: we try each secret alone.
    raw = token(secret=PREVIOUS, exp=int(time.time()) - 30, nbf=int(time.time()) - 90)
    result = verify_app_home_req({"method": "GET", "url": "https://app.invalid/", "body": "",
                                  "headers": {"Authorization": f"Bearer {raw}"}},
                                 {"client_id": KEY, "client_secret": SECRET, "old_client_secret": PREVIOUS}, "/")
    assert result.log.code == "invalid_id_token"
    assert our_verdict(raw, [SECRET, PREVIOUS]) == (False, True)


# -- webhooks: the same accept/refuse decisions, but ours stays -----------------------------------
BODY = json.dumps({"id": 1, "note": "é", "line_items": [{"title": "x" * 50}] * 100}).encode()


def shopifyapp_webhook(body: bytes, header: str | None, secrets: list[str]):
    headers = {"X-Shopify-Shop-Domain": "demo.myshopify.com"}
    if header is not None:
        headers["X-Shopify-Hmac-Sha256"] = header
    config = {"client_id": KEY, "client_secret": secrets[0], "old_client_secret": (secrets[1:] or [None])[0]}
    return verify_webhook_req({"method": "POST", "headers": headers, "url": "https://app.invalid/webhooks",
                               "body": body.decode("utf-8")}, config)


WEBHOOK_CASES = {
    "valid": (BODY, lambda: webhook_hmac(BODY, SECRET), [SECRET], True),
    "rotated: previous secret": (BODY, lambda: webhook_hmac(BODY, PREVIOUS), [SECRET, PREVIOUS], True),
    "previous secret not configured": (BODY, lambda: webhook_hmac(BODY, PREVIOUS), [SECRET], False),
    "forged": (BODY, lambda: webhook_hmac(BODY, WRONG), [SECRET, PREVIOUS], False),
    "body changed": (BODY + b" ", lambda: webhook_hmac(BODY, SECRET), [SECRET], False),
    "hex instead of base64": (BODY, lambda: hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(), [SECRET],
                              False),
    "padding dropped": (BODY, lambda: webhook_hmac(BODY, SECRET).rstrip("="), [SECRET], False),
    "trailing space": (BODY, lambda: webhook_hmac(BODY, SECRET) + " ", [SECRET], False),
    "empty header": (BODY, lambda: "", [SECRET], False),
    "empty body, signed": (b"", lambda: webhook_hmac(b"", SECRET), [SECRET], True),
}


@pytest.mark.parametrize("case", sorted(WEBHOOK_CASES))
def test_webhook_decisions_are_the_same(case):
    body, header, secrets, accepted = WEBHOOK_CASES[case]
    signature = header()
    assert webhook_hmac_valid(body, signature, secrets) is accepted
    assert shopifyapp_webhook(body, signature, secrets).ok is accepted


def test_webhook_differences_that_keep_ours():
    signature = webhook_hmac(BODY, SECRET)
    # A missing signature: shopifyapp says 400, the endpoint answers 401 for every bad signature.
    assert not webhook_hmac_valid(BODY, None, [SECRET])
    assert shopifyapp_webhook(BODY, None, [SECRET]).response.status == 400
    # A header byte outside ASCII (WSGI hands headers over as latin-1): ours refuses, shopifyapp's
    # compare_digest on str raises, which would be a 500 and a retry instead of a 401.
    assert not webhook_hmac_valid(BODY, signature[:-2] + "é=", [SECRET])
    with pytest.raises(TypeError):
        shopifyapp_webhook(BODY, signature[:-2] + "é=", [SECRET])
    # It takes the body as text: a signed body that is not UTF-8 cannot even be given to it, while
    # ours verifies the bytes Shopify signed (and the JSON check then refuses it with a 400).
    latin = "é".encode("latin-1")
    assert webhook_hmac_valid(latin, webhook_hmac(latin, SECRET), [SECRET])
    with pytest.raises(UnicodeDecodeError):
        latin.decode("utf-8")
    # Every call parses and re-serializes the whole body to redact its log copy: work the fast
    # path does not do before the signature is known to be good (see BENCHMARKS.md, "Webhook endpoint").
    logged = shopifyapp_webhook(BODY, signature, [SECRET]).log.req["body"]
    assert logged != BODY.decode() and json.loads(logged) == json.loads(BODY)


# -- token exchange against devstore: ours stays -------------------------------------------------
class ToDevstore(httpx.HTTPTransport):
    """shopifyapp posts to https://{shop}; send that to devstore's /shops/{shop} instead."""

    def __init__(self, base: str):
        super().__init__()
        self._base = urlsplit(base)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        shop = request.url.host
        request.url = request.url.copy_with(scheme=self._base.scheme, host=self._base.hostname,
                                            port=self._base.port, path=f"/shops/{shop}{request.url.path}")
        request.headers["Host"] = f"{self._base.hostname}:{self._base.port}"
        return super().handle_request(request)


def exchange_both(devstore, settings, raw: str, *, secret: str | None = None):
    secret = secret or settings.SHOPIFY_API_SECRET
    claims = jwt.decode(raw, options={"verify_signature": False})
    shop = urlsplit(claims["dest"]).hostname
    try:
        ours = OAuthClient(f"{devstore.url}/shops/{shop}", api_key=settings.SHOPIFY_API_KEY,
                           api_secret=secret).exchange_session_token(raw)
    except OAuthGrantError as exc:
        ours = exc
    with httpx.Client(transport=ToDevstore(devstore.url), timeout=10) as http:
        theirs = ShopifyApp(settings.SHOPIFY_API_KEY, secret).exchange_using_token_exchange(
            "offline", {"exchangeable": True, "token": raw, "claims": claims}, http_client=http)
    return ours, theirs


def app_token(settings, shop: str, secret: str | None = None) -> str:
    now = int(time.time())
    return jwt.encode({"iss": f"https://{shop}/admin", "dest": f"https://{shop}", "aud": settings.SHOPIFY_API_KEY,
                       "sub": "1", "exp": now + 60, "nbf": now, "iat": now, "jti": str(uuid.uuid4()), "sid": "s"},
                      secret or settings.SHOPIFY_API_SECRET, algorithm="HS256")


@pytest.mark.django_db
def test_token_exchange_grants_and_refusals_match(devstore, settings):
    shop = devstore.create_shop()
    ours, theirs = exchange_both(devstore, settings, app_token(settings, shop))
    assert theirs.ok and ours.access_token.startswith("shpat_") and theirs.access_token.token.startswith("shpat_")
    assert set(ours.scopes) == set(theirs.access_token.scope.split(","))
    assert ours.refresh_token and theirs.access_token.refresh_token and theirs.access_token.expires
    ours, theirs = exchange_both(devstore, settings, app_token(settings, shop, secret=WRONG))
    assert isinstance(ours, OAuthGrantError) and ours.error == "invalid_subject_token"
    assert not theirs.ok and theirs.log.code == "invalid_subject_token"
    ours, theirs = exchange_both(devstore, settings, app_token(settings, shop), secret=WRONG)
    assert isinstance(ours, OAuthGrantError) and ours.error == "invalid_client"
    assert not theirs.ok and theirs.log.code == "invalid_client"


def test_token_exchange_unreachable_shop_is_transient_only_in_ours(settings):
    # Ours raises the retryable error (the entry page says "reload"); shopifyapp answers a result
    # whose response is a 500 with code network_error, and a 5xx from Shopify would be the same
    # generic exchange_error as a refused grant. Its 429 handling sleeps inside the request.
    raw = app_token(settings, "demo.myshopify.com")
    with pytest.raises(ShopifyTransientError):
        OAuthClient("http://127.0.0.1:9", api_key=settings.SHOPIFY_API_KEY,
                    api_secret=settings.SHOPIFY_API_SECRET, timeout=2).exchange_session_token(raw)
    with httpx.Client(transport=ToDevstore("http://127.0.0.1:9"), timeout=2) as http:
        claims = jwt.decode(raw, options={"verify_signature": False})
        result = ShopifyApp(settings.SHOPIFY_API_KEY, settings.SHOPIFY_API_SECRET).exchange_using_token_exchange(
            "offline", {"exchangeable": True, "token": raw, "claims": claims}, http_client=http)
    assert not result.ok and result.log.code == "network_error" and result.response.status == 500
