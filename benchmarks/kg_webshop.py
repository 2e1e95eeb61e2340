"""Wall time of the KG and WebShop harness on this machine: the embedded KG graphs built from AgentBench's files
and the gold-action oracle over dev and std (each item checked by a gold replay first), and WebShop's catalogue
load, BM25 index and oracle over the project's test catalogue. Results go to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/kg_webshop.py --shared ../shared [--workers 2]
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from common import timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    kg_dir = pathlib.Path(args.shared).resolve() / "data" / "kg"

    from agentlm.envs import loop, registry
    from agentlm.envs.kg import env as kg
    from tests.envs.webshop_catalog import write_catalog

    onto = str(kg_dir / "ontology")
    for name in ("dev", "std", "kg_rl_all"):
        items = kg.load_tasks(str(kg_dir / f"{name}.json"), name)
        graph = timed(f"KG embedded graph from {name}.json ({len(items)} items)",
                      lambda: kg.local_graph(items[0].data["item_file"], onto))
        print(f"  {len(graph)} triples")
    for name in ("dev", "std"):
        items = kg.load_tasks(str(kg_dir / f"{name}.json"), name)
        eps = timed(f"KG oracle on {name} ({len(items)} items, {args.workers} workers)", lambda: loop.run_tasks(
            kg.KGEnv, kg.GoldActionOracle(), items, workers=args.workers, progress=False))
        print("  ", {k: v for k, v in kg.aggregate(eps, items).items() if k in ("score", "scored", "unscorable")})
    spec = registry.get("webshop")
    shop = write_catalog(tempfile.mkdtemp())
    tasks = timed("WebShop catalogue and goals (project catalogue)", lambda: spec.tasks(f"{shop}::0:"))
    eps = timed("WebShop oracle incl. BM25 index, 6 goals", lambda: loop.run_tasks(
        spec.env_factory(spacy_model=""), spec.make_oracle(), tasks, progress=False))
    print("  score", spec.score(eps, tasks)["score"])


if __name__ == "__main__":
    main()
