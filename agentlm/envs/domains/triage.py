"""Clinical-style decision task: emergency-department triage by a written protocol, with checkable outcomes.

A teaching simulation, not medical guidance: the protocol below is a simplified five-level scheme written for this
environment. Each episode holds the waiting patients of one task (age, complaint, history, vitals) in memory; the
agent reads the protocol, examines patients, orders the tests the protocol requires, notifies the physician when
it says so, and assigns each patient a level and an area. The checker recomputes the protocol's decision from the
patient data (`protocol_decision`) and compares it with the final state (and, for "who first" tasks, the answer).
Training templates: one patient with a common complaint; two patients, who is seen first. Held-out templates:
one patient with a complaint no training task has; re-triage of a patient whose condition changed.
"""
from __future__ import annotations

import copy
import random
import re
from typing import Literal, Optional

from agentlm.envs.tools.domain import TEST, TRAIN, Domain, TaskTemplate, Verdict

# complaint: (resources the protocol expects, tests it requires)
COMPLAINTS = {
    "chest pain": (2, ["ECG"]), "abdominal pain": (2, []), "ankle injury": (1, []), "laceration": (1, []),
    "sore throat": (0, []), "fever": (1, []),  # the training templates' complaints
    "sudden weakness": (2, ["glucose"]), "shortness of breath": (2, []), "urinary symptoms": (1, ["urinalysis"]),
    "rash": (0, []), "medication refill": (0, []),  # seen only in held-out templates
}
TRAIN_COMPLAINTS = ["chest pain", "abdominal pain", "ankle injury", "laceration", "sore throat", "fever"]
TEST_COMPLAINTS = ["sudden weakness", "shortness of breath", "urinary symptoms", "rash", "medication refill"]
TESTS = ("ECG", "glucose", "urinalysis", "blood_panel", "xray")
AREA = {1: "resuscitation", 2: "acute", 3: "acute", 4: "fast_track", 5: "fast_track"}

PROTOCOL = """TRIAGE PROTOCOL (training simulation). Apply the steps in order; the first that applies decides.
Step 1, level 1 (resuscitation): the patient is unresponsive, or SpO2 < 85, or systolic BP < 80, or respiratory
  rate < 8 or > 35.
Step 2, level 2 (emergent): chest pain with age >= 40 or a cardiac history; sudden weakness (possible stroke);
  SpO2 85-91; heart rate > 130; systolic BP > 200; temperature >= 40.0.
Step 3, by expected resources of the complaint: 2 or more -> level 3; 1 -> level 4; none -> level 5.
  Resources: chest pain 2, abdominal pain 2, sudden weakness 2, shortness of breath 2, ankle injury 1,
  laceration 1, fever 1, urinary symptoms 1, sore throat 0, rash 0, medication refill 0.
Step 4, danger-zone vitals: a patient at level 3, 4 or 5 with heart rate > 100, respiratory rate > 20,
  SpO2 < 94 or temperature >= 39.0 is raised to level 2.
Areas: level 1 -> resuscitation; levels 2-3 -> acute; levels 4-5 -> fast_track.
Required actions: notify the physician for every level 1 or 2 patient; order an ECG for chest pain, a glucose
  test for sudden weakness, a urinalysis for urinary symptoms; order no other tests at triage.
Who is seen first: the lowest level number; on equal levels, the earlier arrival."""

INSTRUCTION = """You are the triage nurse assistant of an emergency department. You assess waiting patients with the
tools and follow the department's written triage protocol exactly (read it with read_protocol). For every patient
the request is about: look at the patient and their current vitals, order the tests the protocol requires, notify
the physician when the protocol says so, then assign the triage level and area."""


