// The segment rule builder: groups of conditions joined by all or any,
// beside the rule's text form. The text is what the form saves; the
// builder writes it (through POST /api/v1/segments/parse, which prints a
// tree as text) and re-draws itself from it when the text is edited and
// parses into a rule the builder can show. When it cannot, the builder
// hides its conditions and says so: it never writes over a rule it does
// not show. The live count (app.js) follows the text either way.
"use strict";
(function () {
  const root = document.getElementById("builder");
  const ta = document.getElementById("text");
  if (!root || !ta || !window.Funnel) return;
  const form = ta.form;
  const api = window.Funnel.api;
  const parseURL = root.dataset.parse;
  const treeBox = document.getElementById("builder-tree");
  const note = document.getElementById("builder-note");

  const STATUSES = [["active", "active"], ["unsubscribed", "unsubscribed"], ["bounced", "bounced"], ["complained", "complained"]];
  const STAGES = [["subscriber", "subscriber"], ["engaged", "engaged"], ["mql", "MQL"], ["sql", "SQL"], ["won", "won"], ["recycled", "recycled"], ["disqualified", "disqualified"]];
  const OP_LABEL = {
    eq: "is", ne: "is not", contains: "contains", starts_with: "starts with", ends_with: "ends with",
    in: "is one of", not_in: "is none of", exists: "is set", missing: "is not set",
    gt: "is more than", gte: "is at least", lt: "is less than", lte: "is at most",
    before: "is before", after: "is after", within_last_days: "is in the last",
    has: "include", has_any: "include any of", has_all: "include all of", has_none: "include none of",
  };
  // Value kinds: text0 (a string, may be empty), text (non-empty), list
  // (strings separated by commas), choice / choices (from a fixed list),
  // number, date, days, scalar / scalars (attribute values: text, number
  // or true/false), none.
  const stringOps = { eq: "text0", ne: "text0", contains: "text", starts_with: "text", ends_with: "text", in: "list", not_in: "list" };
  const numberOps = { eq: "number", ne: "number", gt: "number", gte: "number", lt: "number", lte: "number" };
  const SUBJECTS = [
    { id: "email", label: "Email", group: "Contact", ops: stringOps },
    { id: "first_name", label: "First name", group: "Contact", ops: stringOps },
    { id: "last_name", label: "Last name", group: "Contact", ops: stringOps },
    { id: "status", label: "Status", group: "Contact", ops: { eq: "choice", ne: "choice", in: "choices", not_in: "choices" }, choices: STATUSES },
    { id: "lifecycle_stage", label: "Lifecycle stage", group: "Contact", ops: { eq: "choice", ne: "choice", in: "choices", not_in: "choices" }, choices: STAGES },
    { id: "tags", label: "Tags", group: "Contact", ops: { has: "text", has_any: "list", has_all: "list", has_none: "list" } },
    { id: "score", label: "Lead score", group: "Contact", ops: numberOps },
    { id: "created_at", label: "Created", group: "Contact", ops: { before: "date", after: "date", within_last_days: "days" } },
    { id: "attr", label: "Attribute…", group: "Custom field", ops: {
      eq: "scalar", ne: "scalar", contains: "text", starts_with: "text", ends_with: "text", in: "scalars", not_in: "scalars",
      exists: "none", missing: "none", gt: "number", gte: "number", lt: "number", lte: "number",
      before: "date", after: "date", within_last_days: "days" } },
    { id: "event:opened", label: "Opened", group: "Engagement", event: "opened" },
    { id: "event:clicked", label: "Clicked", group: "Engagement", event: "clicked" },
    { id: "event:sent", label: "Was sent", group: "Engagement", event: "sent" },
    { id: "event:bounced", label: "Bounced", group: "Engagement", event: "bounced" },
    { id: "event:unsubscribed", label: "Unsubscribed", group: "Engagement", event: "unsubscribed" },
    { id: "event:complained", label: "Complained", group: "Engagement", event: "complained" },
    { id: "segment", label: "In segment", group: "Segments" },
  ];
  const SUBJECT = Object.fromEntries(SUBJECTS.map(s => [s.id, s]));
  const MAX_DEPTH = 3; // groups nest this deep in the builder (the text goes further)

  const options = id => {
    const t = document.getElementById(id);
    return t ? [...t.content.querySelectorAll("option")].map(o => [o.value, o.textContent]) : [];
  };
  const campaigns = options("rule-campaigns");
  const segments = options("rule-segments");

  let seq = 0;
  const nid = () => "rb" + (++seq);
  const group = join => ({ id: nid(), kind: "group", join: join || "all", not: false, items: [] });
  const cond = () => ({ id: nid(), kind: "cond", not: false, subject: "", key: "", op: "", value: "", vtype: "text", choices: [],
    campaign: "any", within: "", atLeast: "", link: "", machine: false });

  let model = group();
  let mode = "edit"; // edit; text-only (a rule the builder cannot show); text-error (the text does not parse)
  let dirty = false; // a builder change is not in the text yet
  let writing = false; // the builder is writing the text
  let syncTimer = null, syncSeq = 0, textTimer = null, textSeq = 0;
  const touched = new Set();
  let controls = {}; // JSON path of the last tree sent -> control, for the server's errors

  // ---- From the API's tree to the builder's model.

  class Unsupported extends Error {}
  const unsupported = why => new Unsupported(why);

  function fromRoot(tree) {
    const n = fromTree(tree);
    if (n.kind === "group") return n;
    const g = group();
    g.items.push(n);
    return g;
  }

  function fromTree(r) {
    if (r.not) {
      if (r.not.not) throw unsupported("a double negation (not not …)");
      const n = fromTree(r.not);
      n.not = true;
      return n;
    }
    if (r.all || r.any) {
      const g = group(r.all ? "all" : "any");
      g.items = (r.all || r.any).map(fromTree);
      return g;
    }
    return condFromTree(r);
  }

  function plain(s) {
    if (typeof s !== "string") throw unsupported("a value of an unexpected type");
    if (/[\r\n]/.test(s)) throw unsupported("a value with a line break");
    return s;
  }

  function condFromTree(r) {
    const c = cond();
    if (r.segment !== undefined) {
      c.subject = "segment"; c.value = String(r.segment);
      return c;
    }
    if (r.event !== undefined) {
      c.subject = "event:" + r.event;
      if (!SUBJECT[c.subject]) throw unsupported("the event " + r.event);
      c.campaign = r.campaign === undefined || r.campaign === "any" ? "any" : String(r.campaign);
      c.within = r.within_days ? String(r.within_days) : "";
      c.atLeast = r.at_least ? String(r.at_least) : "";
      c.link = r.link_contains ? plain(r.link_contains) : "";
      c.machine = !!r.include_machine;
      return c;
    }
    c.subject = r.attr !== undefined ? "attr" : r.field;
    const s = SUBJECT[c.subject];
    if (!s || !s.ops) throw unsupported("the field " + r.field);
    if (r.attr !== undefined) c.key = plain(r.attr);
    const kind = s.ops[r.op];
    if (!kind) throw unsupported("the operator " + r.op + " on " + s.label);
    c.op = r.op;
    valueFromTree(c, kind, r.value, s);
    return c;
  }

  function listText(v) {
    if (!Array.isArray(v)) throw unsupported("a value of an unexpected type");
    v.forEach(x => {
      plain(x);
      if (x.includes(",") || x.trim() !== x || x === "") throw unsupported("a list value that holds a comma or spaces at its ends");
    });
    return v.join(", ");
  }

  function valueFromTree(c, kind, v, s) {
    const known = x => s.choices.some(ch => ch[0] === x);
    switch (kind) {
      case "none": if (v !== undefined && v !== null) throw unsupported("a value where none belongs"); return;
      case "text0": case "text": c.value = plain(v); return;
      case "list": c.value = listText(v); return;
      case "choice": if (!known(v)) throw unsupported("the value " + v); c.value = v; return;
      case "choices":
        if (!Array.isArray(v) || !v.every(known)) throw unsupported("a list of unknown values");
        c.choices = v.slice(); return;
      case "number": case "days":
        if (typeof v !== "number") throw unsupported("a value of an unexpected type");
        c.value = String(v); return;
      case "date":
        if (typeof v !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(v)) throw unsupported("a date the builder cannot show");
        c.value = v; return;
      case "scalar":
        if (typeof v === "boolean") { c.vtype = "bool"; c.value = String(v); return; }
        if (typeof v === "number") { c.vtype = "number"; c.value = String(v); return; }
        c.vtype = "text"; c.value = plain(v); return;
      case "scalars":
        if (Array.isArray(v) && v.length && v.every(x => typeof x === "number")) { c.vtype = "number"; c.value = v.join(", "); return; }
        c.vtype = "text"; c.value = listText(v); return;
    }
  }

  // ---- From the model to a tree, with what is missing.

  function build() {
    const problems = [];
    controls = {};
    const tree = groupTree(model, "rule", problems, true);
    return { tree, problems };
  }

  function wrapNot(n, path) {
    return n.not ? { path: path + ".not", wrap: t => ({ not: t }) } : { path, wrap: t => t };
  }

  function groupTree(g, path, problems, isRoot) {
    const w = wrapNot(g, path);
    const key = g.join;
    const kids = [];
    g.items.forEach(item => {
      const p = w.path + "." + key + "[" + kids.length + "]";
      const t = item.kind === "group" ? groupTree(item, p, problems, false) : condTree(item, p, problems);
      if (t) kids.push(t);
    });
    if (!kids.length) return null; // an empty group holds no rule
    const t = {}; t[key] = kids;
    return w.wrap(t);
  }

  const el = (c, part) => document.querySelector('[data-key="' + c.id + "-" + part + '"]');

  function condTree(c, path, problems) {
    const w = wrapNot(c, path);
    const p = w.path;
    const need = (part, msg) => problems.push({ el: el(c, part), msg });
    const s = SUBJECT[c.subject];
    controls[p] = el(c, "subject");
    if (!s) { need("subject", "Choose a field, or remove this condition."); return null; }
    if (s.event) return w.wrap(eventTree(c, s, p, need));
    if (c.subject === "segment") {
      controls[p + ".segment"] = el(c, "value");
      if (!c.value) { need("value", "Choose a segment."); return null; }
      return w.wrap({ segment: Number(c.value) });
    }
    const t = {};
    if (c.subject === "attr") {
      t.attr = c.key;
      controls[p + ".attr"] = el(c, "key");
      if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(c.key)) {
        need("key", c.key ? "Attribute keys hold letters, digits, _ and -, and start with a letter or _." : "Enter the attribute's key, such as country.");
      }
    } else {
      t.field = c.subject;
    }
    t.op = c.op;
    controls[p + ".op"] = el(c, "op");
    controls[p + ".value"] = el(c, "value") || el(c, "choices");
    const v = valueTree(c, s.ops[c.op], need);
    if (v !== undefined) t.value = v;
    return w.wrap(t);
  }

  function numberOf(s) {
    const t = s.trim();
    return t !== "" && isFinite(Number(t)) ? Number(t) : null;
  }

  function wholeOf(s, lo, hi) {
    const t = s.trim();
    return /^\d+$/.test(t) && Number(t) >= lo && Number(t) <= hi ? Number(t) : null;
  }

  function listOf(s) {
    return s.split(",").map(x => x.trim()).filter(Boolean);
  }

  function valueTree(c, kind, need) {
    switch (kind) {
      case "none": return undefined;
      case "text0": return c.value;
      case "text": if (!c.value.trim()) need("value", "Enter a value."); return c.value;
      case "list": {
        const l = listOf(c.value);
        if (!l.length) need("value", "Enter one or more values, separated by commas.");
        return l;
      }
      case "choice": return c.value;
      case "choices": if (!c.choices.length) need("choices", "Choose at least one."); return c.choices.slice();
      case "number": {
        const n = numberOf(c.value);
        if (n === null) need("value", "Enter a number, such as 10 or 2.5.");
        return n;
      }
      case "date": if (!/^\d{4}-\d{2}-\d{2}$/.test(c.value)) need("value", "Choose a date."); return c.value;
      case "days": {
        const n = wholeOf(c.value, 1, 36500);
        if (n === null) need("value", "Enter a whole number of days from 1 to 36500.");
        return n;
      }
      case "scalar":
        if (c.vtype === "bool") return c.value === "true";
        if (c.vtype === "number") return valueTree(c, "number", need);
        return c.value;
      case "scalars": {
        const l = listOf(c.value);
        if (!l.length) { need("value", "Enter one or more values, separated by commas."); return l; }
        if (c.vtype !== "number") return l;
        const ns = l.map(numberOf);
        if (ns.some(n => n === null)) need("value", "Enter numbers separated by commas, or choose text.");
        return ns;
      }
    }
    return undefined;
  }

  function eventTree(c, s, p, need) {
    const t = { event: s.event, campaign: c.campaign === "any" ? "any" : Number(c.campaign) };
    controls[p + ".event"] = el(c, "subject");
    controls[p + ".campaign"] = el(c, "campaign");
    if (c.within.trim()) {
      controls[p + ".within_days"] = el(c, "within");
      const n = wholeOf(c.within, 1, 36500);
      if (n === null) need("within", "Enter a whole number of days from 1 to 36500, or leave it empty for ever.");
      t.within_days = n;
    }
    if (c.atLeast.trim()) {
      controls[p + ".at_least"] = el(c, "atleast");
      const n = wholeOf(c.atLeast, 1, 10000);
      if (n === null) need("atleast", "Enter a whole number from 1 to 10000, or leave it empty for once.");
      t.at_least = n;
    }
    if (s.event === "clicked" && c.link) { t.link_contains = c.link; controls[p + ".link_contains"] = el(c, "link"); }
    if ((s.event === "opened" || s.event === "clicked") && c.machine) t.include_machine = true;
    return t;
  }

  // ---- Drawing.

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === false || v === undefined || v === null) return;
      if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "value" || k === "checked") e[k] = v;
      else e.setAttribute(k, v === true ? "" : v);
    });
    kids.flat().forEach(k => { if (k) e.appendChild(typeof k === "string" ? document.createTextNode(k) : k); });
    return e;
  }

  function select(id, label, choices, value, onchange, extra) {
    const s = h("select", Object.assign({ id, "data-key": id, "aria-describedby": id + "-err", onchange }, extra || {}));
    choices.forEach(ch => {
      if (ch.group) {
        const og = h("optgroup", { label: ch.group });
        ch.items.forEach(([v, t]) => og.appendChild(h("option", { value: v, text: t })));
        s.appendChild(og);
      } else {
        s.appendChild(h("option", { value: ch[0], text: ch[1] }));
      }
    });
    s.value = value;
    return ctl(id, label, s);
  }

  function input(id, label, value, oninput, extra) {
    const i = h("input", Object.assign({ id, "data-key": id, type: "text", value, autocomplete: "off", spellcheck: "false", "aria-describedby": id + "-err", oninput }, extra || {}));
    return ctl(id, label, i);
  }

  // ctl wraps a control with its label (visible or for screen readers) and
  // the slot for its error.
  function ctl(id, label, control, visible) {
    return h("span", { class: "rb-ctl" },
      h("label", { for: id, class: visible ? "rb-label" : "sr", text: label }), control,
      h("span", { class: "error rb-err", id: id + "-err", hidden: true }));
  }

  let condNo = 0;
  function render() {
    const active = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
    condNo = 0;
    treeBox.textContent = "";
    treeBox.appendChild(drawGroup(model, null, 0));
    if (active) focusKey(active);
  }

  function focusKey(key) {
    const e = treeBox.querySelector('[data-key="' + key + '"]');
    if (e) e.focus();
  }

  function drawGroup(g, parent, depth) {
    const isRoot = parent === null;
    const id = g.id;
    const head = h("div", { class: "rb-head" },
      h("label", { class: "check rb-not" }, h("input", { type: "checkbox", "data-key": id + "-not", checked: g.not,
        onchange: e => { g.not = e.target.checked; changed(true); } }), isRoot ? "Not (select the contacts that do not match)" : "Not"),
      h("span", { class: "rb-ctl" },
        h("label", { for: id + "-join", class: "rb-label", text: isRoot ? "Contacts match" : "Match" }),
        h("select", { id: id + "-join", "data-key": id + "-join", onchange: e => { g.join = e.target.value; changed(true); } },
          h("option", { value: "all", text: "all", selected: g.join === "all" }),
          h("option", { value: "any", text: "any", selected: g.join === "any" })),
        h("span", { text: "of these conditions" })),
      isRoot ? null : h("button", { type: "button", class: "rb-remove", "data-key": id + "-remove", "aria-label": "Remove this group and its conditions",
        onclick: () => { parent.items.splice(parent.items.indexOf(g), 1); changed(true, parent.id + "-addc"); } }, "Remove group"));
    const list = h("ol", { class: "rb-items" });
    g.items.forEach((item, i) => {
      const join = i > 0 ? h("span", { class: "rb-join", "aria-hidden": "true", text: g.join === "all" ? "and" : "or" }) : null;
      list.appendChild(h("li", { class: item.kind === "group" ? "rb-item rb-nested" : "rb-item" }, join,
        item.kind === "group" ? drawGroup(item, g, depth + 1) : drawCond(item, g)));
    });
    const actions = h("div", { class: "rb-actions" },
      h("button", { type: "button", "data-key": id + "-addc", onclick: () => { const c = cond(); g.items.push(c); changed(true, c.id + "-subject"); } }, "Add condition"),
      depth < MAX_DEPTH - 1 ? h("button", { type: "button", "data-key": id + "-addg",
        onclick: () => { const n = group(g.join === "all" ? "any" : "all"); const c = cond(); n.items.push(c); g.items.push(n); changed(true, c.id + "-subject"); } }, "Add group") : null);
    const empty = !g.items.length ? h("p", { class: "empty", text: isRoot ? "No conditions yet: add one to start." : "This group is empty." }) : null;
    return h("div", { class: isRoot ? "rb-group rb-root" : "rb-group", role: "group", "aria-label": isRoot ? "Rule" : "Group of conditions" }, head, empty, list, actions);
  }

  function drawCond(c, parent) {
    const n = ++condNo;
    const id = c.id;
    const s = SUBJECT[c.subject];
    const subjectChoices = [["", "Choose a field…"]];
    ["Contact", "Custom field", "Engagement", "Segments"].forEach(gname => {
      const items = SUBJECTS.filter(x => x.group === gname && (x.id !== "segment" || segments.length || c.subject === "segment")).map(x => [x.id, x.label]);
      if (items.length) subjectChoices.push({ group: gname, items });
    });
    const row = h("div", { class: "rb-row" },
      h("label", { class: "check rb-not" }, h("input", { type: "checkbox", "data-key": id + "-not", checked: c.not,
        onchange: e => { c.not = e.target.checked; changed(false); } }), "Not"),
      select(id + "-subject", "Field", subjectChoices, c.subject, e => { setSubject(c, e.target.value); changed(true); }));
    if (s && s.ops) {
      if (c.subject === "attr") row.appendChild(input(id + "-key", "Attribute key", c.key, e => { c.key = e.target.value; changed(false); }, { placeholder: "key, such as country", class: "rb-key" }));
      row.appendChild(select(id + "-op", "Operator", Object.keys(s.ops).map(op => [op, OP_LABEL[op]]), c.op, e => { setOp(c, e.target.value); changed(true); }));
      drawValue(row, c, s, s.ops[c.op]);
    } else if (s && s.event) {
      drawEvent(row, c, s);
    } else if (c.subject === "segment") {
      const known = segments.some(x => x[0] === c.value);
      const choices = [["", "Choose a segment…"]].concat(segments, c.value && !known ? [[c.value, "Segment #" + c.value]] : []);
      row.appendChild(select(id + "-value", "Segment", choices, c.value, e => { c.value = e.target.value; changed(false); }));
    }
    row.appendChild(h("button", { type: "button", class: "rb-remove", "data-key": id + "-remove", "aria-label": "Remove condition " + n,
      onclick: () => { parent.items.splice(parent.items.indexOf(c), 1); changed(true, parent.id + "-addc"); } }, "Remove"));
    return h("div", { class: "rb-cond", role: "group", "aria-label": "Condition " + n }, row);
  }

  function drawValue(row, c, s, kind) {
    const id = c.id + "-value";
    const set = e => { c.value = e.target.value; changed(false); };
    if (kind === "scalar" || kind === "scalars") {
      const types = kind === "scalar" ? [["text", "text"], ["number", "number"], ["bool", "true / false"]] : [["text", "text"], ["number", "numbers"]];
      row.appendChild(select(c.id + "-vtype", "Value type", types, c.vtype, e => {
        c.vtype = e.target.value;
        if (c.vtype === "bool" && c.value !== "true" && c.value !== "false") c.value = "true";
        changed(true);
      }));
      if (kind === "scalar" && c.vtype === "bool") {
        row.appendChild(select(id, "Value", [["true", "true"], ["false", "false"]], c.value, set));
        return;
      }
      kind = kind === "scalars" ? "list" : c.vtype === "number" ? "number" : "text0";
    }
    switch (kind) {
      case "none": return;
      case "choice": row.appendChild(select(id, "Value", s.choices, c.value, set)); return;
      case "choices": {
        const box = h("fieldset", { class: "rb-choices", "data-key": c.id + "-choices", "aria-describedby": c.id + "-choices-err" },
          h("legend", { class: "sr", text: "Values" }),
          s.choices.map(([v, t]) => h("label", { class: "check" }, h("input", { type: "checkbox", "data-key": c.id + "-choice-" + v, checked: c.choices.includes(v),
            onchange: e => { c.choices = s.choices.map(x => x[0]).filter(x => x === v ? e.target.checked : c.choices.includes(x)); changed(false); } }), t)),
          h("span", { class: "error rb-err", id: c.id + "-choices-err", hidden: true }));
        row.appendChild(box);
        return;
      }
      case "date": row.appendChild(input(id, "Date", c.value, set, { type: "date" })); return;
      case "days":
        row.appendChild(input(id, "Number of days", c.value, set, { inputmode: "numeric", class: "rb-short" }));
        row.appendChild(h("span", { class: "rb-unit", text: "days" }));
        return;
      case "number": row.appendChild(input(id, "Value", c.value, set, { inputmode: "decimal", class: "rb-short" })); return;
      case "list": row.appendChild(input(id, "Values, separated by commas", c.value, set, { placeholder: "a, b, c" })); return;
      default: row.appendChild(input(id, "Value", c.value, set, { placeholder: "value" }));
    }
  }

  function drawEvent(row, c, s) {
    const id = c.id;
    const known = campaigns.some(x => x[0] === c.campaign);
    const choices = [["any", "any campaign"]].concat(campaigns, c.campaign !== "any" && !known ? [[c.campaign, "Campaign #" + c.campaign]] : []);
    row.appendChild(select(id + "-campaign", "Campaign", choices, c.campaign, e => { c.campaign = e.target.value; changed(false); }));
    row.appendChild(ctl(id + "-within", "in the last", h("input", { id: id + "-within", "data-key": id + "-within", type: "text", inputmode: "numeric", class: "rb-short",
      value: c.within, placeholder: "ever", "aria-describedby": id + "-within-err", oninput: e => { c.within = e.target.value; changed(false); } }), true));
    row.appendChild(h("span", { class: "rb-unit", text: "days" }));
    row.appendChild(ctl(id + "-atleast", "at least", h("input", { id: id + "-atleast", "data-key": id + "-atleast", type: "text", inputmode: "numeric", class: "rb-short",
      value: c.atLeast, placeholder: "1", "aria-describedby": id + "-atleast-err", oninput: e => { c.atLeast = e.target.value; changed(false); } }), true));
    row.appendChild(h("span", { class: "rb-unit", text: "times" }));
    if (s.event === "clicked") {
      row.appendChild(ctl(id + "-link", "on a link containing", h("input", { id: id + "-link", "data-key": id + "-link", type: "text", value: c.link,
        placeholder: "any link", "aria-describedby": id + "-link-err", oninput: e => { c.link = e.target.value; changed(false); } }), true));
    }
    if (s.event === "opened" || s.event === "clicked") {
      row.appendChild(h("label", { class: "check rb-machine" }, h("input", { type: "checkbox", "data-key": id + "-machine", checked: c.machine,
        onchange: e => { c.machine = e.target.checked; changed(false); } }), "count machine events too"));
    }
  }

  // setSubject changes a condition's field, keeping the operator and the
  // value where they still apply (email to first name, say).
  function setSubject(c, subject) {
    const before = SUBJECT[c.subject];
    const oldKind = before && before.ops ? before.ops[c.op] : null;
    c.subject = subject;
    const s = SUBJECT[subject];
    if (!s || !s.ops) { c.op = ""; c.value = ""; return; }
    if (!s.ops[c.op]) c.op = Object.keys(s.ops)[0];
    const kind = s.ops[c.op];
    if (kind !== oldKind || before.choices !== s.choices) { c.value = ""; c.choices = []; c.vtype = "text"; }
    if (kind === "choice" && !c.value) c.value = s.choices[0][0];
  }

  function setOp(c, op) {
    const s = SUBJECT[c.subject];
    const a = s.ops[c.op], b = s.ops[op];
    c.op = op;
    if (a === b) return;
    const lists = ["list", "scalars"], singles = ["text0", "text", "scalar"];
    if (!(lists.includes(a) && lists.includes(b)) && !(singles.includes(a) && singles.includes(b))) c.value = "";
    if (b === "scalars" && c.vtype === "bool") { c.vtype = "text"; c.value = ""; }
    if (b === "choice" && !s.choices.some(x => x[0] === c.value)) c.value = s.choices[0][0];
    if (b === "choices" && a === "choice" && c.value) c.choices = [c.value];
  }

  // ---- Keeping the text in step.

  // changed records an edit of the builder: structural edits re-draw it
  // (then focus moves to focusTo, if given) and the text follows soon.
  function changed(redraw, focusTo) {
    dirty = true;
    if (redraw) render();
    if (focusTo) focusKey(focusTo);
    clearTimeout(syncTimer);
    syncTimer = setTimeout(sync, redraw ? 50 : 350);
  }

  function setNote(text) {
    note.textContent = text || "";
    note.hidden = !text;
  }

  function clearProblems() {
    treeBox.querySelectorAll(".rb-err").forEach(e => { e.hidden = true; e.textContent = ""; });
    treeBox.querySelectorAll("[aria-invalid]").forEach(e => e.removeAttribute("aria-invalid"));
    treeBox.querySelectorAll("input, select").forEach(e => e.setCustomValidity(""));
  }

  const slotOf = ctrl => document.getElementById(ctrl.getAttribute("aria-describedby"));

  // flag puts msg next to the control. The message stays quiet until the
  // control was used (or the form submitted), but the browser refuses to
  // submit the form either way.
  function flag(ctrl, msg) {
    if (!ctrl) return false;
    const target = ctrl.tagName === "FIELDSET" ? ctrl.querySelector("input") : ctrl;
    if (target) target.setCustomValidity(msg);
    const slot = slotOf(ctrl);
    if (slot) slot.textContent = msg;
    if (touched.has(ctrl.dataset.key)) reveal(ctrl);
    return true;
  }

  function reveal(ctrl) {
    const slot = slotOf(ctrl);
    if (slot && slot.textContent) {
      slot.hidden = false;
      ctrl.setAttribute("aria-invalid", "true");
    }
  }

  // controlOf is the control an event's target belongs to: itself, or the
  // set of checkboxes it is one of.
  const controlOf = t => (t.closest && t.closest("fieldset[data-key]")) || t;

  async function sync() {
    clearTimeout(syncTimer);
    if (mode !== "edit") return false;
    const mine = ++syncSeq;
    clearProblems();
    const { tree, problems } = build();
    if (problems.length) {
      problems.forEach(p => flag(p.el, p.msg));
      setNote("Complete every condition in the builder (a field and a value for each): the text and the count follow once they are complete.");
      return false;
    }
    if (!tree) {
      setNote("");
      writeText("");
      dirty = false;
      return true;
    }
    let res;
    try {
      res = await api("POST", parseURL, { rule: tree });
    } catch (e) {
      setNote("Could not reach the server, so the text does not follow the builder yet: " + e.message);
      return false;
    }
    if (mine !== syncSeq) return false;
    if (!res.ok) {
      const e = res.data && res.data.error;
      const details = (e && e.details) || [];
      let placed = 0;
      details.forEach(d => {
        const c = controlFor(d.field);
        if (!c) return;
        touched.add(c.dataset.key); // the server's word is shown at once
        if (flag(c, d.message)) placed++;
      });
      setNote(placed === details.length && placed > 0 ? "Correct the conditions marked in the builder: the text follows once the rule is valid."
        : "The builder's rule is not valid: " + (details.map(d => d.message).join("; ") || (e && e.message) || "the server refused it") + ".");
      return false;
    }
    setNote("");
    writeText(res.data.text);
    dirty = false;
    return true;
  }

  // controlFor finds the control an error's JSON path names, or that of
  // its nearest condition.
  function controlFor(path) {
    for (let p = path || ""; p; p = p.replace(/(\.[a-z_]+|\[\d+\])$/, "")) {
      if (controls[p]) return controls[p];
      if (!/(\.[a-z_]+|\[\d+\])$/.test(p)) break;
    }
    return null;
  }

  function writeText(text) {
    if (ta.value === text) return;
    writing = true;
    ta.value = text;
    ta.removeAttribute("aria-invalid");
    ta.dispatchEvent(new Event("input", { bubbles: true })); // app.js counts the new rule
    writing = false;
  }

  // fromText re-draws the builder from the text, or says why it cannot.
  async function fromText() {
    clearTimeout(textTimer);
    const text = ta.value;
    const mine = ++textSeq;
    if (!text.trim()) { show(group()); return; }
    let res;
    try {
      res = await api("POST", parseURL, { text });
    } catch (e) {
      res = { ok: false, network: e.message };
    }
    if (mine !== textSeq || text !== ta.value) return;
    if (res.network) {
      hide("text-error", "Could not reach the server to read the text (" + res.network + "); until it answers, edit the rule as text.");
      return;
    }
    if (!res.ok) {
      hide("text-error", "The builder cannot show the rule while the text has an error (see below the text). Correct the text, and the builder shows the rule again.");
      return;
    }
    let m;
    try {
      m = fromRoot(res.data.rule);
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      hide("text-only", "This rule is only editable as text: it uses " + e.message + ", which the builder cannot show. Edit it in the text box, or clear the text to start over in the builder.");
      return;
    }
    show(m);
  }

  function show(m) {
    model = m;
    mode = "edit";
    dirty = false;
    root.classList.remove("rb-off");
    setNote("");
    render();
  }

  function hide(why, msg) {
    mode = why;
    dirty = false;
    root.classList.add("rb-off");
    treeBox.textContent = ""; // no control of a rule it cannot show
    setNote(msg);
  }

  ta.addEventListener("input", () => {
    if (writing) return;
    textSeq++; // an answer for older text is stale now
    clearTimeout(syncTimer);
    syncSeq++;
    dirty = false;
    clearTimeout(textTimer);
    textTimer = setTimeout(fromText, 350);
  });

  // A message stays hidden until its control was used: typed in, changed,
  // left, or found invalid when the form was submitted.
  const touch = e => {
    const c = controlOf(e.target);
    if (c.dataset && c.dataset.key) touched.add(c.dataset.key);
    return c;
  };
  treeBox.addEventListener("input", touch);
  treeBox.addEventListener("change", touch);
  treeBox.addEventListener("focusout", e => { if (e.target.validationMessage) reveal(touch(e)); });
  treeBox.addEventListener("invalid", e => reveal(touch(e)), true);

  // Saving waits for the builder's last edit to reach the text. This
  // listener runs before app.js's (capture on the document).
  document.addEventListener("submit", async ev => {
    if (ev.target !== form || !dirty) return;
    ev.preventDefault();
    ev.stopPropagation();
    if (await sync()) form.requestSubmit();
    else form.reportValidity(); // shows what is missing
  }, true);

  if (ta.value.trim()) fromText();
  else show(group());
})();
