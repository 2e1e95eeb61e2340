# Two set-up commands: `make install`, then `make test`. `make demo` runs the main job on the embedded default.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the environments need (OS sandbox, MiniWoB++ browser). Java 17 comes with the base image;
# default-jre-headless is installed only where java is missing.
DEBS := bubblewrap chromium chromium-driver sqlite3

.PHONY: install debs venv test test-slow test-all demo mariadb clean

install: debs venv

debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(BIN)/.installed

$(BIN)/.installed: requirements.txt requirements-test.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r requirements-test.txt
	touch $@

test:
	$(BIN)/python -m pytest -q tests

test-slow:
	$(BIN)/python -m pytest -q -m slow tests

test-all:
	$(BIN)/python -m pytest -q -m "slow or not slow" tests

# The main job on the embedded default: the toy AgentTuning experiment end to end (configs/sweep/demo.py): toy
# agent trajectories + word games + tokenizer -> the toy_2m Llama trained at eta = 0 and eta = 0.2 -> each served by
# agentlm.infer.serve and played through agentlm.eval.agent -> the before/after table (runs/demo/before_after.md).
demo:
	$(BIN)/python -m launch.sweep --config configs/sweep/demo.py

# Optional real MySQL-compatible server for the DB environment (--backend mariadb): installs Debian's
# mariadb-server if missing and starts it on loopback in ~/.cache/agentlm/mariadb ($$AGENTLM_MARIADB_DIR).
mariadb:
	@dpkg -s mariadb-server >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client; }
	$(BIN)/python -m agentlm.envs.mariadb start

clean:
	rm -rf $(VENV) .pytest_cache
