"""Session tokens: real HS256 JWTs, every way one can be wrong."""
import time
import uuid

import jwt
import pytest

from shopseg.shopify.session_tokens import SessionTokenInvalid, session_token_decode

KEY = "app-key"
SECRET = "s" * 40


def make(shop="demo.myshopify.com", secret=SECRET, **overrides):
    now = int(time.time())
    claims = {"iss": f"https://{shop}/admin", "dest": f"https://{shop}", "aud": KEY, "sub": "1",
              "exp": now + 60, "nbf": now, "iat": now, "jti": str(uuid.uuid4()), "sid": "abc"}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm="HS256")


def test_valid_token():
    claims = session_token_decode(make(), api_key=KEY, secrets=[SECRET])
    assert claims.shop == "demo.myshopify.com" and claims.user_id == "1"


def test_previous_secret_accepted():
    assert session_token_decode(make(secret="p" * 40), api_key=KEY, secrets=[SECRET, "p" * 40]).shop


def test_leeway_is_ten_seconds():
    now = int(time.time())
    assert session_token_decode(make(nbf=now + 5), api_key=KEY, secrets=[SECRET])
    with pytest.raises(SessionTokenInvalid):
        session_token_decode(make(nbf=now + 30), api_key=KEY, secrets=[SECRET])


def test_expired_is_flagged_as_expired():
    now = int(time.time())
    with pytest.raises(SessionTokenInvalid) as info:
        session_token_decode(make(exp=now - 30, nbf=now - 90), api_key=KEY, secrets=[SECRET])
    assert info.value.expired


# Built when the test runs (not at collection), so a long suite never lets them expire first.
INVALID = {
    "empty": lambda: "",
    "not a jwt": lambda: "not-a-jwt",
    "forged": lambda: make(secret="w" * 40),
    "another app": lambda: make(aud="another-app"),
    "no exp": lambda: make(exp=None),
    "iss and dest disagree": lambda: make(iss="https://other.myshopify.com/admin"),
    "not a shop": lambda: make(shop="evil.com"),
    "wrong algorithm": lambda: jwt.encode({"dest": "https://demo.myshopify.com", "aud": KEY}, SECRET,
                                          algorithm="HS512"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_tokens(case):
    with pytest.raises(SessionTokenInvalid) as info:
        session_token_decode(INVALID[case](), api_key=KEY, secrets=[SECRET])
    assert not info.value.expired


def test_none_algorithm_refused():
    token = jwt.encode({"dest": "https://demo.myshopify.com", "aud": KEY}, None, algorithm="none")
    with pytest.raises(SessionTokenInvalid):
        session_token_decode(token, api_key=KEY, secrets=[SECRET])
