"""Business workflow: an HR / finance back office over SQLite (onboarding, expenses, invoices, reporting).

Every episode gets a fresh in-memory SQLite database rebuilt from the task's world seed (21 employees in six
departments, an expense policy, pending and past expenses, purchase orders and invoices). Success is checked on
the final database (the right rows changed, nothing else) or on the answer. Training templates: onboard a hire,
process an employee's expenses by policy, reconcile a vendor's invoices, total approved expenses. Held-out
templates (split "test"): offboard a team lead and re-parent their reports, onboard into a named lead's team,
find the employee with the most pending expenses.
"""
from __future__ import annotations

import random
import re

from agentlm.envs.domains.back_office_world import (DEPARTMENTS, FIRST, INSTRUCTION, LAST, POLICY, TITLES, TOOLS,
                                                    VENDORS, BackOffice, build_rows)
from agentlm.envs.tools.domain import TEST, TRAIN, Domain, TaskTemplate, Verdict


# -- task templates ------------------------------------------------------------------------------------------------
def within_policy(category: str, amount: float, has_receipt: int) -> bool:
    top, receipt_over = POLICY[category]
    return amount <= top and (amount <= receipt_over or bool(has_receipt))


def _employee(rows, eid: int) -> tuple:
    return next(e for e in rows["employees"] if e[0] == eid)


def _head(rows, dept: str) -> tuple:
    return _employee(rows, next(d[2] for d in rows["departments"] if d[1] == dept))


def _new_person(rng, rows) -> str:
    taken = {e[1] for e in rows["employees"]}
    return rng.choice([f"{f} {l}" for f in FIRST for l in LAST if f"{f} {l}" not in taken])


def _hire(rng, rows, dept: str, manager: tuple, how: list[dict], goal: str) -> dict:
    name, title = _new_person(rng, rows), TITLES[dept]
    salary, start = 60000 + 1000 * rng.randint(0, 60), f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    new_id = max(e[0] for e in rows["employees"]) + 1
    args = {"name": name, "title": title, "department": dept, "salary": salary, "start_date": start,
            "manager_id": manager[0]}
    return {"goal": goal.format(name=name, title=title, dept=dept, salary=salary, start=start, lead=manager[1]),
            "expect": {"kind": "onboard", **args},
            "solution": how + [
                {"tool": "create_employee", "args": args,
                 "thought": f"{manager[1]} (id {manager[0]}) will be the manager, so I create the record."},
                {"answer": f"Onboarded {name} as employee {new_id}, reporting to {manager[1]}.",
                 "thought": "The employee record is created."}]}


def onboard(rng: random.Random) -> dict:
    seed = rng.randrange(10**9)
    rows, dept = build_rows(seed), rng.choice(DEPARTMENTS)
    how = [{"tool": "get_department", "args": {"name": dept},
            "thought": f"The new hire reports to the head of {dept}; I look the department up."}]
    goal = ("Onboard {name} as a {title} in {dept}, starting {start} with an annual salary of {salary}. "
            "They report to the head of {dept}.")
    return {"world": {"seed": seed}, **_hire(rng, rows, dept, _head(rows, dept), how, goal)}


def onboard_into_team(rng: random.Random) -> dict:
    seed = rng.randrange(10**9)
    rows, dept = build_rows(seed), rng.choice(DEPARTMENTS)
    lead = _employee(rows, _head(rows, dept)[0] + 1)
    how = [{"tool": "find_employee", "args": {"name": lead[1]},
            "thought": f"The new hire joins the team of {lead[1]}; I need that person's employee id."}]
    goal = ("Please add {name} to the team of {lead}: {title}, salary {salary} a year, first day {start}. "
            "They report to {lead}.")
    return {"world": {"seed": seed}, **_hire(rng, rows, dept, lead, how, goal)}