def protocol_decision(p: dict) -> tuple[int, list[str], bool]:
    """(level, required tests, notify physician) for one patient record, exactly as PROTOCOL states it."""
    v, age, complaint = p["vitals"], p["age"], p["complaint"]
    resources, tests = COMPLAINTS[complaint]
    if not v["responsive"] or v["spo2"] < 85 or v["sbp"] < 80 or v["rr"] < 8 or v["rr"] > 35:
        level = 1
    elif ((complaint == "chest pain" and (age >= 40 or "cardiac" in " ".join(p["history"])))
          or complaint == "sudden weakness" or 85 <= v["spo2"] <= 91 or v["hr"] > 130 or v["sbp"] > 200
          or v["temp"] >= 40.0):
        level = 2
    else:
        level = 3 if resources >= 2 else 4 if resources == 1 else 5
        if v["hr"] > 100 or v["rr"] > 20 or v["spo2"] < 94 or v["temp"] >= 39.0:
            level = 2
    return level, list(tests), level <= 2


class Department:
    """One episode's waiting room: patient records plus what the agent ordered, notified and assigned."""

    def __init__(self, data: dict):
        w = copy.deepcopy(data["world"])
        self.patients: dict[str, dict] = w["patients"]
        self.orders: dict[str, list[str]] = w.get("orders", {})
        self.notified: dict[str, str] = w.get("notified", {})
        self.assigned: dict[str, list] = w.get("assigned", {})

    def patient(self, pid: str) -> dict:
        if pid not in self.patients:
            raise LookupError(f"no waiting patient {pid!r}; waiting: {sorted(self.patients)}")
        return self.patients[pid]


# -- tools ---------------------------------------------------------------------------------------------------------
def read_protocol(world: Department) -> str:
    """The department's written triage protocol."""
    return PROTOCOL


def list_waiting(world: Department) -> list[dict]:
    """Patients in the waiting room: id, arrival time and chief complaint."""
    return [{"patient_id": k, "arrival": p["arrival"], "complaint": p["complaint"]}
            for k, p in sorted(world.patients.items(), key=lambda kv: kv[1]["arrival"])]


def get_patient(world: Department, patient_id: str) -> dict:
    """A patient's age, chief complaint, history and any earlier triage.

    Args:
        patient_id: e.g. P-1234
    """
    p = world.patient(patient_id)
    out = {"patient_id": patient_id, "age": p["age"], "complaint": p["complaint"], "history": p["history"],
           "arrival": p["arrival"]}
    if patient_id in world.assigned:
        out["current_triage"] = {"level": world.assigned[patient_id][0], "area": world.assigned[patient_id][1]}
    return out


def get_vitals(world: Department, patient_id: str) -> dict:
    """The patient's most recent vital signs (heart rate, systolic BP, respiratory rate, SpO2, temperature).

    Args:
        patient_id: e.g. P-1234
    """
    v = world.patient(patient_id)["vitals"]
    return {"responsive": v["responsive"], "heart_rate": v["hr"], "systolic_bp": v["sbp"],
            "respiratory_rate": v["rr"], "spo2": v["spo2"], "temperature_c": v["temp"]}


def order_test(world: Department, patient_id: str, test: Literal["ECG", "glucose", "urinalysis", "blood_panel",
                                                                  "xray"]) -> str:
    """Orders a test for a patient.

    Args:
        patient_id: e.g. P-1234
        test: ECG, glucose, urinalysis, blood_panel or xray
    """
    world.patient(patient_id)
    done = world.orders.setdefault(patient_id, [])
    if test in done:
        raise ValueError(f"{test} is already ordered for {patient_id}")
    done.append(test)
    return f"{test} ordered for {patient_id}"


def notify_physician(world: Department, patient_id: str, reason: str) -> str:
    """Pages the emergency physician about a patient.

    Args:
        patient_id: e.g. P-1234
        reason: one line on why
    """
    world.patient(patient_id)
    if not reason.strip():
        raise ValueError("give the physician a reason")
    world.notified[patient_id] = reason
    return f"physician notified about {patient_id}"


def assign_triage(world: Department, patient_id: str, level: int,
                  area: Literal["resuscitation", "acute", "fast_track"], note: Optional[str] = None) -> str:
    """Records (or updates) a patient's triage level (1 most urgent to 5) and treatment area.

    Args:
        patient_id: e.g. P-1234
        level: 1 to 5
        area: resuscitation, acute or fast_track
        note: optional remark
    """
    world.patient(patient_id)
    if not 1 <= level <= 5:
        raise ValueError("level must be 1 to 5")
    world.assigned[patient_id] = [level, area]
    return f"{patient_id} assigned level {level}, area {area}"


