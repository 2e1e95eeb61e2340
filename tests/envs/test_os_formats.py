"""OS items in the shapes AgentBench's test folders use and dev.json does not, and AgentBench's folder layout.

Each item is synthetic and carries one of the shapes. Before agentlm.envs.os_items, a file holding one item
object was refused ("expected a list"), an inline shell string in a check list failed at reset with
AttributeError ('str' object has no attribute 'get'), an init list was not run at all, python check scripts
from a scripts folder and match objects with strip=false were not read as AgentBench reads them, and the
os_interaction/data root could not be given as --tasks.
"""
import json
import os
import pathlib

import pytest

from agentlm.envs import os_env, os_items
from agentlm.envs.base import Outcome
from agentlm.envs.loop import run_tasks
from agentlm.envs.os_sandbox import bwrap_available
from agentlm.envs.run import main as run_main

REASON = bwrap_available()
needs_bwrap = pytest.mark.skipif(REASON is not None and not os.environ.get("CI"), reason=str(REASON))

INLINE_CHECKS = {  # a check list of inline shell strings: $1 is the answer, $2 the example's output
    "description": "How many lines does /root/data.txt have?",
    "create": {"init": "seq 1 7 > /root/data.txt"},
    "evaluation": {"check": [None, "test \"$(echo $1)\" = \"$(echo $2)\"", "[ \"$1\" -gt 0 ]"],
                   "example": "wc -l < /root/data.txt"}}
MIXED_INIT = {  # init list: a file from the scripts folder, then a shell string that uses what it made
    "description": "What is the sum of the numbers in /root/nums?",
    "create": {"image": "local-os/default", "init": [{"file": "init/nums.sh"}, "echo 10 >> /root/nums"]},
    "evaluation": {"check": [None, {"language": "python", "file": "check/integer-match.py"}],
                   "example": {"file": "example/sum.sh"}}}
PYTHON_CHECK = {  # an item-specific python check script, and an inline python check
    "description": "Create /root/hello.txt containing 'hello'.",
    "evaluation": {"check": [{"language": "python", "file": "check/hello.py"},
                             {"language": "python", "code": "import sys\nsys.exit(0 if open('/root/hello.txt')"
                                                            ".read().strip() == 'hello' else 1)"}],
                   "example": {"code": "echo hello > /root/hello.txt"}}}
MATCH_NO_STRIP = {"description": "Say ' x '.", "evaluation": {"match": {"answer": " x ", "strip": False}}}
MATCH_REGEX = {"description": "Say a number.", "evaluation": {"match": {"regex": r"^\d+$"}}}
PYTHON_START = {"description": "What does /root/beat hold?",
                "start": {"language": "python", "code": "open('/root/beat', 'w').write('beat')\nimport time\n"
                                                        "time.sleep(60)"},
                "evaluation": {"check": [None, {"language": "python", "file": "check/string-match.py"}],
                               "example": "sleep 1; cat /root/beat"}}


def _agentbench_tree(root: pathlib.Path) -> pathlib.Path:
    """os_interaction/{data,scripts}/<n> as AgentBench ships them; folder 2 holds one item object per file."""
    data, scripts = root / "os_interaction" / "data", root / "os_interaction" / "scripts"
    for d in ("1", "2"):
        (data / d).mkdir(parents=True)
        for sub in ("init", "example", "check"):
            (scripts / d / sub).mkdir(parents=True)
    (data / "1" / "items.json").write_text(json.dumps([INLINE_CHECKS, MIXED_INIT]))
    (scripts / "1" / "init" / "nums.sh").write_text("printf '1\\n2\\n3\\n' > /root/nums\n")
    (scripts / "1" / "example" / "sum.sh").write_text("awk '{s+=$1} END {print s}' /root/nums\n")
    (data / "2" / "a.json").write_text(json.dumps(PYTHON_CHECK))
    (data / "2" / "b.json").write_text(json.dumps(PYTHON_START))
    (scripts / "2" / "check" / "hello.py").write_text(
        "import os, sys\nsys.exit(0 if os.path.exists('/root/hello.txt') else 1)\n")
    (data / "dev.json").write_text(json.dumps([MATCH_NO_STRIP]))  # a loose file pairs with scripts/dev
    return data


