# The README's two commands: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test install clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The web pixel extension, bundled by its own build step (esbuild from the npm registry, once).
PIXEL := extensions/shopseg-pixel
$(PIXEL)/dist/shopseg-pixel.js: $(PIXEL)/src/index.js $(PIXEL)/package.json $(PIXEL)/package-lock.json
	cd $(PIXEL) && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent

# The theme app extension needs no build; Shopify's theme-check lints it (tests/test_theme_extension.py).
THEME := extensions/shopseg-theme
$(THEME)/node_modules/.package-lock.json: $(THEME)/package.json $(THEME)/package-lock.json
	cd $(THEME) && npm ci --no-audit --no-fund --loglevel=error

install: $(VENV)/.installed $(PIXEL)/dist/shopseg-pixel.js $(THEME)/node_modules/.package-lock.json

# devstore (a seeded local Shopify) + the app + a Celery worker and beat (local or embedded PostgreSQL
# and Redis) + install via OAuth; the store keeps living until Ctrl-C.
demo: install
	$(PY) manage.py demo

# Every test, against PostgreSQL and Redis on 127.0.0.1 (see README "Tests").
test: install
	$(PY) manage.py check
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	REDIS_TEST_URL=$${REDIS_TEST_URL:-redis://127.0.0.1:6379/15} \
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .demo .devstore staticfiles db.sqlite3 $(PIXEL)/node_modules $(PIXEL)/dist $(THEME)/node_modules
