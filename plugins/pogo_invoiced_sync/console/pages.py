"""Server-rendered HTML of the console: every value escaped, a little vanilla JavaScript for the actions."""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from typing import Any
from urllib.parse import urlencode

from pogo_invoiced_sync.engine.flow_mapping import DIRECTIONS, INVOICED, POGO, SYSTEMS, other

LABEL = {POGO: "PowerOffice Go", INVOICED: "Invoiced"}
SERIES = (("created", "#2e7d32"), ("updated", "#1565c0"), ("conflicts", "#ef6c00"), ("rejected", "#c62828"))

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:16px 24px;color:#1a202c;
background:#fff;font-size:14px}h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:20px 0 8px}
a{color:#1565c0;text-decoration:none}a:hover{text-decoration:underline}
nav{display:flex;gap:16px;align-items:center;margin-bottom:16px}nav form{margin-left:auto}
input,select,button{font:inherit;padding:4px 8px;border:1px solid #cbd5e0;border-radius:4px}
button{background:#edf2f7;cursor:pointer}button.danger{background:#fed7d7;border-color:#fc8181}
button.primary{background:#bee3f8;border-color:#63b3ed}
table{border-collapse:collapse;margin:4px 0 12px}td,th{border-bottom:1px solid #e2e8f0;padding:4px 10px;
text-align:left;vertical-align:top}th{background:#f7fafc;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:16px}
.card{border:1px solid #e2e8f0;border-radius:8px;padding:12px 16px}.card h2{margin-top:0}.card table{width:100%}
.card th{width:45%}
.num{font-variant-numeric:tabular-nums;text-align:right}.ok{color:#2e7d32}.bad{color:#c62828}.warn{color:#ef6c00}
.muted{color:#718096}.diff{background:#fffaf0}.legend span{margin-right:12px}.legend i{display:inline-block;
width:10px;height:10px;margin-right:4px}code{background:#f7fafc;padding:0 3px}#message{margin:8px 0;padding:8px;
border-radius:4px;display:none}#message.shown{display:block;background:#ebf8ff}#message.error{background:#fff5f5;color:#c53030}
"""

SCRIPT = """
const base = document.body.dataset.base;
function show(text, error) {
  const m = document.getElementById('message');
  m.textContent = text; m.className = 'shown' + (error ? ' error' : '');
}
async function post(action, body) {
  const r = await fetch(base + '/api/actions/' + action, {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  let data = {};
  try { data = await r.json(); } catch (e) { data = {detail: r.statusText}; }
  if (!r.ok) throw new Error(data.detail || r.statusText);
  return data;
}
async function act(button) {
  const body = JSON.parse(button.dataset.body);
  const action = button.dataset.action;
  if (button.dataset.input) {
    const input = document.getElementById(button.dataset.input);
    body[input.name] = input.value;
  }
  try {
    const plan = await post(action, {...body, preview: true});
    if (!window.confirm(plan.message + '\\n\\nGo ahead?')) return;
    const done = await post(action, body);
    show(done.message + (done.dag_run_id ? ' (run ' + done.dag_run_id + ')' : ''));
    setTimeout(() => location.reload(), 800);
  } catch (e) { show(e.message, true); }
}
document.addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-action]');
  if (b) { ev.preventDefault(); act(b); }
});
"""


def e(value: Any) -> str:
    """Escaped text of a value (None as an em dash, datetimes to the second in UTC)."""
    if value is None:
        return '<span class="muted">—</span>'
    if isinstance(value, dt.datetime):
        return escape(value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    if isinstance(value, (dict, list)):
        return escape(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))
    return escape(str(value))


def qs(**params: Any) -> str:
    return escape(urlencode({k: v for k, v in params.items() if v is not None}))


TENANT_SLOT = "<!--tenant-->"  # where the app puts the tenant switch


def tenant_switch(base: str, current: str, tenants: list[str]) -> str:
    """Links to each tenant's console (the default tenant's at ``base``), shown once there is another tenant."""
    if not tenants or tenants == ["default"]:
        return ""
    links = []
    for name in tenants:
        href = f"{base}/" if name == "default" else f"{base}/t/{name}/"
        if name == current:
            links.append(f'<strong aria-current="page">{e(name)}</strong>')
        else:
            links.append(f'<a href="{escape(href)}">{e(name)}</a>')
    return f'<span class="tenants" data-tenant="{escape(current)}">tenant: {" · ".join(links)}</span>'


def _page(root: str, title: str, user: str | None, body: str) -> str:
    who = f'<span class="muted">signed in as {e(user)}</span>' if user else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f'<style>{STYLE}</style></head><body data-base="{escape(root)}">'
        f'<nav><strong>PowerOffice Go ⇄ Invoiced sync</strong>{TENANT_SLOT}<a href="{escape(root)}/">Health</a>'
        f'<a href="{escape(root)}/record">Records</a>{who}'
        f'<form action="{escape(root)}/record" method="get"><input name="q" placeholder="id or name" '
        f'aria-label="search records" id="search"> <button type="submit">Search</button></form></nav>'
        f'<div id="message" role="status"></div>{body}<script>{SCRIPT}</script></body></html>'
    )


def error(root: str, status: int, message: str, login: str | None = None) -> str:
    """An error page; ``login`` is Airflow's own root (the console's minus its prefix), to log in there."""
    extra = f' <a href="{escape(login)}" target="_top">Log in to Airflow</a>' if login else ""
    return _page(root, "Sync console: error", None, f'<h1>{status}</h1><p class="bad">{e(message)}</p>{extra}')


def not_yet(root: str) -> str:
    return _page(
        root,
        "Sync console",
        None,
        "<h1>No sync has run yet</h1><p>The link store is created by the first run of a sync DAG.</p>",
    )


def _link(root: str, text: Any, path: str, **params: Any) -> str:
    return f'<a href="{escape(root)}{path}?{qs(**params)}">{e(text)}</a>'


def health(root: str, user: str, flows: list[dict]) -> str:
    cards = []
    for f in flows:
        flow, last = f["flow"], f["last_run"]
        rows = []
        if last:
            cls = "ok" if last["outcome"] == "finished" else "warn" if last["outcome"] == "running" else "bad"
            rows.append(
                f"<tr><th>last run</th><td>{_link(root, last['run_id'], '/list/run', flow=flow, run_id=last['run_id'])}"
                f'<br><span class="{cls}">{e(last["outcome"])}</span> · {e(last["finished_at"] or last["started_at"])}'
                "</td></tr>"
            )
        else:
            rows.append('<tr><th>last run</th><td class="muted">none yet</td></tr>')
        number = [
            ("linked pairs", f["linked"], "links", None),
            ("open conflicts", f["open_conflicts"], "conflicts", None),
            ("failures in last run", f["failures"], "failures", last and last["run_id"]),
            ("waiting records", f["waiting"], "waiting", None),
            ("excluded records", f["excluded"], "excluded", None),
        ]
        for label, value, kind, run_id in number:
            cls = "bad" if value and kind in ("failures", "conflicts") else ""
            cell = (
                _link(root, value, f"/list/{kind}", flow=flow, run_id=run_id)
                if (value or kind == "links")
                else e(value)
            )
            rows.append(f'<tr><th>{e(label)}</th><td class="num {cls}" data-count="{kind}">{cell}</td></tr>')
        if f["pending_decisions"]:
            rows.append(f'<tr><th>operator decisions pending</th><td class="num">{e(f["pending_decisions"])}</td></tr>')
        drift = f["drift"]
        if drift:
            rows.append(
                f"<tr><th>drift (last full reconciliation)</th><td>"
                f"{_link(root, drift['pairs_differing'], '/list/drift', flow=flow, run_id=drift['run_id'])} pairs "
                f'differ, {e(drift["one_side_only"])} records on one side only<br><span class="muted">'
                f"{e(drift['started_at'])}</span></td></tr>"
            )
        else:
            rows.append('<tr><th>drift</th><td class="muted">no full reconciliation yet</td></tr>')
        cards.append(
            f'<section class="card" data-flow="{escape(flow)}"><h2>{e(f["dag_id"])}</h2>'
            f"<table>{''.join(rows)}</table>{chart(root, flow, f['chart'])}{_api_table(root, flow, f['chart'])}"
            "</section>"
        )
    return _page(root, "Sync health", user, f'<h1>Sync health</h1><div class="cards">{"".join(cards)}</div>')


def chart(root: str, flow: str, runs: list[dict]) -> str:
    """Stacked bars per run: created, updated, conflicts, rejected (inline SVG; each bar links to the run)."""
    if not runs:
        return '<p class="muted">No finished runs in the last 14 days.</p>'
    runs = runs[-60:]
    width, height, pad = 400, 120, 20
    top = max(1, max(sum(r[k] for k, _ in SERIES) for r in runs))
    step = min(24.0, (width - pad) / len(runs))
    bars = []
    for n, r in enumerate(runs):
        y = height - pad
        x = pad + n * step
        parts = []
        for key, colour in SERIES:
            h = (height - 2 * pad) * r[key] / top
            if h:
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(1.0, step * 0.8):.1f}" height="{h:.1f}" '
                    f'fill="{colour}"/>'
                )
        tip = e(f"{r['run_id']}: " + ", ".join(f"{k} {r[k]}" for k, _ in SERIES))
        bars.append(
            f'<a href="{escape(root)}/list/run?{qs(flow=flow, run_id=r["run_id"])}"><title>{tip}</title>'
            f'<rect x="{x:.1f}" y="{pad}" width="{max(1.0, step * 0.8):.1f}" height="{height - 2 * pad}" '
            f'fill="transparent"/>{"".join(parts)}</a>'
        )
    legend = "".join(f'<span><i style="background:{c}"></i>{k}</span>' for k, c in SERIES)
    return (
        f'<svg role="img" aria-label="changes per run" viewBox="0 0 {width} {height}" width="100%" '
        f'height="{height}"><line x1="{pad}" y1="{height - pad}" x2="{width}" y2="{height - pad}" stroke="#a0aec0"/>'
        f'<text x="0" y="{pad}" font-size="10">{top}</text>{"".join(bars)}</svg>'
        f'<div class="legend muted">{legend} · per run, last 14 days</div>'
    )


def _api_table(root: str, flow: str, runs: list[dict]) -> str:
    if not runs:
        return ""
    rows = "".join(
        f"<tr><td>{_link(root, r['run_id'], '/list/run', flow=flow, run_id=r['run_id'])}</td>"
        f'<td class="num">{e(r["created"])}</td><td class="num">{e(r["updated"])}</td>'
        f'<td class="num">{e(r["conflicts"])}</td><td class="num">{e(r["rejected"])}</td>'
        f'<td class="num" title="{e(r["api_calls_source"])}">{e(r["api_calls"])}</td>'
        f'<td class="num">{e(r["http_429"])}</td></tr>'
        for r in reversed(runs[-5:])
    )
    return (
        "<details><summary>last runs</summary><table><tr><th>run</th><th>created</th><th>updated</th>"
        f"<th>conflicts</th><th>rejected</th><th>API calls</th><th>429s</th></tr>{rows}</table></details>"
    )


def _record_link(root: str, flow: str, system: str | None, record_id: str | None) -> str:
    if record_id is None or system is None:
        return e(None)
    return _link(root, record_id, "/record", flow=flow, system=system, id=record_id)


def _log_table(root: str, flow: str, rows: list[dict]) -> str:
    body = "".join(
        f'<tr data-log-id="{r["id"]}"><td>{e(r["id"])}</td><td>{e(r["logged_at"])}</td><td>{e(r["run_id"])}</td>'
        f"<td>{e(r['operation'])}</td><td>{e(r['outcome'])}</td><td>{e(r['direction'])}</td>"
        f"<td>{_record_link(root, flow, POGO, r['poweroffice_go_id'])}</td>"
        f"<td>{_record_link(root, flow, INVOICED, r['invoiced_id'])}</td><td>{e(r['reason'])}</td>"
        f"<td>{e(r['before'])}</td><td>{e(r['after'])}</td><td>{e(r['actor'])}</td></tr>"
        for r in rows
    )
    return (
        "<table><tr><th>id</th><th>at</th><th>run</th><th>operation</th><th>outcome</th><th>direction</th>"
        "<th>PowerOffice Go</th><th>Invoiced</th><th>reason</th><th>before</th><th>after</th><th>by</th></tr>"
        f"{body}</table>"
    )


def listing(root: str, user: str, data: dict) -> str:
    flow, kind = data["flow"], data["kind"]
    title = {
        "conflicts": "Open conflicts",
        "failures": "Failures",
        "drift": "Drift",
        "run": "Run",
        "waiting": "Waiting records",
        "excluded": "Excluded records",
        "links": "Linked pairs",
    }.get(kind, kind)
    if kind in ("waiting", "excluded"):
        extra = "reason" if kind == "waiting" else "actor"
        body = "".join(
            f"<tr><td>{e(LABEL.get(r['system']))}</td><td>{_record_link(root, flow, r['system'], r['record_id'])}"
            f"</td><td>{e(r.get(extra))}{'' if kind == 'waiting' else ' · ' + e(r.get('reason'))}</td>"
            f"<td>{e(r['since'])}</td></tr>"
            for r in data["rows"]
        )
        table = f"<table><tr><th>system</th><th>record</th><th>{extra}</th><th>since</th></tr>{body}</table>"
    elif kind == "links":
        body = "".join(
            f"<tr><td>{_record_link(root, flow, POGO, r['poweroffice_go_id'])}</td>"
            f"<td>{_record_link(root, flow, INVOICED, r['invoiced_id'])}</td><td>{e(r['state'])}</td>"
            f"<td>{e(r['updated_at'])}</td></tr>"
            for r in data["rows"]
        )
        table = f"<table><tr><th>PowerOffice Go</th><th>Invoiced</th><th>state</th><th>updated</th></tr>{body}</table>"
    else:
        table = _log_table(root, flow, data["rows"])
    more = ""
    if data.get("next") is not None:
        more = _link(
            root,
            "older →",
            f"/list/{kind}",
            flow=flow,
            run_id=data.get("run_id"),
            **({"after": data["next"]} if kind in ("links", "waiting", "excluded") else {"before": data["next"]}),
        )
    heading = f"{title} · {data.get('dag_id') or 'sync_' + flow}" + (
        f" · run {data['run_id']}" if data.get("run_id") else ""
    )
    empty = '<p class="muted">Nothing here.</p>' if not data["rows"] else ""
    return _page(root, heading, user, f"<h1>{e(heading)}</h1>{empty}{table if data['rows'] else ''}{more}")


def search(root: str, user: str, q: str, found: list[dict]) -> str:
    if not q:
        body = "<p>Search by a PowerOffice Go or Invoiced id, or by the start of a name.</p>"
    elif not found:
        body = f'<p class="bad">No record with id or name {e(q)}.</p>'
    else:
        body = (
            "<table><tr><th>flow</th><th>system</th><th>record</th><th>name</th></tr>"
            + "".join(
                f'<tr data-flow="{escape(r["flow"])}" data-system="{escape(r["system"])}"><td>{e(r["flow"])}</td>'
                f"<td>{e(LABEL.get(r['system']))}</td>"
                f"<td>{_record_link(root, r['flow'], r['system'], r['record_id'])}</td><td>{e(r['name'])}</td></tr>"
                for r in found
            )
            + "</table>"
        )
    return _page(root, "Records", user, f"<h1>Records</h1>{body}")


def _value(records: dict, system: str, name: str) -> Any:
    return (records[system] or {}).get("vals", {}).get(name)


def _button(label: str, action: str, body: dict, cls: str = "", input_id: str | None = None) -> str:
    extra = f' data-input="{escape(input_id)}"' if input_id else ""
    return (
        f'<button type="button" class="{cls}" data-action="{escape(action)}" '
        f'data-body="{escape(json.dumps(body))}"{extra}>{e(label)}</button>'
    )


def _conflict_controls(flow: str, entry: dict) -> str:
    if entry["operation"] == "report":
        return _button("Mark reviewed", "resolve", {"flow": flow, "conflict_id": entry["id"], "choice": "dismiss"})
    loser = DIRECTIONS.get(entry["direction"] or "")
    field = next(iter((entry["after"] or {}) | (entry["before"] or {})), None)
    if loser is None or field is None:
        return ""
    values = {loser: (entry["before"] or {}).get(field), other(loser): (entry["after"] or {}).get(field)}
    buttons = " ".join(
        _button(
            f"Keep {LABEL[s]}'s {values[s]!r}",
            "resolve",
            {"flow": flow, "conflict_id": entry["id"], "choice": s},
            "primary",
        )
        for s in SYSTEMS
    )
    input_id = f"value-{entry['id']}"
    return (
        f'{e(field)}: {buttons} <input id="{input_id}" name="value" placeholder="or another value" '
        f'aria-label="value for {e(field)}"> '
        + _button(
            "Use value", "resolve", {"flow": flow, "conflict_id": entry["id"], "choice": "value"}, input_id=input_id
        )
    )


def record(root: str, user: str, data: dict, can_act: bool) -> str:
    flow, ids, link, recs = data["flow"], data["ids"], data["link"], data["records"]
    base = (link or {}).get("base") or {}
    head = []
    for s in SYSTEMS:
        rec = recs[s]
        excluded = [x for x in data["excluded"] if x["system"] == s]
        state = (
            f'<span class="warn">excluded by {e(excluded[0]["actor"])} ({e(excluded[0]["reason"])})</span>'
            if excluded
            else ""
        )
        seen = (
            (
                f'<span class="muted">changed {e(rec["changed_at"])}{" · waiting for a run" if rec["dirty"] else ""}'
                f"</span>"
            )
            if rec
            else '<span class="muted">not mirrored</span>'
        )
        actions = ""
        if can_act and ids[s] is not None:
            body = {"flow": flow, "system": s, "record_id": ids[s]}
            actions = (
                _button("Include again", "include", body) if excluded else _button("Exclude", "exclude", body, "danger")
            )
            if rec and not excluded:
                actions += " " + _button("Retry now", "retry", body)
        head.append(
            f'<tr><th>{LABEL[s]}</th><td data-id="{escape(s)}">{e(ids[s])}</td><td>{seen} {state}</td>'
            f"<td>{actions}</td></tr>"
        )
    link_row = (
        (
            f"<p>Link: <strong>{e(link['state'])}</strong>"
            f"{' (' + e(link['state_reason']) + ')' if link['state_reason'] else ''}"
            f" · linked {e(link['created_at'])} · updated {e(link['updated_at'])}</p>"
        )
        if link
        else '<p class="warn">Not linked.</p>'
    )
    if can_act and link:
        link_row += _button("Unlink", "unlink", {"flow": flow, "poweroffice_go_id": ids[POGO]}, "danger")
    elif can_act and not link:
        s = data["system"]
        target = other(s)
        body = {"flow": flow, f"{s}_id": data["record_id"]}
        link_row += (
            f' <input id="relink-to" name="{target}_id" placeholder="{LABEL[target]} id" '
            f'aria-label="{LABEL[target]} id to link"> ' + _button("Link", "relink", body, input_id="relink-to")
        )
    fields = "".join(
        f'<tr class="{"diff" if _value(recs, POGO, n) != _value(recs, INVOICED, n) else ""}">'
        f"<th>{e(n)}</th><td>{e((recs[POGO] or {}).get('vals', {}).get(n))}</td>"
        f"<td>{e((recs[INVOICED] or {}).get('vals', {}).get(n))}</td><td>{e(base.get(n))}</td></tr>"
        for n in data["fields"]
    )
    values = (
        "<h2>Values as last seen</h2><table><tr><th>field</th><th>PowerOffice Go</th><th>Invoiced</th>"
        f"<th>merge base</th></tr>{fields}</table>"
    )
    open_ids = set(data["open_conflicts"])
    open_rows = [h for h in data["history"] if h["id"] in open_ids]
    conflicts = ""
    if open_rows:
        items = "".join(
            f'<tr data-conflict="{r["id"]}"><td>{e(r["id"])}</td><td>{e(r["logged_at"])}</td>'
            f"<td>{e(r['reason'])}</td><td>{_conflict_controls(flow, r) if can_act else ''}</td></tr>"
            for r in open_rows
        )
        conflicts = (
            f"<h2>Open conflicts</h2><table><tr><th>id</th><th>at</th><th>what</th><th>decide</th></tr>{items}</table>"
        )
    decisions = ""
    if data["decisions"]:
        decisions = (
            "<h2>Operator decisions</h2><table><tr><th>id</th><th>kind</th><th>field</th><th>value</th>"
            "<th>by</th><th>at</th><th>status</th><th>carried out by run</th></tr>"
            + "".join(
                f'<tr data-decision="{d["id"]}"><td>{e(d["id"])}</td><td>{e(d["kind"])}</td><td>{e(d["field"])}</td>'
                f"<td>{e(d['value'])}</td><td>{e(d['actor'])}</td><td>{e(d['decided_at'])}</td>"
                f'<td class="status">{e(d["status"])}</td><td>{e(d["run_id"])}</td></tr>'
                for d in data["decisions"]
            )
            + "</table>"
        )
    title = f"{LABEL[data['system']]} record {data['record_id']} · {data.get('dag_id') or 'sync_' + flow}"
    page = (
        f"<h1>{e(title)}</h1><table>{''.join(head)}</table>{link_row}{values}{conflicts}{decisions}"
        f"<h2>Sync log, newest first</h2>{_log_table(root, flow, data['history'])}"
    )
    return _page(root, title, user, page)