def test_every_shape_parses_as_agentbench_reads_it():
    item = os_items.parse_item(MIXED_INIT, "x")
    assert item.init == (os_items.Script("bash", file="init/nums.sh"), os_items.Script("bash", "echo 10 >> /root/nums"))
    assert item.check[0] is None and item.check[1].builtin == "integer-match" and item.example.file == "example/sum.sh"
    assert os_items.parse_item(INLINE_CHECKS, "x").check[1] == os_items.Script("bash", INLINE_CHECKS["evaluation"]
                                                                                ["check"][1])
    assert os_items.parse_item(PYTHON_CHECK, "x").check[1].interpreter == "python3"
    assert os_items.parse_item(MATCH_NO_STRIP, "x").match == {"answer": " x ", "strip": False}
    assert os_items.parse_item({"description": "d", "evaluation": {"match": "1"}}, "x").match == {"answer": "1",
                                                                                                  "strip": True}
    for bad, field in [({"description": "d", "evaluation": {}}, "evaluation needs"),
                       ({"description": "d", "evaluation": {"check": [{"lang": "x"}]}}, r"evaluation.check\[0\]"),
                       ({"description": "d", "evaluation": {"check": [None]}}, "no example"),
                       ({"description": "d", "create": {"init": [5]}, "evaluation": {"match": "1"}},
                        r"create.init\[0\]")]:
        with pytest.raises(os_items.OSItemError, match=field):
            os_items.parse_item(bad, "f.json item 3")


def test_layout_ids_and_scripts_pairing(tmp_path):
    data = _agentbench_tree(tmp_path)
    tasks = os_env.load_tasks(data)
    assert [t.id for t in tasks] == ["os_dev_0", "os_1_0", "os_1_1", "os_2_0", "os_2_1"]
    assert tasks[1].data[os_items.SCRIPTS_DIR_KEY].endswith("scripts/1")
    assert tasks[3].data[os_items.SCRIPTS_DIR_KEY].endswith("scripts/2")
    assert [t.id for t in os_env.load_tasks(data / "2")] == ["os_2_0", "os_2_1"]
    assert [t.id for t in os_env.load_tasks(data / "2" / "a.json")] == ["os_a_0"]  # one object, not a list
    assert [t.id for t in os_env.load_tasks(str(data / "1" / "*.json"))] == ["os_1_0", "os_1_1"]
    (tmp_path / "bad.json").write_text(json.dumps([{"description": "d", "evaluation": {"check": "x", "example": 3}}]))
    with pytest.raises(os_items.OSItemError, match=r"bad.json item 0: evaluation.example"):
        os_env.load_tasks(tmp_path / "bad.json")


def test_scripts_folder_is_required_where_an_item_names_a_file(tmp_path):
    (tmp_path / "items.json").write_text(json.dumps(MIXED_INIT))
    (task,) = os_env.load_tasks(tmp_path / "items.json")  # no scripts folder beside it
    eps = run_tasks(lambda: os_env.OSEnv(scripts_dir=None, sandbox="plain"), os_env.OSOracle(scripts_dir=None),
                    [task], progress=False)
    assert eps[0].outcome == Outcome.UNSCORABLE and "init/nums.sh" in eps[0].info["unscorable"]


@needs_bwrap
@pytest.mark.parametrize("sandbox", ["plain", "auto"])  # auto: the root sandbox where the machine has one
def test_oracle_passes_every_shape_from_the_data_root(tmp_path, sandbox):
    data = _agentbench_tree(tmp_path)
    out = tmp_path / "run"
    assert run_main(["--env", "os", "--tasks", str(data), "--out", str(out), "--option", f"sandbox={sandbox}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = {json.loads(line)["id"]: json.loads(line) for line in (out / "os.jsonl").read_text().splitlines()}
    assert summary["episodes"] == 5 and summary["success_rate"] == 1.0, {k: r.get("outcome") for k, r in rows.items()}


@needs_bwrap
def test_checks_and_matches_fail_wrong_answers(tmp_path):
    tasks = os_env.load_tasks(_agentbench_tree(tmp_path))
    with os_env.OSEnv(sandbox="plain") as env:
        env.reset(tasks[1])  # INLINE_CHECKS: 7 lines
        assert env.step("Think: guess\n\nAct: answer(8)").reward == 0.0
        env.reset(tasks[1])
        assert env.step("Think: count\n\nAct: answer(7)").reward == 1.0
        env.reset(tasks[2])  # MIXED_INIT: the file ran first, then the string: 1+2+3+10
        assert env.step("Think: sum\n\nAct: bash\n\n```bash\ncat /root/nums | paste -sd+ | bc\n```").observation \
            .strip().endswith("16")
        assert env.step("Think: sum\n\nAct: answer(16)").reward == 1.0
        env.reset(tasks[0])  # match with strip=false: the spaces count
        assert env.step("Think: x\n\nAct: answer(x)").reward == 0.0
        env.reset(tasks[0])
        assert env.step("Think: x\n\nAct: answer( x )").reward == 1.0
        env.reset(tasks[3])  # PYTHON_CHECK: nothing done, both python checks fail
        assert env.step("Think: done\n\nAct: finish").reward == 0.0
    (task,) = os_env.load_tasks(_write(tmp_path / "regex.json", MATCH_REGEX))
    with os_env.OSEnv(sandbox="plain") as env:
        env.reset(task)
        assert env.step("Think: n\n\nAct: answer(42)").reward == 1.0
        env.reset(task)
        assert env.step("Think: n\n\nAct: answer(forty)").reward == 0.0


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path