def process_expenses(rng: random.Random) -> dict:
    while True:
        seed = rng.randrange(10**9)
        rows = build_rows(seed)
        pending = {}
        for x in rows["expenses"]:
            if x[6] == "pending":
                pending.setdefault(x[1], []).append(x)
        candidates = sorted(e for e, xs in pending.items() if len(xs) >= 2)
        if candidates:
            break
    emp = _employee(rows, rng.choice(candidates))
    xs = pending[emp[0]]
    plan = [{"tool": "find_employee", "args": {"name": emp[1]}, "thought": f"First I find {emp[1]}'s employee id."},
            {"tool": "list_expenses", "args": {"employee_id": emp[0]},
             "thought": f"{emp[1]} is employee {emp[0]}; I list their pending expenses."}]
    for cat in dict.fromkeys(x[2] for x in xs):
        plan.append({"tool": "get_policy", "args": {"category": cat}, "thought": f"I check the {cat} policy."})
    decisions = {}
    for x in xs:
        ok = within_policy(x[2], x[3], x[4])
        decisions[str(x[0])] = "approved" if ok else "rejected"
        top, over = POLICY[x[2]]
        why = f"over the {x[2]} maximum of {top:g}" if x[3] > top else f"no receipt for an amount over {over:g}"
        args = {"expense_id": x[0], "decision": "approve"} if ok else {"expense_id": x[0], "decision": "reject",
                                                                       "reason": why}
        plan.append({"tool": "decide_expense", "args": args,
                     "thought": f"Expense {x[0]} ({x[2]}, {x[3]:g}) is " + ("within policy." if ok else why + ".")})
    approved = [k for k, v in decisions.items() if v == "approved"]
    plan.append({"answer": f"Approved {len(approved)} and rejected {len(decisions) - len(approved)} of "
                           f"{emp[1]}'s pending expenses.", "thought": "Every pending expense is decided."})
    return {"world": {"seed": seed}, "goal": f"Process all pending expenses of {emp[1]} according to the expense "
            "policy: approve the ones within policy and reject the others.",
            "expect": {"kind": "expenses", "decisions": decisions}, "solution": plan}


def reconcile_vendor(rng: random.Random) -> dict:
    seed = rng.randrange(10**9)
    rows, vendor = build_rows(seed), rng.choice(VENDORS)
    po = {p[0]: p[2] for p in rows["purchase_orders"]}
    plan = [{"tool": "list_invoices", "args": {"vendor": vendor}, "thought": f"I list {vendor}'s open invoices."}]
    decisions = {}
    for inv in (i for i in rows["invoices"] if i[1] == vendor and i[4] == "open"):
        ok = abs(inv[3] - po[inv[2]]) <= 0.01 * po[inv[2]]
        decisions[str(inv[0])] = "matched" if ok else "flagged"
        plan.append({"tool": "get_purchase_order", "args": {"po_number": inv[2]},
                     "thought": f"Invoice {inv[0]} is for {inv[3]:g}; I compare it with {inv[2]}."})
        args = {"invoice_id": inv[0], "action": "match"} if ok else {
            "invoice_id": inv[0], "action": "flag", "note": f"invoice {inv[3]:g} vs PO {po[inv[2]]:g}"}
        plan.append({"tool": "reconcile_invoice", "args": args,
                     "thought": f"The PO is for {po[inv[2]]:g}: " + ("within 1%, a match." if ok else
                                                                      "more than 1% apart, so I flag it.")})
    plan.append({"answer": f"Reconciled {len(decisions)} open invoice(s) from {vendor}.",
                 "thought": "Every open invoice of the vendor is handled."})
    return {"world": {"seed": seed}, "goal": f"Reconcile the open invoices from {vendor}: match each invoice to its "
            "purchase order when the amounts agree within 1%, and flag the others for review.",
            "expect": {"kind": "invoices", "decisions": decisions}, "solution": plan}


