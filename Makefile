# pouch: the two commands (make demo, make test) and the long runs.
# Works on a fresh Debian machine with python3, pip and make: everything else
# (the virtualenv, Python packages, Debian's age for the interop tests) is
# installed here when missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FUZZ_SECONDS ?= 60

.PHONY: demo test lint bench fuzz soak age-cli qr-tools bytecode man clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	$(MAKE) --no-print-directory bytecode
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

$(VENV)/.fuzz-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[fuzz]'
	touch $@

# The stock age CLI (Debian's 1.1.1): the demo and the interop tests run it.
age-cli:
	@command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || { \
		echo "installing Debian's age package"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq age >/dev/null; }

# The stock QR tools the paper bench compares with (Debian's qrencode, zbar).
qr-tools:
	@command -v qrencode >/dev/null 2>&1 && command -v zbarimg >/dev/null 2>&1 || { \
		echo "installing Debian's qrencode and zbar-tools"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq qrencode zbar-tools >/dev/null; }

demo: $(VENV)/.installed age-cli man
	$(BIN)/python demo/demo.py

# pouch(1), written from the commands: into the virtualenv, and where man
# looks (/usr/local/share/man) when this user may write there.
MANPAGE := $(VENV)/share/man/man1/pouch.1
man: $(VENV)/.installed
	@$(BIN)/python tools/manpage.py $(MANPAGE)
	@if mkdir -p /usr/local/share/man/man1 2>/dev/null && \
		cp $(MANPAGE) /usr/local/share/man/man1/pouch.1 2>/dev/null; then \
		echo "installed pouch(1): man pouch"; \
	else echo "pouch(1) is in $(MANPAGE): man -l $(MANPAGE)"; fi

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests bench fuzz demo tools
	$(BIN)/ruff format --check src tests bench fuzz demo tools
	$(BIN)/python tools/private_imports.py src tests bench fuzz demo
	$(BIN)/mypy --strict src

test: lint age-cli
	$(BIN)/pytest

# Compiled bytecode, as pip writes it when it installs a wheel. An editable
# install leaves it to the first run, which cannot write it where
# PYTHONDONTWRITEBYTECODE is set: every run would compile pouch anew (40 ms).
bytecode:
	$(BIN)/python -m compileall -q src >/dev/null

bench: $(VENV)/.installed age-cli qr-tools bytecode
	$(BIN)/python bench/bench_age.py
	$(BIN)/python bench/bench_letters.py
	$(BIN)/python bench/bench_custody.py
	$(BIN)/python bench/bench_ledger.py
	$(BIN)/python bench/bench_paper.py

# 500 SIGKILL trials of seal and open (make test runs 50).
soak: $(VENV)/.test-installed
	CRASH_TRIALS=500 $(BIN)/pytest -q tests/test_home_crash.py

fuzz: $(VENV)/.fuzz-installed
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .bench
