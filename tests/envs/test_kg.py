"""AgentBench's KG task: the tools under AgentBench's rules on a small graph made here, the embedded graph built
from item facts, answer F1, a SPARQL endpoint backend over HTTP, and the gold oracle on the 20 dev questions."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

pytest.importorskip("rdflib")

from agentlm.envs import loop, registry  # noqa: E402
from agentlm.envs.base import Outcome  # noqa: E402
from agentlm.envs.kg.env import GoldActionOracle, KGEnv, aggregate, f1, load_tasks, local_graph  # noqa: E402
from agentlm.envs.kg.local_graph import UNKNOWN_VALUE, WITNESS_NS  # noqa: E402

ONTOLOGY = {
    "fb_roles": ["film.director film.director.film film.film", "film.film film.film.directed_by film.director",
                 "film.film film.film.country location.country", "location.country location.country.films film.film",
                 "film.film film.film.genre film.genre", "film.film film.film.runtime type.float"],
    "reverse_properties": ["film.director.film\tfilm.film.directed_by", "film.film.country\tlocation.country.films"],
}
VOCAB = {"relations": ["film.director.film", "film.film.directed_by", "film.film.country", "location.country.films",
                       "film.film.genre"], "attributes": ["film.film.runtime"], "classes": []}
ITEMS = [
    {"question": "which films by ann were made in freedonia?", "qid": "q_films",
     "entities": {"Ann": "m.ann", "Freedonia": "m.fr"},
     "actions": ["get_relations(m.ann)", "get_neighbors(m.ann,film.director.film)", "get_relations(m.fr)",
                 "get_neighbors(m.fr,location.country.films)", "intersection(#0,#1)"],
     "answer": [{"answer_type": "Entity", "answer_argument": "m.f1", "entity_name": "One"},
                {"answer_type": "Entity", "answer_argument": "m.f2", "entity_name": "Two"}]},
    {"question": "how many genres do ann's films have?", "qid": "q_count", "entities": {"Ann": "m.ann"},
     "actions": ["get_relations(m.ann)", "get_neighbors(m.ann,film.director.film)", "get_relations(#0)",
                 "get_neighbors(#0,film.film.genre)", "count(#1)"],
     "answer": [{"answer_type": "Value", "answer_argument": "3"}]},
    {"question": "the longest film made in freedonia?", "qid": "q_max", "entities": {"Freedonia": "m.fr"},
     "actions": ["get_relations(m.fr)", "get_neighbors(m.fr,location.country.films)", "get_attributes(#0)",
                 "argmax(#0,film.film.runtime)"],
     "answer": [{"answer_type": "Entity", "answer_argument": "m.f9", "entity_name": "Epic"}]},
]


@pytest.fixture
def kg_files(tmp_path):
    onto = tmp_path / "ontology"
    onto.mkdir()
    for name, lines in ONTOLOGY.items():
        (onto / name).write_text("\n".join(lines) + "\n")
    (onto / "vocab.json").write_text(json.dumps(VOCAB))
    items = tmp_path / "dev.json"
    items.write_text(json.dumps(ITEMS))
    return items


def _play(env, task, replies):
    env.reset(task)
    return [env.step(r) for r in replies]


def test_tools_follow_agentbench_rules(kg_files):
    task = load_tasks(str(kg_files), "dev")[0]
    env = KGEnv()
    prefix = env.reset(task)
    assert prefix[-1]["value"].endswith(
        "Question: which films by ann were made in freedonia?\nEntities: [Ann, Freedonia]")
    # get_neighbors before get_relations is refused, as in AgentBench
    r = env.step("Thought: go\nAction: get_neighbors(Ann, film.director.film)")
    assert r.invalid and "cannot be executed" in r.observation
    r = env.step("Action: get_relations(Ann)")
    assert r.observation == "Observation: [film.director.film]"  # reverse edges are there, attributes are not
    assert env.step("Action: get_neighbors(Ann, film.director.film)").observation == \
        "Observation: variable #0, which are instances of film.film"
    env.step("Action: get_relations(m.fr)")
    env.step("Action: get_neighbors(m.fr, location.country.films)")
    env.step("Action: get_relations(#0)")
    # different types cannot be intersected
    r = env.step("Action: get_neighbors(#0, film.film.directed_by)")
    assert r.observation.endswith("variable #2, which are instances of film.director")
    r = env.step("Action: intersection(#0, #2)")
    assert r.invalid and "not of the same type" in r.observation
    assert "#3" in env.step("Action: intersection(variable #0, #1)").observation
    assert env.step("Final Answer: #9").invalid  # no such variable: the episode goes on
    done = env.step("Thought: done.\nFinal Answer: #3")
    assert done.done and done.reward == 1.0 and sorted(done.info["predicted"]) == ["m.f1", "m.f2"]


def test_embedded_graph_holds_item_facts(kg_files):
    from rdflib import Literal, URIRef
    g = local_graph(str(kg_files), str(kg_files.parent / "ontology"))
    ns = "http://rdf.freebase.com/ns/"
    assert (URIRef(ns + "m.ann"), URIRef(ns + "film.director.film"), URIRef(ns + "m.f1")) in g
    assert (URIRef(ns + "m.f1"), URIRef(ns + "film.film.directed_by"), URIRef(ns + "m.ann")) in g  # reverse
    witnesses = {s for s in g.subjects() if str(s).startswith(WITNESS_NS + "q_count/")}
    assert len(witnesses) == 4  # one film (unnamed) and three genres
    assert (URIRef(ns + "m.f9"), URIRef(ns + "film.film.runtime"), Literal(UNKNOWN_VALUE)) in g


def test_oracle_count_argmax_and_f1(kg_files):
    tasks = load_tasks(str(kg_files), "dev")
    episodes = loop.run_tasks(KGEnv, GoldActionOracle(), tasks, progress=False)
    assert [e.info["predicted"] for e in episodes] == [["m.f1", "m.f2"], ["3"], ["m.f9"]]
    # Ann's count film is another film of Ann's: on the shared graph the first question gains it as a member of
    # #0 but not of the intersection, so every gold answer is still exact
    assert all(e.outcome == Outcome.SUCCESS for e in episodes)
    assert aggregate(episodes, tasks)["score"] == 100.0
    assert f1(["a", "b"], ["a"]) == pytest.approx(2 / 3) and f1(["x"], ["a"]) == 0.0
    wrong = _play(KGEnv(), tasks[0], ["Action: get_relations(Ann)", "Action: get_neighbors(Ann, film.director.film)",
                                      "Final Answer: #0"])[-1]
    assert wrong.done and 0 < wrong.reward < 1  # Ann's films include the count question's unnamed film


class _Endpoint(BaseHTTPRequestHandler):
    """A SPARQL 1.1 protocol endpoint over an rdflib graph (what a Virtuoso server answers)."""
    graph = None

    def _answer(self, query):
        body = self.graph.query(query).serialize(format="json")
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer(parse_qs(self.path.split("?", 1)[1])["query"][0])

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"])).decode()
        ctype = self.headers.get("Content-Type", "")
        self._answer(data if "sparql-query" in ctype else parse_qs(data)["query"][0])

    def log_message(self, *args):
        pass


def test_sparql_endpoint_backend(kg_files):
    _Endpoint.graph = local_graph(str(kg_files), str(kg_files.parent / "ontology"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/sparql"
        spec = registry.get("kg")
        factory = spec.env_factory(sparql_url=url, ontology_dir=str(kg_files.parent / "ontology"))
        episodes = loop.run_tasks(factory, spec.make_oracle(), load_tasks(str(kg_files)), progress=False)
        assert [e.reward for e in episodes] == [1.0, 1.0, 1.0]
    finally:
        server.shutdown()


def test_dev_oracle_on_embedded_graph(shared):
    """The 20 dev questions: the gold programs reach F1 = 1 on the embedded graph except two that break
    AgentBench's own rules, which gold_check sets apart as unscorable."""
    tasks = load_tasks(str(shared("data", "kg", "dev.json")), "dev")
    assert len(tasks) == 20
    plain = loop.run_tasks(lambda: KGEnv(gold_check=False), GoldActionOracle(), tasks, progress=False)
    misses = {e.task_id for e in plain if e.reward < 1.0}
    assert misses == {
        # get_relations(common.topic): a type, not an entity (AgentBench accepts only m./f. ids and variables)
        "kg_WebQTrn-1215_20ae9a3ac5a1d4d40671f15de04edb15_cwq",
        # intersection of sports.sports_championship_event with time.event: different types
        "kg_WebQTest-969_7621d2b69f15f44aba9e557f4af9764c_cwq",
    }
    checked = loop.run_tasks(KGEnv, GoldActionOracle(), tasks, progress=False)
    summary = aggregate(checked, tasks)
    assert summary["unscorable"] == 2 and summary["scored"] == 18 and summary["score"] == 100.0


@pytest.mark.slow  # 150 episodes, each checked by replaying its gold program first
def test_std_oracle_on_embedded_graph(shared):
    """The 150 std questions: 128 are answerable on the embedded graph (docs/envs/kg.md has the other 22) and the
    oracle gets each of them exactly, including entity names the tool syntax cannot carry (played as ids)."""
    tasks = load_tasks(str(shared("data", "kg", "std.json")), "std")
    episodes = loop.run_tasks(KGEnv, GoldActionOracle(), tasks, workers=2, progress=False)
    summary = aggregate(episodes, tasks)
    assert (summary["scored"], summary["unscorable"], summary["score"]) == (128, 22, 100.0)
