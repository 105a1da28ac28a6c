// The dashboard: a hash router (#/jobs, #/jobs/{id}, #/adapters, #/adapters/{id}, #/datasets)
// over pages that call the API with the signed-in token and follow jobs live over SSE.

import {ProblemError, all, api, download, follow, token} from "./api.js";
import {MetricChart} from "./charts.js";
import {badge, bytes, confirmDialog, h, number, problemBox, when} from "./dom.js";
import {lineageGraph} from "./lineage.js";

const STATES = ["queued", "running", "cancelling", "succeeded", "failed", "cancelled"];
const ACTIVE = new Set(["queued", "running", "cancelling"]);
const main = document.getElementById("main");
let page = new AbortController(); // aborted when the user leaves the page: ends its streams
let signingIn = false; // a refused token while signing in is shown on the form itself

const enc = encodeURIComponent;

function render(title, ...content) {
  document.title = `${title} · loraplane`;
  const heading = h("h1", {tabindex: -1}, title);
  main.replaceChildren(heading, ...content.filter((part) => part !== null && part !== undefined));
  heading.focus({preventScroll: true});
}

function section(title, ...content) {
  return h("section", {"aria-labelledby": `h-${title.replace(/\W+/g, "-")}`},
    h("h2", {id: `h-${title.replace(/\W+/g, "-")}`}, title), ...content);
}

function table(headings, rows, {caption, empty = "Nothing here yet."} = {}) {
  if (!rows.length) return h("p", {class: "muted"}, empty);
  return h("div", {class: "table-wrap"}, h("table", {},
    caption ? h("caption", {class: "visually-hidden"}, caption) : null,
    h("thead", {}, h("tr", {}, headings.map((x) => h("th", {scope: "col"}, x)))),
    h("tbody", {}, rows)));
}

function status(text) {
  return h("p", {class: "live", role: "status"}, text);
}

function showError(error, where = main) {
  if (!(error instanceof ProblemError)) console.error(error);
  where.append(problemBox(error));
}

// ---------------------------------------------------------------- sign-in

function signInPage(problem) {
  const input = h("input", {id: "token", name: "token", type: "password", required: true,
                            autocomplete: "off", spellcheck: "false"});
  const errors = h("div", {});
  if (problem) errors.append(problemBox(problem));
  const form = h("form", {class: "card signin", onsubmit: async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    token.set(input.value.trim());
    signingIn = true;
    try {
      await api("/jobs?limit=1");
      const next = sessionStorage.getItem("loraplane.next") || "#/jobs";
      sessionStorage.removeItem("loraplane.next");
      if (location.hash === next) route();
      else location.hash = next;
    } catch (error) {
      token.clear();
      showError(error, errors);
      input.focus();
    } finally {
      signingIn = false;
    }
  }},
    h("label", {for: "token"}, "API token"),
    input,
    h("p", {class: "hint"}, "An admin or user token (", h("code", {}, "loraplane tokens create"),
      "). It is kept in this tab's session storage only, and sent as a bearer header."),
    h("button", {type: "submit"}, "Sign in"),
    errors);
  render("Sign in", form);
  input.focus();
}

// ---------------------------------------------------------------- jobs

/** What a person calls a job: its name, else its experiment's name, else its id. */
function jobTitle(job) {
  return job.name || job.spec?.runner?.experiment_name || job.id;
}

function progressCell(job) {
  const {step = 0, total = 0} = job.progress || {};
  return [total ? h("progress", {max: total, value: step, "aria-label": `step ${step} of ${total}`}) : "",
          ` ${step}${total ? ` / ${total}` : ""}`];
}