TOOLS = [read_protocol, list_waiting, get_patient, get_vitals, order_test, notify_physician, assign_triage]


# -- task templates ------------------------------------------------------------------------------------------------
def _vitals(rng: random.Random, severity: str) -> dict:
    v = {"responsive": True, "hr": rng.randint(62, 95), "sbp": rng.randint(105, 145), "rr": rng.randint(12, 18),
         "spo2": rng.randint(95, 100), "temp": round(rng.uniform(36.5, 37.8), 1)}
    if severity == "critical":
        key = rng.choice(["responsive", "spo2", "sbp", "rr"])
        v.update({"responsive": {"responsive": False}, "spo2": {"spo2": rng.randint(76, 84)},
                  "sbp": {"sbp": rng.randint(62, 79)}, "rr": {"rr": rng.randint(36, 42)}}[key])
    elif severity == "high":
        v.update(rng.choice([{"spo2": rng.randint(86, 91)}, {"hr": rng.randint(131, 150)},
                             {"sbp": rng.randint(201, 220)}, {"temp": round(rng.uniform(40.0, 40.8), 1)}]))
    elif severity == "danger":
        v.update(rng.choice([{"hr": rng.randint(101, 125)}, {"rr": rng.randint(21, 28)}, {"spo2": rng.randint(92, 93)},
                             {"temp": round(rng.uniform(39.0, 39.8), 1)}]))
    return v


def _patient(rng: random.Random, complaints: list[str], arrival: str, severity: str | None = None) -> dict:
    severity = severity or rng.choices(["critical", "high", "danger", "normal"], [0.1, 0.12, 0.15, 0.63])[0]
    history = rng.sample(["hypertension", "diabetes", "asthma", "cardiac stent", "prior cardiac arrest", "none"], 2)
    return {"age": rng.randint(18, 88), "complaint": rng.choice(complaints), "history": history, "arrival": arrival,
            "vitals": _vitals(rng, severity)}


def _pid(rng: random.Random, taken) -> str:
    while True:
        pid = f"P-{rng.randint(1000, 9999)}"
        if pid not in taken:
            return pid


def _plan_for(pid: str, p: dict, first: bool) -> list[dict]:
    level, tests, notify = protocol_decision(p)
    steps = [{"tool": "read_protocol", "args": {}, "thought": "I start from the written protocol."}] if first else []
    steps += [{"tool": "get_patient", "args": {"patient_id": pid}, "thought": f"I look at {pid}'s record."},
              {"tool": "get_vitals", "args": {"patient_id": pid}, "thought": f"Now {pid}'s current vitals."}]
    for t in tests:
        steps.append({"tool": "order_test", "args": {"patient_id": pid, "test": t},
                      "thought": f"The protocol requires {t} for {p['complaint']}."})
    if notify:
        steps.append({"tool": "notify_physician", "args": {"patient_id": pid, "reason": f"triage level {level}"},
                      "thought": f"{pid} is level {level}, so the physician must be notified."})
    steps.append({"tool": "assign_triage", "args": {"patient_id": pid, "level": level, "area": AREA[level]},
                  "thought": f"By the protocol {pid} ({p['complaint']}) is level {level}, area {AREA[level]}."})
    return steps


def _single(complaints: list[str]):
    def make(rng: random.Random) -> dict:
        pid = _pid(rng, ())
        p = _patient(rng, complaints, f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}")
        level = protocol_decision(p)[0]
        return {"world": {"patients": {pid: p}}, "goal": f"Triage patient {pid}, who just arrived.",
                "expect": {"patients": [pid]}, "solution": _plan_for(pid, p, True) + [
                    {"answer": f"{pid}: level {level}, {AREA[level]}.", "thought": "The patient is triaged."}]}
    return make


