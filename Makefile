# The two commands of the README: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint clean

$(STAMP): pyproject.toml constraints-cpu.txt deploy/install.sh
	deploy/install.sh $(VENV) test constraints-cpu.txt
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/loraplane serve

test: $(STAMP)
	deploy/ensure-compose.sh
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .loraplane
