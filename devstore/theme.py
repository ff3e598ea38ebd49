"""The theme app extension's blocks rendered as Shopify renders them: the real Liquid engine
(python-liquid) plus the few Shopify pieces the blocks use (`{% schema %}`, `block.settings`,
`customer`, `request.design_mode`, `asset_url`, `money`, `image_url`, `image_tag`, `json`).

Like Shopify, nothing is escaped unless the template says `| escape`, so a test over this output
catches a block that forgets to.
"""
from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path
from typing import Any, TextIO

from liquid import Environment, FalsyStrictUndefined, FileSystemLoader
from liquid.ast import Node
from liquid.exceptions import LiquidSyntaxError
from liquid.stream import TokenStream
from liquid.tag import Tag
from liquid.token import TOKEN_EOF, TOKEN_TAG

EXTENSION = Path(__file__).resolve().parent.parent / "extensions" / "shopseg-theme"
ASSET_BASE = "/extensions/shopseg-theme/assets/"
MONEY_FORMAT = "${amount}"    # devstore's shops sell in USD
EMBED = "shopseg-embed"


class SchemaNode(Node):
    """A block's `{% schema %}`: its JSON, parsed when the template is; renders nothing."""

    __slots__ = ("schema",)

    def __init__(self, token, schema: dict) -> None:
        super().__init__(token)
        self.schema = schema

    def render_to_output(self, context, buffer: TextIO) -> int:  # noqa: ARG002
        return 0


class SchemaTag(Tag):
    # Its body is JSON, not Liquid: taken verbatim, as the comment tag takes its text.
    name = "schema"
    end = "endschema"

    def parse(self, stream: TokenStream) -> SchemaNode:
        token = stream.eat(TOKEN_TAG)
        text = []
        while not (stream.current.kind == TOKEN_TAG and stream.current.value == self.end):
            if stream.current.kind == TOKEN_EOF:
                raise LiquidSyntaxError("schema tag was never closed", token=token)
            text.append(stream.current.value)
            next(stream)
        try:
            return SchemaNode(token, json.loads("".join(text)))
        except json.JSONDecodeError as error:
            raise LiquidSyntaxError(f"schema is not JSON: {error}", token=token) from error


class ImageUrl(str):
    """What `image_url` returns: a URL that still knows its image, as Shopify's does for `image_tag`."""

    image: dict
    width: int | None


def asset_url(name: str) -> str:
    return ASSET_BASE + name


def money(cents: Any) -> str:
    return MONEY_FORMAT.replace("{amount}", f"{int(cents) / 100:,.2f}")


def image_url(image: dict | str, width: int | None = None, height: int | None = None) -> ImageUrl:
    image = {"src": image} if isinstance(image, str) else image
    query = "&".join(f"{k}={v}" for k, v in (("width", width), ("height", height)) if v)
    url = ImageUrl(image["src"] + (("&" if "?" in image["src"] else "?") + query if query else ""))
    url.image, url.width = image, width
    return url


def image_tag(url: ImageUrl, **attributes: Any) -> str:
    image = url.image
    width = url.width or image.get("width")
    height = image.get("height")
    if width and height and image.get("width"):
        height = round(height * width / image["width"])
    attrs = {"src": str(url), "alt": image.get("alt") or "", "width": width, "height": height, **attributes}
    return "<img " + " ".join(f'{k}="{html.escape(str(v))}"' for k, v in attrs.items() if v is not None) + ">"


def shopify_json(value: Any) -> str:
    # Shopify's json encodes <, > and & so its output is safe inside a <script> element.
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


@cache
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(EXTENSION / "snippets", ext=".liquid"),
                      undefined=FalsyStrictUndefined)   # a misspelt name fails the test, not renders ""
    env.add_tag(SchemaTag)
    for name, func in {"asset_url": asset_url, "money": money, "image_url": image_url,
                       "image_tag": image_tag, "json": shopify_json}.items():
        env.add_filter(name, func)
    return env


@cache
def _block(name: str):
    template = _environment().from_string((EXTENSION / "blocks" / f"{name}.liquid").read_text(), name=name)
    schema = next(node.schema for node in template.nodes if isinstance(node, SchemaNode))
    return template, schema


def block_schema(name: str) -> dict:
    return _block(name)[1]


def _settings(schema: dict, given: dict, collections: dict[str, dict]) -> dict:
    inputs = [setting for setting in schema.get("settings", []) if "id" in setting]   # not headers
    unknown = set(given) - {setting["id"] for setting in inputs}
    if unknown:    # a misspelt id would otherwise fall back to the default unnoticed
        raise ValueError(f"{schema['name']} has no settings {sorted(unknown)}")
    settings = {}
    for setting in inputs:
        value = given.get(setting["id"], setting.get("default"))
        if setting["type"] == "collection" and isinstance(value, str):
            value = collections.get(value)    # Shopify resolves a collection setting's handle
        settings[setting["id"]] = value
    return settings


def render_block(name: str, *, settings: dict, customer: dict | None,
                 collections: dict[str, dict] | None = None, design_mode: bool = False,
                 app: dict | None = None, cart: dict | None = None) -> str:
    """The HTML block `name` renders; settings missing from `settings` take the schema's default.
    `customer` is None for a logged-out visitor (Shopify's nil); collection settings name a handle
    of `collections` (also Liquid's global `collections`), each `{"title", "url", "products":
    [{"title", "url", "price" (cents), "featured_image"}]}`; `app` is Liquid's `app` (its
    `metafields`), `cart` the visitor's (`total_price`, `item_count`)."""
    template, schema = _block(name)
    block = {"id": f"devstore-{name}", "settings": _settings(schema, settings, collections or {})}
    return template.render(block=block, customer=customer, request={"design_mode": design_mode},
                           collections=collections or {}, app=app or {"metafields": {}},
                           cart=cart or {"total_price": 0, "item_count": 0})


def embed_html(customer: dict | None, settings: dict | None = None) -> str:
    """The app embed's HTML, as Shopify injects it before `</body>`."""
    return render_block(EMBED, settings=settings or {}, customer=customer)


def block_assets(names: list[str]) -> str:
    """The `<link>`/`<script>` tags for the stylesheets and scripts the blocks' schemas name, once
    each, as Shopify puts them in the page's head."""
    tags = {}
    for name in names:
        schema = block_schema(name)
        if "stylesheet" in schema:
            tags.setdefault(schema["stylesheet"], f'<link rel="stylesheet" href="{asset_url(schema["stylesheet"])}">')
        if "javascript" in schema:
            tags.setdefault(schema["javascript"], f'<script src="{asset_url(schema["javascript"])}" defer></script>')
    return "".join(tags.values())