def who_first(rng: random.Random) -> dict:
    while True:
        a = _pid(rng, ())
        b = _pid(rng, (a,))
        pa = _patient(rng, TRAIN_COMPLAINTS, f"1{rng.randint(0, 4)}:{rng.randint(0, 59):02d}")
        pb = _patient(rng, TRAIN_COMPLAINTS, f"1{rng.randint(5, 9)}:{rng.randint(0, 59):02d}")
        if pa["arrival"] != pb["arrival"]:
            break
    first = min((a, b), key=lambda k: (protocol_decision({a: pa, b: pb}[k])[0], {a: pa, b: pb}[k]["arrival"]))
    plan = _plan_for(a, pa, True) + _plan_for(b, pb, False)
    return {"world": {"patients": {a: pa, b: pb}}, "expect": {"patients": [a, b], "first": first},
            "goal": f"Patients {b} and {a} are waiting. Triage both, then tell me which of them is seen first.",
            "solution": plan + [{"answer": f"{first} is seen first.",
                                 "thought": "Lowest level first; on equal levels, the earlier arrival."}]}


def retriage(rng: random.Random) -> dict:
    pid = _pid(rng, ())
    while True:
        p = _patient(rng, TRAIN_COMPLAINTS + TEST_COMPLAINTS, f"0{rng.randint(0, 9)}:{rng.randint(0, 59):02d}",
                     severity="normal")
        old_level, old_tests, old_notify = protocol_decision(p)
        new = dict(p, vitals=_vitals(rng, rng.choice(["critical", "high", "danger"])))
        if protocol_decision(new)[0] != old_level:
            break
    world = {"patients": {pid: new}, "orders": {pid: old_tests}, "assigned": {pid: [old_level, AREA[old_level]]},
             "notified": {pid: "earlier triage"} if old_notify else {}}
    level, tests, notify = protocol_decision(new)
    plan = [step for step in _plan_for(pid, new, True) if step["tool"] != "order_test"]  # tests were ordered then
    return {"world": world, "expect": {"patients": [pid]}, "goal": f"Patient {pid} was triaged at level "
            f"{old_level} on arrival, but the nurse reports that their condition has changed. Re-assess them with "
            "their current vitals and update the triage according to the protocol.",
            "solution": plan + [{"answer": f"{pid} re-triaged from level {old_level} to level {level}.",
                                 "thought": "The triage is updated."}]}


# -- success check -------------------------------------------------------------------------------------------------
def check(world: Department, answer: str | None, data: dict) -> Verdict:
    good, total, notes = 0, 0, []
    for pid in data["expect"]["patients"]:
        level, tests, notify = protocol_decision(world.patients[pid])
        checks = {"level/area": world.assigned.get(pid) == [level, AREA[level]],
                  "tests": sorted(world.orders.get(pid, [])) == sorted(tests),
                  "physician": (pid in world.notified) == notify}
        good += sum(checks.values())
        total += len(checks)
        notes += [f"{pid} {k} wrong" for k, ok in checks.items() if not ok]
    if "first" in data["expect"]:
        ids = re.findall(r"P-\d{4}", answer or "")
        ok = bool(ids) and ids[0] == data["expect"]["first"]
        good, total = good + ok, total + 1
        notes += [] if ok else [f"answer {answer!r}: {data['expect']['first']} is seen first"]
    return Verdict(good == total, good / total, "; ".join(notes) or "all protocol checks pass")


DOMAIN = Domain(
    name="triage", instruction=INSTRUCTION, tools=TOOLS, check=check, new_world=Department,
    templates=[TaskTemplate("single_patient", TRAIN, _single(TRAIN_COMPLAINTS)),
               TaskTemplate("who_first", TRAIN, who_first),
               TaskTemplate("unseen_complaint", TEST, _single(TEST_COMPLAINTS)),
               TaskTemplate("retriage", TEST, retriage)],
    max_rounds=20)

# the registry entry (python -m agentlm.envs.run --env triage --tasks builtin:test --agent oracle)
from agentlm.envs.tools.env_spec import domain_spec  # noqa: E402 -- needs DOMAIN defined above

SPEC = domain_spec(DOMAIN)
