# Every target creates .venv when it is missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml $(wildcard setup.py csrc/*.c csrc/*.h csrc/*.py)
	@scripts/system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

# The main job: mine against the embedded pool with the live view and the dashboard
# (60 s; ARGS=--forever runs on).
WEB ?= 127.0.0.1:8080
run: $(STAMP)
	$(BIN)/hashcore mine --embedded --web-listen $(WEB) $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/hashcore bench --backend auto --seconds 5
	$(BIN)/python -m pytest bench --benchmark-only -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy hashcore

clean:
	rm -rf $(VENV) build *.egg-info hashcore/_sha256d*.so
