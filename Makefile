# Two set-up commands: `make install`, then `make test`. `make demo` runs the main job on the embedded default.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the environments need (OS sandboxes, MiniWoB++ browser, the card game's engine). Java 17 comes with
# the base image; default-jre-headless is installed only where java is missing. The OS root sandbox needs uidmap
# (newuidmap for users other than root), mmdebstrap (builds its Debian tree) and sudo (this Makefile's own installs
# as a user); the Digital Card Game builds with g++, make and cmake.
DEBS := bubblewrap chromium chromium-driver sqlite3 sudo uidmap mmdebstrap g++ make cmake
# CI also installs what only slow tests need (the real MariaDB server of tests/envs/test_db.py).
CI_DEBS := mariadb-server mariadb-client
# On CI (CI set, as .ci/run runs): MariaDB too, so its tests run instead of skipping
DEBS += $(if $(CI),$(CI_DEBS))

.PHONY: install debs venv os-rootfs sandbox-check test test-slow test-all test-experiment test-gcs ci demo mariadb card-game card-game-if-present clean

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
	$(MAKE) planner
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

# With CI set, `make test` is CI's scope: default and slow tests (all but `experiment`), accepted skips listed (-rs)
# and a skip whose reason tests/conftest.py's CI_MAY_SKIP does not accept failing; --durations keeps times in the log.
TEST_SCOPE := $(if $(CI),-m "not experiment and not gcs_orbax" -rs --durations=25)
test:
	$(BIN)/python -m pytest -q $(TEST_SCOPE) tests

test-slow:
	$(BIN)/python -m pytest -q -m slow tests

test-all:
	$(BIN)/python -m pytest -q -m "not experiment and not gcs_orbax" tests

# Orbax checkpoints of whole runs in the Cloud Storage emulator (tests/test_object_storage.py says why not in CI)
test-gcs:
	$(BIN)/python -m pytest -q -m gcs_orbax tests/test_object_storage.py

# The toy AgentTuning experiment end to end against issue 20's targets (tests/test_demo_e2e.py, ~25 min on 2 busy
# cores): too long for CI's budget; CI runs its reduced slow version
test-experiment:
	$(BIN)/python -m pytest -q -m experiment tests

# What .ci/run does on a fresh clone: the README's two commands with CI=true (everything installed, MariaDB included;
# every test but the `experiment` one).
ci:
	CI=true $(MAKE) install
	CI=true $(MAKE) test

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

# ALFWorld's PDDL games need TextWorld's planner, fast-downward-textworld, which PyPI ships only as source (a C++
# build of several minutes). Built once into a wheel under the agentlm cache ($$AGENTLM_CACHE, default ~/.cache/agentlm)
# and installed from there, so a second `make install` (or a new venv) reuses it.
PLANNER := fast-downward-textworld==20.6.4
PLANNER_WHEELS := $(or $(AGENTLM_CACHE),$(HOME)/.cache/agentlm)/wheels
.PHONY: planner
planner:
	@ls $(PLANNER_WHEELS)/fast_downward_textworld-20.6.4-*.whl >/dev/null 2>&1 || { \
	  echo "building $(PLANNER) from source once (several minutes) into $(PLANNER_WHEELS)"; mkdir -p $(PLANNER_WHEELS) && \
	  $(BIN)/pip wheel -q --no-deps -w $(PLANNER_WHEELS).tmp $(PLANNER) && mv $(PLANNER_WHEELS).tmp/*.whl $(PLANNER_WHEELS)/ && rmdir $(PLANNER_WHEELS).tmp; }
	$(BIN)/pip install -q --no-deps $(PLANNER_WHEELS)/fast_downward_textworld-20.6.4-*.whl
