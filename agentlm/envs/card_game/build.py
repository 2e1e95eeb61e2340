"""Builds AgentBench's Digital Card Game (engine, judge, AI SDK, baselines) from its unmodified source into a cache.

Nothing of the game is part of this project: the source is AgentBench's `src/tasks/card_game` folder (give the
folder, or an AgentBench root holding it, as `source` or in $AGENTLM_CARD_GAME_SRC). The build copies it into a
cache entry (`agentlm.cache.build_once`: one builder, the others wait, the entry appears whole or not at all), runs
the engine's Makefile (g++) and rebuilds the Python AI client (a pybind11 module, cmake) for this interpreter; the
shipped modules cover CPython 3.6/3.8/3.10 only. The entry is keyed by a digest of the source and the Python and
compiler versions, so an edited source or another interpreter gets its own build.

    python -m agentlm.envs.card_game.build --source PATH   (what `make card-game` runs)
"""
from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import sysconfig

from agentlm.cache import build_once, cache_root

SOURCE_ENV = "AGENTLM_CARD_GAME_SRC"
TASK_SUBDIR = pathlib.Path("src/tasks/card_game")
# Files every usable source has (relative to the card_game folder).
REQUIRED = ("logic/Makefile", "judger/judger.py", "judger/cal_metric.py", "AI_SDK/Python/main.py",
            "AI_SDK/Python/basline1.py", "AI_SDK/Python/basline2.py", "AI_SDK/Python/sdk/CMakeLists.txt")
BUILD_TIMEOUT_S = 900


class CardGameUnavailable(RuntimeError):
    """The game's source is not where it was looked for, or does not build here."""


def find_source(source: str | os.PathLike | None = None) -> pathlib.Path:
    """The card_game folder: `source` or $AGENTLM_CARD_GAME_SRC, either the folder itself or an AgentBench root."""
    given = source or os.environ.get(SOURCE_ENV, "")
    if not given:
        raise CardGameUnavailable(f"the Digital Card Game needs AgentBench's card_game source: set the "
                                  f"environment's engine_source option or ${SOURCE_ENV}")
    root = pathlib.Path(given).expanduser()
    for candidate in (root, root / TASK_SUBDIR):
        if all((candidate / f).is_file() for f in REQUIRED):
            return candidate.resolve()
    missing = [f for f in REQUIRED if not (root / f).is_file() and not (root / TASK_SUBDIR / f).is_file()]
    raise CardGameUnavailable(f"{root}: not AgentBench's card_game folder (or a root holding {TASK_SUBDIR}); "
                              f"missing {', '.join(missing)}")


def _digest(source: pathlib.Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source).as_posix()
        if rel.endswith((".so", ".pyd", ".o")) or "/build/" in f"/{rel}":
            continue  # prebuilt binaries and build leftovers are replaced, not used
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    compiler = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    h.update(f"{sys.version}|{sysconfig.get_config_var('EXT_SUFFIX')}|{compiler}".encode())
    return h.hexdigest()[:16]


def _run(cmd: list[str], cwd: pathlib.Path, what: str) -> None:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except FileNotFoundError as e:
        raise CardGameUnavailable(f"building the card game's {what}: {e.filename} is not installed "
                                  "(apt-get install g++ make cmake)") from e
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise CardGameUnavailable(f"building the card game's {what} failed ({' '.join(cmd)}):\n{tail}")


def _build(source: pathlib.Path, out: pathlib.Path) -> None:
    game = out / "card_game"
    shutil.copytree(source, game, ignore=shutil.ignore_patterns("build", "*.so", "*.pyd", "*.o"))
    for path in [game, *game.rglob("*")]:  # upstream files may be read-only; the build writes beside them
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    (game / "logic" / "bin").mkdir(exist_ok=True)
    (game / "logic" / "bin" / "main").unlink(missing_ok=True)  # always the engine built here, never the shipped one
    _run(["make", "-C", str(game / "logic")], out, "engine")
    import pybind11

    build_dir = out / "sdk_build"
    _run(["cmake", "-S", str(game / "AI_SDK/Python/sdk"), "-B", str(build_dir),
          f"-DCMAKE_PREFIX_PATH={pybind11.get_cmake_dir()}", f"-DPYTHON_EXECUTABLE={sys.executable}",
          f"-DPython_EXECUTABLE={sys.executable}"], out, "Python AI client (cmake)")
    _run(["make", "-C", str(build_dir), f"-j{max(1, min(4, os.cpu_count() or 1))}"], out, "Python AI client")
    built = list((build_dir / "bin").glob(f"ai_client*{sysconfig.get_config_var('EXT_SUFFIX')}"))
    if not built:
        raise CardGameUnavailable(f"the Python AI client build wrote no ai_client module into {build_dir / 'bin'}")
    shutil.copy2(built[0], game / "AI_SDK/Python/sdk" / built[0].name)
    shutil.rmtree(build_dir)


def _valid(entry: pathlib.Path) -> bool:
    engine = entry / "card_game" / "logic" / "bin" / "main"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return os.access(engine, os.X_OK) and any((entry / "card_game/AI_SDK/Python/sdk").glob(f"ai_client*{suffix}"))


def built_game(source: str | os.PathLike | None = None) -> pathlib.Path:
    """The built card_game folder (engine at logic/bin/main, AI client for this Python), building it if needed."""
    src = find_source(source)
    entry = cache_root() / "card_game" / _digest(src)
    return build_once(entry, lambda tmp: _build(src, tmp), directory=True, valid=_valid,
                      what="AgentBench card game build") / "card_game"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agentlm.envs.card_game.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=None, help=f"card_game folder or AgentBench root (default ${SOURCE_ENV})")
    args = parser.parse_args(argv)
    print(built_game(args.source))


if __name__ == "__main__":
    main()
