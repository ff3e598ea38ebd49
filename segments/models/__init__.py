"""segments' models, one module per domain."""
from .shops import OAuthState, Shop, ShopStatus

__all__ = ["OAuthState", "Shop", "ShopStatus"]
