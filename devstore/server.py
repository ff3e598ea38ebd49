"""devstore's HTTP server: routes Shopify's URLs (per shop, by path prefix) and the control API.

    /shops/{shop}/admin/oauth/authorize          consent page / auto-approve -> app callback
    /shops/{shop}/admin/oauth/access_token       code grant, refresh, token exchange
    /shops/{shop}/admin/api/{version}/graphql.json
    /shops/{shop}/admin/apps/{api_key}           the embedded admin: frames the app, mints session tokens
    /shops/{shop}/admin/customers/{id}           the admin's customer page (where an app's links lead)
    /shops/{shop}/store/...                      the online store, with the shop's app pixels (devstore.storefront)
    /staged-uploads, /bulk-results/{id}.jsonl    bulk operation files
    /_control/...                                seed, reset, faults, traffic, uninstall, compliance
"""
from __future__ import annotations

import functools
import html
import json
import logging
import threading
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from . import control, oauth, storefront
from .bulk import bulk_result_bytes, staged_upload_receive
from .config import DevstoreConfig
from .graphql_api import AdminAPI
from .live import LiveTraffic
from .state import DevStore
from .webhook_sender import WebhookSender

log = logging.getLogger("devstore")
STATIC = Path(__file__).parent / "static"
SHOP = "<regex('[a-z0-9][a-z0-9-]*\\.myshopify\\.com'):shop>"
INVALID_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, mimetype="application/json")


