# Two set-up commands: `make install`, then `make test`. `make demo` runs the main job on the embedded default.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the environments need (OS sandboxes, MiniWoB++ browser, the card game's engine). Java 17 comes with
# the base image; default-jre-headless is installed only where java is missing. The OS root sandbox needs uidmap
# (newuidmap for users other than root), mmdebstrap (builds its Debian tree) and sudo (this Makefile's own installs
# as a user); the Digital Card Game builds with g++, make and cmake.
DEBS := bubblewrap chromium chromium-driver sqlite3 sudo uidmap mmdebstrap g++ make cmake

.PHONY: install debs venv os-rootfs sandbox-check test test-slow test-all demo mariadb card-game card-game-if-present clean

install: debs venv os-rootfs card-game-if-present

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

# The OS environment's root sandbox: a Debian tree built once with mmdebstrap (reaches deb.debian.org) and cached
# (/var/cache/agentlm/os-rootfs as root, else ~/.cache/agentlm/os-rootfs; $$AGENTLM_OS_ROOTFS_DIR). Where it cannot be
# built, install goes on and says what is missing; OS items that need root are then reported as unscorable.
os-rootfs: venv
	@$(BIN)/python -m agentlm.envs.os_sandbox_root build || \
	  echo "WARNING: no OS root sandbox on this machine (see the message above); OS items that need root will be unscorable"

# Starts one root sandbox and creates a user, a group and a command in it; names what is missing otherwise.
sandbox-check: venv
	$(BIN)/python -m agentlm.envs.os_sandbox_root check

test:
	$(BIN)/python -m pytest -q tests

test-slow:
	$(BIN)/python -m pytest -q -m slow tests

test-all:
	$(BIN)/python -m pytest -q -m "slow or not slow" tests

# The main job on the embedded default: data the project makes itself -> the tiny model trained at eta = 0.2.
DEMO := data/generated/demo
PIPELINE := $(BIN)/python -m data_pipeline.run --config configs/pipeline/offline_small.py
demo:
	$(PIPELINE) --config.out_dir=$(DEMO)/agent
	$(PIPELINE) --config.out_dir=$(DEMO)/heldout --config.sources.db_derived.seed=1001 \
	  --config.sources.db_derived.n_tables=3 --config.sources.os_derived.seed=1001 --config.sources.os_derived.n=6 \
	  --config.sources.household.seed=1001 --config.sources.household.n=2 --config.sources.db_annotated.enabled=False \
	  --config.sources.os_annotated.enabled=False --config.sources.household_annotated.enabled=False
	$(BIN)/python -m data_pipeline.word_games --data_dir $(DEMO) --agent_dir $(DEMO)/agent/export/agentinstruct
	$(BIN)/python -m agentlm.train --config configs/train/demo.py

# Optional real MySQL-compatible server for the DB environment (--backend mariadb): installs Debian's
# mariadb-server if missing and starts it on loopback in ~/.cache/agentlm/mariadb ($$AGENTLM_MARIADB_DIR).
mariadb:
	@dpkg -s mariadb-server >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client; }
	$(BIN)/python -m agentlm.envs.mariadb start

# AgentBench's Digital Card Game (engine, judge, AI client for this Python) built into the cache from its
# unmodified source: AGENTLM_CARD_GAME_SRC=<AgentBench root or src/tasks/card_game>, default ../shared's copy.
AGENTLM_CARD_GAME_SRC ?= ../shared/third_party/agentbench_card_game
card-game:
	$(BIN)/python -m agentlm.envs.card_game.build --source $(AGENTLM_CARD_GAME_SRC)

# `make install` builds it too when the source is there (a fresh clone has no ../shared: it says so and goes on).
card-game-if-present:
	@if [ -d "$(AGENTLM_CARD_GAME_SRC)" ]; then $(MAKE) --no-print-directory card-game; \
	else echo "card game: no source at $(AGENTLM_CARD_GAME_SRC) (set AGENTLM_CARD_GAME_SRC, then make card-game)"; fi

clean:
	rm -rf $(VENV) .pytest_cache