def approved_total(rng: random.Random) -> dict:
    seed = rng.randrange(10**9)
    rows, dept = build_rows(seed), rng.choice(DEPARTMENTS)
    ids = {e[0] for e in rows["employees"] if e[2] == dept}
    total = round(sum(x[3] for x in rows["expenses"] if x[1] in ids and x[6] == "approved"), 2)
    sql = ("SELECT ROUND(COALESCE(SUM(x.amount), 0), 2) FROM expenses x JOIN employees e ON e.id = x.employee_id "
           f"WHERE e.department = '{dept}' AND x.status = 'approved'")
    return {"world": {"seed": seed}, "goal": f"What is the total amount of approved expenses of employees in the "
            f"{dept} department? Answer with the number, rounded to two decimals.",
            "expect": {"kind": "number", "value": total},
            "solution": [{"tool": "run_sql", "args": {"query": sql}, "thought": "One aggregate query answers this."},
                         {"answer": f"{total:.2f}", "thought": f"The query returned {total:.2f}."}]}


def offboard_lead(rng: random.Random) -> dict:
    seed = rng.randrange(10**9)
    rows, dept = build_rows(seed), rng.choice(DEPARTMENTS)
    head = _head(rows, dept)
    lead = _employee(rows, head[0] + 1)
    reports = [e[0] for e in rows["employees"] if e[6] == lead[0]]
    day = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return {"world": {"seed": seed}, "goal": f"{lead[1]} is leaving the company; their last day is {day}. Record "
            f"the termination and move {lead[1]}'s direct reports to {lead[1]}'s own manager.",
            "expect": {"kind": "offboard", "employee_id": lead[0], "end_date": day, "reports": reports,
                       "new_manager": head[0]},
            "solution": [
                {"tool": "find_employee", "args": {"name": lead[1]}, "thought": f"I look up {lead[1]}."},
                {"tool": "terminate_employee", "args": {"employee_id": lead[0], "end_date": day},
                 "thought": f"{lead[1]} is employee {lead[0]} and reports to {head[0]}; I record the termination."},
                {"tool": "reassign_reports", "args": {"from_manager_id": lead[0], "to_manager_id": head[0]},
                 "thought": f"Now their reports move to manager {head[0]}."},
                {"answer": f"{lead[1]} is terminated as of {day}; {len(reports)} reports now report to {head[1]}.",
                 "thought": "Both steps are done."}]}


def top_pending(rng: random.Random) -> dict:
    while True:
        seed = rng.randrange(10**9)
        rows, dept = build_rows(seed), rng.choice(DEPARTMENTS)
        totals: dict[int, float] = {}
        for x in rows["expenses"]:
            emp = _employee(rows, x[1])
            if emp[2] == dept and x[6] == "pending":
                totals[emp[0]] = totals.get(emp[0], 0.0) + x[3]
        ranked = sorted(totals.values(), reverse=True)
        if ranked and (len(ranked) == 1 or ranked[0] - ranked[1] > 0.01):
            break
    best = _employee(rows, max(totals, key=totals.get))
    sql = ("SELECT e.name, ROUND(SUM(x.amount), 2) AS total FROM expenses x JOIN employees e ON e.id = x.employee_id "
           f"WHERE e.department = '{dept}' AND x.status = 'pending' GROUP BY e.id ORDER BY total DESC LIMIT 3")
    return {"world": {"seed": seed}, "goal": f"Which employee of the {dept} department has the largest total amount "
            "of pending expenses? Answer with their full name.", "expect": {"kind": "name", "value": best[1]},
            "solution": [{"tool": "run_sql", "args": {"query": sql}, "thought": "I total pending expenses by person."},
                         {"answer": best[1], "thought": f"{best[1]} has the largest pending total."}]}


# -- success check -------------------------------------------------------------------------------------------------
def _unchanged(world: BackOffice, seed: int, table: int, key: str, skip: set) -> list[str]:
    """Rows of `table` that differ from the initial world, ignoring the ids in `skip`."""
    rows = build_rows(seed)[table]
    now = {r[0]: tuple(r) for r in world.db.execute(f"SELECT * FROM {table}")}
    return [f"{table} {r[0]} changed" for r in rows if r[0] not in skip and now.get(r[0]) != tuple(r)]