class DevstoreApp:
    """The WSGI application. Holds the store, the GraphQL engine and the webhook sender."""

    def __init__(self, store: DevStore, config: DevstoreConfig):
        self.store, self.config = store, config
        self.admin_api = AdminAPI(store, config)
        self.sender = WebhookSender(store, config)
        self.sender.listen()
        self.live = LiveTraffic(store)
        self.storefront = storefront.Storefront(store)
        from werkzeug.routing import BaseConverter

        class RegexConverter(BaseConverter):
            def __init__(self, url_map, *items):
                super().__init__(url_map)
                self.regex = items[0]

        self.urls = Map([
            Rule(f"/shops/{SHOP}/admin/oauth/authorize", endpoint="authorize", methods=["GET"]),
            Rule(f"/shops/{SHOP}/admin/oauth/access_token", endpoint="access_token", methods=["POST"]),
            Rule(f"/shops/{SHOP}/admin/api/<version>/graphql.json", endpoint="graphql", methods=["POST"]),
            Rule(f"/shops/{SHOP}/admin/apps/<api_key>", endpoint="admin_app", methods=["GET"]),
            Rule(f"/shops/{SHOP}/admin/apps/<api_key>/<path:app_path>", endpoint="admin_app", methods=["GET"]),
            Rule(f"/shops/{SHOP}/admin/customers/<int:customer_id>", endpoint="admin_customer", methods=["GET"]),
            Rule(f"/shops/{SHOP}/admin/_install/<api_key>", endpoint="install", methods=["GET"]),
            Rule(f"/shops/{SHOP}/admin/_session_token/<api_key>", endpoint="session_token", methods=["POST"]),
            Rule("/cdn/app-bridge.js", endpoint="app_bridge", methods=["GET"]),
            Rule("/staged-uploads", endpoint="staged_upload", methods=["POST"]),
            Rule("/bulk-results/<int:op_id>.jsonl", endpoint="bulk_result", methods=["GET"]),
            *control.rules(SHOP),
            *storefront.rules(SHOP),
        ], converters={"regex": RegexConverter})

    # -- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        adapter = self.urls.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
            handler = getattr(self, f"on_{endpoint}", None)
            if endpoint.startswith("store_"):     # the online store's pages (devstore.storefront)
                handler = getattr(self.storefront, endpoint.removeprefix("store_"))
            elif handler is None:  # control API handlers are plain functions taking the app first
                handler = functools.partial(control.HANDLERS[endpoint], self)
            response = handler(request, **args)
        except oauth.OAuthError as exc:
            response = json_response(exc.body(), exc.status)
        except HTTPException as exc:
            response = exc.get_response(environ)
        return response(environ, start_response)

    # -- OAuth ---------------------------------------------------------------------------------
    def on_authorize(self, request: Request, shop: str) -> Response:
        self._require_shop(shop)
        params = request.args.to_dict()
        if self.config.auto_approve or params.pop("approve", None) == "1":
            return Response(status=302, headers={"Location": oauth.authorize(self.store, shop, params).redirect_to})
        approve = f"?{urlencode({**params, 'approve': '1'})}"
        page = Template((STATIC / "consent.html").read_text()).substitute(
            shop=html.escape(shop), scopes=html.escape(params.get("scope", "")),
            client_id=html.escape(params.get("client_id", "")), approve_url=html.escape(approve))
        return Response(page, mimetype="text/html")

    def on_access_token(self, request: Request, shop: str) -> Response:
        self._require_shop(shop)
        form = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        if not isinstance(form, dict):
            return json_response({"error": "invalid_request", "error_description": "Malformed body"}, 400)
        return json_response(oauth.access_token(self.store, self.config, shop, form))

    def on_install(self, request: Request, shop: str, api_key: str) -> Response:
        """The merchant clicks "install" in the admin: Shopify opens the app URL, signed."""
        self._require_shop(shop)
        return Response(status=302, headers={"Location": oauth.install_url(self.store, shop, api_key)})

    # -- GraphQL -------------------------------------------------------------------------------
    def on_graphql(self, request: Request, shop: str, version: str) -> Response:
        if self.store.shop(shop) is None:
            raise NotFound()
        auth = oauth.token_lookup(self.store, shop, request.headers.get("X-Shopify-Access-Token", ""))
        if auth is None:
            return json_response(INVALID_TOKEN, 401)
        status, headers, body = self.admin_api.execute(
            shop=shop, api_key=auth["api_key"], scopes=auth["scopes"], api_version=version,
            body=request.get_data(),
        )
        if isinstance(body, (bytes, str)):
            return Response(body, status=status, headers=headers, mimetype="text/html")
        return json_response(body, status, headers)

    # -- the embedded admin --------------------------------------------------------------------
    def on_admin_app(self, request: Request, shop: str, api_key: str, app_path: str = "") -> Response:
        """Shopify admin's app page: frames the app URL with the embedded query and a session token."""
        self._require_shop(shop)
        app = self.store.app(api_key)
        if app is None or self.store.installation(shop, api_key) is None:
            raise NotFound()
        token = oauth.session_token(self.store, shop, api_key)
        query = oauth.signed_params(shop, app["api_secret"], embedded="1", id_token=token, locale="en")
        src = f"{app['app_url'].rstrip('/')}/{app_path}?{urlencode(query)}"
        page = Template((STATIC / "admin.html").read_text()).substitute(
            shop=html.escape(shop), src=html.escape(src), api_key=html.escape(api_key),
            token_url=html.escape(f"/shops/{shop}/admin/_session_token/{api_key}"),
            app_origin=html.escape(app["app_url"].rstrip("/")))
        return Response(page, mimetype="text/html")

    def on_admin_customer(self, request: Request, shop: str, customer_id: int) -> Response:
        """Shopify admin's customer page: what a merchant lands on from an app's link to a customer."""
        self._require_shop(shop)
        row = self.store.conn().execute("SELECT first_name, last_name, email, tags FROM customers "
                                        "WHERE shop = ? AND id = ?", (shop, customer_id)).fetchone()
        if row is None:
            raise NotFound("No such customer")
        name = " ".join(part for part in (row["first_name"], row["last_name"]) if part) or f"Customer {customer_id}"
        tags = "".join(f'<span class="tag">{html.escape(tag)}</span>' for tag in json.loads(row["tags"]))
        page = Template((STATIC / "customer.html").read_text()).substitute(
            shop=html.escape(shop), id=customer_id, name=html.escape(name), email=html.escape(row["email"] or "—"),
            tags=tags or "—")
        return Response(page, mimetype="text/html")

    def on_session_token(self, request: Request, shop: str, api_key: str) -> Response:
        self._require_shop(shop)
        if self.store.installation(shop, api_key) is None:
            raise NotFound()
        return json_response({"token": oauth.session_token(self.store, shop, api_key)})

    def on_app_bridge(self, request: Request) -> Response:
        return Response((STATIC / "app-bridge.js").read_text(), mimetype="application/javascript")

    # -- bulk files ----------------------------------------------------------------------------
    def on_staged_upload(self, request: Request) -> Response:
        key = request.form.get("key", "")
        upload = request.files.get("file")
        if not key or upload is None or not staged_upload_receive(self.store, key, upload.read()):
            return Response("<Error><Code>InvalidArgument</Code></Error>", status=400, mimetype="application/xml")
        return Response(f"<PostResponse><Key>{html.escape(key)}</Key></PostResponse>", status=201,
                        mimetype="application/xml")

    def on_bulk_result(self, request: Request, op_id: int) -> Response:
        data = bulk_result_bytes(self.store, op_id, partial=request.args.get("partial") == "1")
        if data is None:
            raise NotFound()
        return Response(data, mimetype="application/jsonl")

    def _require_shop(self, shop: str) -> None:
        if self.store.shop(shop) is None:
            raise NotFound(f"No shop {shop}")


class DevstoreServer:
    """Runs the app on a real socket in a background thread (tests) or the foreground (command)."""

    def __init__(self, store: DevStore, config: DevstoreConfig, host: str = "127.0.0.1", port: int = 0):
        self.app = DevstoreApp(store, config)
        self._server = make_server(host, port, self.app, threaded=True)
        self.port = self._server.server_port
        if port == 0:
            config.public_url = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.app.config.public_url

    def start(self) -> DevstoreServer:
        self.app.sender.start()
        self._thread = threading.Thread(target=self._server.serve_forever, name="devstore-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.app.sender.start()
        try:
            self._server.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        self.app.live.stop_all()
        # close(), not stop(): the sender's keep-alive connections would otherwise hold the app's
        # request threads (and their database sessions) open after devstore is gone.
        self.app.sender.close()
        self._server.shutdown()
        self._server.server_close()