/** Fill a jobs-table row; cells are updated in place, so a focused link keeps its focus. */
function fillJobRow(row, job) {
  if (!row.cells.length) {
    for (let i = 0; i < 7; i += 1) row.insertCell();
    row.cells[4].className = "num";
    row.cells[0].append(h("a", {href: `#/jobs/${job.id}`}), h("div", {class: "muted small"}));
  }
  const [title, kind, state, progress, loss, created, adapter] = row.cells;
  title.firstChild.textContent = jobTitle(job);
  title.lastChild.textContent = jobTitle(job) !== job.id ? job.id : "";
  row.dataset.job = job.id;
  row.dataset.state = job.state;
  kind.textContent = job.kind;
  state.replaceChildren(badge(job.state));
  progress.replaceChildren(...progressCell(job));
  loss.textContent = number(job.metrics?.loss);
  if (!created.firstChild) created.append(when(job.created_at));
  if (adapter.dataset.id !== (job.adapter_id || "")) {
    adapter.dataset.id = job.adapter_id || "";
    adapter.replaceChildren(job.adapter_id ? h("a", {href: `#/adapters/${job.adapter_id}`}, "adapter") : "");
  }
}

async function jobsPage(params) {
  const filter = params.get("state") || "";
  const filters = h("nav", {class: "filters", "aria-label": "Filter by state"},
    ["", ...STATES].map((state) => h("a", {
      href: state ? `#/jobs?state=${state}` : "#/jobs",
      "aria-current": state === filter ? "true" : null,
      class: state ? `filter state-${state}` : "filter"}, state || "all")));
  const live = status("Connecting…");
  const tbody = h("tbody", {});
  const empty = h("p", {class: "muted"}, filter ? `No ${filter} jobs.` : "No jobs yet.");
  const tableWrap = h("div", {class: "table-wrap"}, h("table", {},
    h("caption", {class: "visually-hidden"}, "Jobs"),
    h("thead", {}, h("tr", {}, ["Job", "Kind", "State", "Progress", "Loss", "Created", "Adapter"]
      .map((x) => h("th", {scope: "col"}, x)))), tbody));
  render("Jobs", filters, live, empty, tableWrap);
  const rows = new Map(); // job id -> its <tr>, newest (largest id) first in the table
  const upsert = (job) => {
    let row = rows.get(job.id);
    if (!row) {
      row = h("tr", {});
      rows.set(job.id, row);
      const next = [...tbody.rows].find((r) => r.dataset.job < job.id); // ids sort by time
      tbody.insertBefore(row, next || null);
    }
    fillJobRow(row, job);
  };
  const drop = (id) => { rows.get(id)?.remove(); rows.delete(id); };
  const shown = () => {
    empty.hidden = rows.size > 0;
    tableWrap.hidden = rows.size === 0;
  };
  shown();
  const query = `/jobs?limit=100${filter ? `&state=${filter}` : ""}`;
  try {
    for (const job of (await api(query, {signal: page.signal})).items) upsert(job);
    shown();
    await follow(query, ({event, data}) => {
      if (event === "job") upsert(data);
      else if (event === "gone") drop(data.id);
      shown();
      live.textContent = `Live · ${rows.size} shown · updated ${new Date().toLocaleTimeString()}`;
    }, {signal: page.signal, onStatus: (s) => {
      live.textContent = s === "live" ? `Live · ${rows.size} shown` : "Reconnecting…";
    }});
  } catch (error) {
    if (!page.signal.aborted) showError(error);
  }
}