def check(world: BackOffice, answer: str | None, data: dict) -> Verdict:
    e, seed = data["expect"], data["world"]["seed"]
    kind = e["kind"]
    if kind == "onboard":
        rows = world.all("SELECT * FROM employees WHERE name = ?", e["name"])
        problems = _unchanged(world, seed, "employees", "id", set())
        if len(rows) != 1:
            return Verdict(False, 0.0, f"{len(rows)} employee records named {e['name']}")
        r = rows[0]
        wrong = [k for k in ("title", "department", "salary", "start_date", "manager_id") if r[k] != e[k]]
        wrong += ["status"] if r["status"] != "active" else []
        extra = world.one("SELECT COUNT(*) FROM employees")[0] - len(build_rows(seed)["employees"]) - 1
        ok = not wrong and not problems and extra == 0
        return Verdict(ok, 1.0 if ok else 0.5 * (not wrong), f"wrong fields {wrong}; {problems}; {extra} extra")
    if kind in ("expenses", "invoices"):
        table, col = ("expenses", 6) if kind == "expenses" else ("invoices", 4)
        now = {str(r[0]): r[col] for r in world.db.execute(f"SELECT * FROM {table}")}
        good = sum(now[k] == v for k, v in e["decisions"].items())
        problems = _unchanged(world, seed, table, "id", {int(k) for k in e["decisions"]})
        ok = good == len(e["decisions"]) and not problems
        return Verdict(ok, good / len(e["decisions"]) * (0.5 if problems else 1.0),
                       f"{good}/{len(e['decisions'])} right; {problems[:3]}")
    if kind == "offboard":
        r = world.all("SELECT status, end_date FROM employees WHERE id = ?", e["employee_id"])[0]
        moved = [world.one("SELECT manager_id FROM employees WHERE id = ?", i)[0] == e["new_manager"]
                 for i in e["reports"]]
        ok = r["status"] == "terminated" and r["end_date"] == e["end_date"] and all(moved)
        return Verdict(ok, (0.5 * (r["status"] == "terminated" and r["end_date"] == e["end_date"])
                            + 0.5 * all(moved)), f"record {r}, moved {moved}")
    if kind == "number":
        m = re.search(r"-?\d[\d,]*(?:\.\d+)?", answer or "")
        ok = m is not None and abs(float(m.group(0).replace(",", "")) - e["value"]) <= 0.011
        return Verdict(ok, None, f"answer {answer!r}, expected {e['value']}")
    if kind == "name":
        ok = answer is not None and e["value"].lower() in answer.lower()
        return Verdict(ok, None, f"answer {answer!r}, expected {e['value']}")
    raise ValueError(f"unknown expectation kind {kind!r}")


def _ticketed(make):
    """Each request arrives as a numbered ticket, so two requests with the same wording stay distinguishable."""
    def make_ticket(rng: random.Random) -> dict:
        data = make(rng)
        data["goal"] = f"Ticket BO-{rng.randint(100000, 999999)}: {data['goal']}"
        return data
    return make_ticket


DOMAIN = Domain(
    name="back_office", instruction=INSTRUCTION, tools=TOOLS, check=check,
    new_world=lambda data: BackOffice(build_rows(data["world"]["seed"])), close_world=lambda w: w.db.close(),
    templates=[TaskTemplate("onboard", TRAIN, _ticketed(onboard)),
               TaskTemplate("process_expenses", TRAIN, _ticketed(process_expenses)),
               TaskTemplate("reconcile_vendor", TRAIN, _ticketed(reconcile_vendor)),
               TaskTemplate("approved_total", TRAIN, _ticketed(approved_total)),
               TaskTemplate("offboard_lead", TEST, _ticketed(offboard_lead)),
               TaskTemplate("onboard_into_team", TEST, _ticketed(onboard_into_team)),
               TaskTemplate("top_pending", TEST, _ticketed(top_pending))],
    max_rounds=20)

# the registry entry (python -m agentlm.envs.run --env back_office --tasks builtin:test --agent oracle)
from agentlm.envs.tools.env_spec import domain_spec  # noqa: E402 -- needs DOMAIN defined above

SPEC = domain_spec(DOMAIN)
