# Sanquan — two commands on a fresh Debian machine: `make run` and `make test`.
# Every target is idempotent: it installs only what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := run
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
FLASK := $(VENV)/bin/flask
PORT ?= 5000
STREAM_PORT ?= 5001
HOST ?= 127.0.0.1
APT_PACKAGES := postgresql postgresql-contrib postgresql-15-postgis-3 fonts-noto-cjk gdal-bin \
  chromium poppler-utils zbar-tools libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 python3-venv redis-server

# The app connects as the app role (owns nothing, DML only); migrations run as the owner role
# (MIGRATE_DATABASE_URL / TEST_MIGRATE_DATABASE_URL; default: the same database as the owner
# role, see app/config.py). scripts/pg.sh creates both roles.
PRIVATE_URL = $(shell scripts/pg.sh url sanquan)
PRIVATE_TEST_URL = $(shell scripts/pg.sh url sanquan_test)
PRIVATE_BENCH_URL = $(shell scripts/pg.sh url sanquan_bench admin)
export DATABASE_URL ?= $(PRIVATE_URL)
export TEST_DATABASE_URL ?= $(PRIVATE_TEST_URL)
export BENCH_DATABASE_URL ?= $(PRIVATE_BENCH_URL)
export FLASK_APP := wsgi.py

.PHONY: backup restore

.PHONY: run test test-deep mutation tour bench bench-scale replica replica-stop setup system venv npm i18n db db-test migrate demo lint clean-db

## Serve the app with demo data (sets everything up first).
run: setup db migrate demo
	@echo ""
	@echo "  Sanquan is at http://$(HOST):$(PORT)/   (English: http://$(HOST):$(PORT)/lang/en)"
	@echo "  Demo logins (password: sanquan-demo): admin, bureau, officer, farmer, hukou, exchange, auditor, supervisor"
	@echo ""
	@echo "  Live bidding stream (SSE): http://$(HOST):$(STREAM_PORT)/auctions/ID/events"
	scripts/serve.sh $(HOST) $(PORT) $(STREAM_PORT)  # as an unprivileged user (created if missing), never root

## Run every test against a separate test database, on TEST_WORKERS pytest-xdist workers (each
## on a copy of the test database; tests/conftest.py). TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 2
test: setup db-test
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup tests $(PYTEST_ARGS)

## The long suites left out of `make test`: the whole village's confirmation, deep fault injection,
## and mutation testing of the rule modules. In one process: some of them stop and restart the
## cluster itself (tests/test_ops_faults.py) or back it up and restore it (tests/test_ops_backup.py).
test-deep: setup db-test
	$(PY) -m pytest -q tests -m deep $(PYTEST_ARGS)
	$(MAKE) mutation

## Mutation testing (mutmut) of app/grounds.py and the rule modules, each mutant against the tests
## about its module (scripts/mutation.sh; not in `make test`). MUTATE=app/grounds.py for one.
mutation: setup
	nice scripts/mutation.sh $(MUTATE)

## The visual tour: docs/tour.md and its screenshots, taken by the browser tests on the demo county.
tour: setup db-test
	$(PY) -m pytest -q -m deep tests/browser/test_browser_demo.py $(PYTEST_ARGS)

## Benchmarks (figures beside the raw-PostGIS baseline).
bench: setup
	@if [ "$(BENCH_DATABASE_URL)" = "$(PRIVATE_BENCH_URL)" ]; then scripts/pg.sh start; fi
	scripts/pg.sh ensure "$(BENCH_DATABASE_URL)"
	$(PY) -m bench $(BENCH_ARGS)

## Backups of the private cluster: WAL archiving (turned on once, idempotently) and a base
## backup; `make restore TARGET_TIME='2026-11-29 14:05:00+00'` recovers to that moment into a
## new data folder started beside the running cluster (see scripts/pg.sh).
backup:
	scripts/pg.sh backup

restore:
	@if [ -z "$(TARGET_TIME)" ]; then echo "make restore TARGET_TIME='YYYY-MM-DD HH:MM:SS+00' [RESTORE_DIR=…]"; exit 2; fi
	scripts/pg.sh restore "$(TARGET_TIME)" $(RESTORE_DIR)

## Scale: tiles, search, a parcel page, a registration and OGC items at each size of
## BENCH_SCALE_SIZES (default 1M and 10M parcels) in one run; the table of p50/p99 and ratios.
BENCH_SCALE_SIZES ?= 1000000,10000000
bench-scale: setup
	@if [ "$(BENCH_DATABASE_URL)" = "$(PRIVATE_BENCH_URL)" ]; then scripts/pg.sh start; fi
	scripts/pg.sh ensure "$(BENCH_DATABASE_URL)"
	nice $(PY) -m bench --only scale --scale-sizes $(BENCH_SCALE_SIZES) $(BENCH_ARGS)

## A hot standby of the private cluster (streaming replication), for DATABASE_REPLICA_URL.
replica:
	scripts/pg.sh standby
	@echo "DATABASE_REPLICA_URL=$$(scripts/pg.sh standby-url sanquan)"
replica-stop:
	scripts/pg.sh standby-stop

setup: system venv npm i18n

system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

npm: node_modules/.stamp
node_modules/.stamp: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

i18n: venv
	$(VENV)/bin/pybabel compile --statistics -d app/translations

db:
	@if [ "$(DATABASE_URL)" = "$(PRIVATE_URL)" ]; then scripts/pg.sh start; fi
	scripts/pg.sh ensure "$(DATABASE_URL)"

db-test:
	@if [ "$(TEST_DATABASE_URL)" = "$(PRIVATE_TEST_URL)" ]; then scripts/pg.sh start; fi
	scripts/pg.sh ensure "$(TEST_DATABASE_URL)"

migrate: venv db
	$(FLASK) db upgrade

demo: migrate
	$(FLASK) demo load --if-empty

## Regenerate the translation catalogues after changing strings.
i18n-extract: venv
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ -o app/translations/messages.pot .
	$(VENV)/bin/pybabel update -i app/translations/messages.pot -d app/translations

lint: venv
	$(VENV)/bin/ruff check .