function jobFacts(job) {
  const progress = job.progress || {};
  const facts = [
    ["State", badge(job.state)],
    ["Kind", job.kind],
    ["Progress", `${progress.step}${progress.total ? ` / ${progress.total}` : ""}`],
    ["Attempt", `${job.attempt} of ${job.max_attempts}`],
    ["Base model", job.spec?.actor?.model?.model_path || ""],
    ["Created", when(job.created_at)],
    ["Started", when(job.started_at)],
    ["Finished", when(job.finished_at)],
    ["Adapter", job.adapter_id ? h("a", {href: `#/adapters/${job.adapter_id}`}, job.adapter_id) : "—"],
    ["Continues", job.parent_adapter_id
      ? h("a", {href: `#/adapters/${job.parent_adapter_id}`}, job.parent_adapter_id) : "—"],
  ];
  return h("dl", {class: "facts"}, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function checkpointTable(items) {
  return table(["Step", "Attempt", "Size", "Files", "lora_path"], items.map((c) => h("tr", {},
    h("td", {class: "num"}, c.step), h("td", {class: "num"}, c.attempt),
    h("td", {class: "num"}, bytes(c.size)), h("td", {class: "num"}, c.files.length),
    h("td", {}, c.lora_path ? h("code", {class: "copy"}, c.lora_path) : "—"))),
    {caption: "Checkpoints", empty: "No checkpoints yet."});
}

function eventLine(event) {
  const data = event.data || {};
  let text;
  if (event.kind === "state") text = `${data.from || "—"} → ${data.to}${data.reason ? ` (${data.reason})` : ""}`;
  else if (event.kind === "log") text = data.line ?? JSON.stringify(data);
  else text = JSON.stringify(data);
  return h("li", {class: `event event-${event.kind}`},
    h("time", {datetime: event.created_at}, new Date(event.created_at).toLocaleTimeString()),
    h("span", {class: "event-kind"}, event.kind), h("span", {class: "event-text"}, text));
}

async function jobPage(jobId) {
  let job;
  try {
    job = await api(`/jobs/${enc(jobId)}`, {signal: page.signal});
  } catch (error) {
    render("Job");
    showError(error);
    return;
  }
  const facts = h("div", {}, jobFacts(job));
  const errorBox = h("div", {});
  const actions = h("div", {class: "actions"});
  const loss = new MetricChart("Loss", ["loss", "val_loss"]);
  const lr = new MetricChart("Learning rate", ["lr"]);
  const checkpoints = h("div", {}, h("p", {class: "muted"}, "Loading…"));
  const events = h("ol", {class: "events", "aria-live": "off"});
  const live = status("Connecting…");
  const shownEvents = [];

  let cancellable = null;
  const showJob = () => {
    facts.replaceChildren(jobFacts(job));
    errorBox.replaceChildren(job.error ? problemBox({title: "The job failed",
      detail: job.error.message, code: job.error.code}) : "");
    const can = ACTIVE.has(job.state) && job.state !== "cancelling";
    if (can !== cancellable) { // replaced only when it changes, so a focused button stays focused
      cancellable = can;
      actions.replaceChildren(can ? h("button", {type: "button", class: "danger", onclick: cancel},
                                      "Cancel job…") : "");
    }
  };
  const cancel = async () => {
    if (!await confirmDialog("Cancel this job?", `${jobTitle(job)} stops at its next step.`,
                             "Cancel job")) return;
    try {
      job = await api(`/jobs/${enc(job.id)}/cancel`, {method: "POST"});
      showJob();
    } catch (error) { showError(error, errorBox); }
  };
  let checkpointTimer = null;
  const loadCheckpoints = () => {
    clearTimeout(checkpointTimer);
    checkpointTimer = setTimeout(async () => {
      try {
        checkpoints.replaceChildren(checkpointTable(
          await all(`/jobs/${enc(job.id)}/checkpoints`, {signal: page.signal})));
      } catch (error) { if (!page.signal.aborted) checkpoints.replaceChildren(problemBox(error)); }
    }, 200);
  };
  const refreshJob = async () => {
    try { job = await api(`/jobs/${enc(job.id)}`, {signal: page.signal}); showJob(); } catch {}
  };

  render(jobTitle(job), jobTitle(job) !== job.id ? h("p", {class: "muted"}, job.id) : null,
    actions, errorBox, facts,
    section("Curves", live, h("div", {class: "charts"}, loss.element, lr.element)),
    section("Checkpoints", checkpoints),
    section("Events", h("div", {class: "events-wrap"}, events)));
  showJob();
  loadCheckpoints();
  const onResize = () => { loss.resize(); lr.resize(); };
  window.addEventListener("resize", onResize, {signal: page.signal});
  page.signal.addEventListener("abort", () => { loss.destroy(); lr.destroy(); });

  let lastProgress = 0;
  try {
    await follow(`/jobs/${enc(job.id)}/events`, ({data: event}) => {
      if (event.kind === "metrics") {
        loss.add(event.data);
        lr.add(event.data);
        if (Date.now() - lastProgress > 1000) { lastProgress = Date.now(); refreshJob(); }
        return;
      }
      shownEvents.push(eventLine(event));
      if (shownEvents.length > 500) shownEvents.shift().remove();
      events.append(shownEvents[shownEvents.length - 1]);
      if (event.kind === "state") refreshJob();
      if (event.kind === "state" || /checkpoint/i.test(event.data?.line || "")) loadCheckpoints();
    }, {signal: page.signal, onStatus: (s) => {
      if (s === "ended") { loss.draw(); lr.draw(); } // now, not at the next scheduled redraw
      live.textContent = {live: "Live", ended: "The job ended; all its points are drawn.",
                          reconnecting: "Reconnecting…"}[s];
      if (s === "ended") refreshJob();
    }});
  } catch (error) {
    if (!page.signal.aborted) showError(error, errorBox);
  }
}

// ---------------------------------------------------------------- adapters

function aliasChips(aliases) {
  return aliases.map((alias) => h("span", {class: "chip"}, alias));
}

async function adaptersPage(params) {
  const name = params.get("name") || "";
  const input = h("input", {id: "adapter-name", name: "name", value: name, type: "search"});
  const form = h("form", {class: "inline", onsubmit: (event) => {
    event.preventDefault();
    location.hash = input.value.trim() ? `#/adapters?name=${enc(input.value.trim())}` : "#/adapters";
  }}, h("label", {for: "adapter-name"}, "Name"), input, h("button", {type: "submit"}, "Filter"));
  const body = h("div", {}, h("p", {class: "muted"}, "Loading…"));
  render("Adapters", form, body);
  try {
    const adapters = await all(`/adapters?limit=200${name ? `&name=${enc(name)}` : ""}`,
                               {signal: page.signal, max: 1000});
    body.replaceChildren(table(["Adapter", "Kind", "Base model", "Aliases", "Loss", "Parent", "Created"],
      adapters.map((a) => h("tr", {"data-adapter": a.id},
        h("td", {}, h("a", {href: `#/adapters/${a.id}`}, `${a.name} v${a.version}`),
          h("div", {class: "muted small"}, a.id)),
        h("td", {}, a.kind), h("td", {}, a.base_model), h("td", {}, aliasChips(a.aliases)),
        h("td", {class: "num"}, number(a.metrics?.loss)),
        h("td", {}, a.lineage[0] ? h("a", {href: `#/adapters/${a.lineage[0].id}`},
          `${a.lineage[0].name} v${a.lineage[0].version}`) : "—"),
        h("td", {}, when(a.created_at)))), {caption: "Adapters", empty: "No adapters yet."}));
  } catch (error) {
    body.replaceChildren();
    showError(error, body);
  }
}

function aliasForm(adapter, versions, onMoved) {
  const current = new Map(); // alias -> version it points at
  for (const v of versions) for (const alias of v.aliases) current.set(alias, v);
  const aliasInput = h("input", {id: "alias-name", name: "alias", required: true, list: "alias-list",
                                 autocomplete: "off", pattern: "[A-Za-z0-9][A-Za-z0-9._-]*"});
  const versionSelect = h("select", {id: "alias-version", name: "version"},
    versions.map((v) => h("option", {value: v.id, selected: v.id === adapter.id},
                          `v${v.version}${v.id === adapter.id ? " (this one)" : ""}`)));
  const result = h("div", {});
  const form = h("form", {class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    result.replaceChildren();
    const alias = aliasInput.value.trim();
    const target = versions.find((v) => v.id === versionSelect.value);
    const from = current.get(alias);
    const text = from
      ? [`Move alias `, h("code", {}, alias), ` of ${adapter.name} from v${from.version} to v${target.version}?`]
      : [`Create alias `, h("code", {}, alias), ` of ${adapter.name} at v${target.version}?`];
    if (!await confirmDialog(from ? "Move alias" : "Create alias", text, from ? "Move alias" : "Create alias")) {
      return;
    }
    try {
      const moved = await api(`/aliases/${enc(adapter.name)}/${enc(alias)}`,
                              {method: "PUT", body: {adapter_id: target.id}});
      await onMoved(`${moved.alias} now points at ${adapter.name} v${moved.version}.`);
    } catch (error) { showError(error, result); }
  }},
    h("label", {for: "alias-name"}, "Alias"), aliasInput,
    h("datalist", {id: "alias-list"}, [...current.keys()].map((a) => h("option", {value: a}))),
    h("label", {for: "alias-version"}, "to"), versionSelect,
    h("button", {type: "submit"}, "Move alias…"));
  return h("div", {}, form, result);
}

function fileTable(adapter) {
  return table(["File", "Size", "sha256", ""], adapter.files.map((file) => {
    const note = h("span", {class: "muted small", role: "status"});
    const button = h("button", {type: "button", class: "quiet", onclick: async () => {
      note.textContent = "Downloading…";
      try {
        const {verified} = await download(`/adapters/${enc(adapter.id)}/files/${file.name
          .split("/").map(enc).join("/")}`, file.name.split("/").pop(), file.sha256);
        note.textContent = verified ? "Saved, sha256 verified" : "Saved";
      } catch (error) { note.replaceChildren(problemBox(error)); }
    }, "aria-label": `Download ${file.name}`}, "Download");
    return h("tr", {}, h("td", {}, h("code", {}, file.name)), h("td", {class: "num"}, bytes(file.size)),
      h("td", {}, h("code", {class: "sha"}, file.sha256)), h("td", {}, button, " ", note));
  }), {caption: "Files"});
}

async function adapterPage(adapterId, notice) {
  let adapter, versions, children;
  try {
    adapter = await api(`/adapters/${enc(adapterId)}`, {signal: page.signal});
    [versions, children] = await Promise.all([
      all(`/adapters?name=${enc(adapter.name)}&limit=200`, {signal: page.signal}),
      all("/adapters?limit=200", {signal: page.signal, max: 2000})
        .then((items) => items.filter((a) => a.parent_adapter_id === adapter.id)),
    ]);
  } catch (error) {
    render("Adapter");
    showError(error);
    return;
  }
  versions.sort((a, b) => a.version - b.version);
  const facts = [
    ["Kind", adapter.kind],
    ["Base model", adapter.base_model],
    ["Rank / alpha", adapter.rank ? `${adapter.rank} / ${adapter.alpha ?? "—"}` : "—"],
    ["Targets", adapter.target_modules.join(", ") || "—"],
    ["Source", adapter.source],
    ["Job", adapter.job_id ? h("a", {href: `#/jobs/${adapter.job_id}`}, adapter.job_id) : "—"],
    ["Aliases", adapter.aliases.length ? aliasChips(adapter.aliases) : "—"],
    ["lora_path", h("code", {class: "copy"}, adapter.lora_path)],
    ["Created", when(adapter.created_at)],
    ["Loss", number(adapter.metrics?.loss) || "—"],
    ["Description", adapter.description || "—"],
    ["Tags", Object.keys(adapter.tags).length
      ? Object.entries(adapter.tags).map(([k, v]) => h("span", {class: "chip"}, `${k}:${v}`)) : "—"],
  ];
  const archive = h("span", {class: "muted small", role: "status"});
  render(`${adapter.name} v${adapter.version}`,
    h("p", {class: "muted"}, adapter.id),
    notice ? h("p", {class: "notice", role: "status"}, notice) : null,
    h("div", {class: "actions"}, h("button", {type: "button", onclick: async () => {
      archive.textContent = "Downloading…";
      try {
        await download(`/adapters/${enc(adapter.id)}/archive`, `${adapter.name}-v${adapter.version}.tar`);
        archive.textContent = "Saved";
      } catch (error) { archive.replaceChildren(problemBox(error)); }
    }}, "Download folder (.tar)"), " ", archive),
    h("dl", {class: "facts"}, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    section("Lineage", h("div", {class: "graph-wrap"}, lineageGraph(adapter, children))),
    section("Versions and aliases",
      table(["Version", "Aliases", "Loss", "Created"], versions.map((v) => h("tr", {"data-version": v.version},
        h("td", {}, v.id === adapter.id ? h("strong", {}, `v${v.version} (this one)`)
          : h("a", {href: `#/adapters/${v.id}`}, `v${v.version}`)),
        h("td", {}, aliasChips(v.aliases)), h("td", {class: "num"}, number(v.metrics?.loss)),
        h("td", {}, when(v.created_at)))), {caption: "Versions"}),
      aliasForm(adapter, versions, (message) => adapterPage(adapter.id, message))),
    section("Files", fileTable(adapter)),
    adapter.evaluations.length ? section("Evaluations", table(["Evaluation", "State", "Loss", "Created"],
      adapter.evaluations.map((e) => h("tr", {}, h("td", {}, h("a", {href: `#/jobs/${e.id}`}, e.id)),
        h("td", {}, badge(e.state)), h("td", {class: "num"}, number(e.metrics?.loss)),
        h("td", {}, when(e.created_at)))))) : null);
}

// ---------------------------------------------------------------- datasets

async function datasetsPage() {
  const body = h("div", {}, h("p", {class: "muted"}, "Loading…"));
  render("Datasets", body);
  try {
    const datasets = await all("/datasets?limit=200", {signal: page.signal});
    body.replaceChildren(table(["Dataset", "Rows", "Size", "Keys", "sha256", "Created"],
      datasets.map((d) => h("tr", {},
        h("td", {}, d.name, h("div", {class: "muted small"}, d.id)),
        h("td", {class: "num"}, d.rows), h("td", {class: "num"}, bytes(d.size)),
        h("td", {}, d.keys.map((k) => h("span", {class: "chip"}, k))),
        h("td", {}, h("code", {class: "sha"}, d.sha256)), h("td", {}, when(d.created_at)))),
      {caption: "Datasets", empty: "No datasets uploaded yet."}));
  } catch (error) {
    body.replaceChildren();
    showError(error, body);
  }
}

// ---------------------------------------------------------------- router

function route() {
  page.abort();
  page = new AbortController();
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const signedIn = Boolean(token.get());
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", link.dataset.section === (parts[0] || "jobs"));
  }
  if (!signedIn || parts[0] === "signin") {
    if (parts[0] && parts[0] !== "signin") sessionStorage.setItem("loraplane.next", location.hash);
    return signInPage();
  }
  const [section, id] = parts;
  if (section === "adapters") return id ? adapterPage(id) : adaptersPage(params);
  if (section === "datasets") return datasetsPage();
  if (section === "jobs" && id) return jobPage(id);
  return jobsPage(params);
}

window.addEventListener("hashchange", route);
window.addEventListener("loraplane:unauthorized", (event) => {
  // The token was refused (revoked, expired): back to the sign-in form, saying why.
  if (!token.get() || signingIn) return;
  token.clear();
  page.abort();
  signInPage(event.detail);
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
});
document.getElementById("sign-out").addEventListener("click", () => {
  token.clear();
  if (location.hash === "#/signin") route();
  else location.hash = "#/signin";
});
route();
