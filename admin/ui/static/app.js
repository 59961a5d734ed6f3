// Funnel's web UI: forms send JSON to the REST API with the session's
// CSRF token and show the API's errors next to their fields.
"use strict";
(function () {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function api(method, url, body, headers) {
    const h = Object.assign({ "X-CSRF-Token": csrf, "Accept": "application/json" }, headers || {});
    let payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      h["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    // No HTTP cache: pages poll live state (a campaign's progress) at URLs
    // whose ETag names only the resource's version, so a revalidated
    // answer would be the first one read.
    const res = await fetch(url, { method, headers: h, body: payload, credentials: "same-origin", cache: "no-store" });
    let data = null;
    if (res.status !== 204) { try { data = await res.json(); } catch (e) { data = null; } }
    return { status: res.status, ok: res.ok, data, headers: res.headers };
  }
  // Page scripts (builder.js, picker.js) call the API through the same helper.
  window.Funnel = Object.freeze({ api });

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach(e => { e.hidden = true; e.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(e => e.removeAttribute("aria-invalid"));
    const fe = form.querySelector(".form-error"); if (fe) { fe.hidden = true; fe.textContent = ""; }
  }

  // showErrors puts each detail next to its field (line errors as a list
  // that names the line), and the message at the top of the form.
  function showErrors(form, err) {
    const details = (err && err.details) || [];
    let placed = 0;
    details.forEach(d => {
      const field = (d.field || "").split(/[.\[]/)[0];
      const slot = form.querySelector('[data-error-for="' + field + '"]');
      if (!slot) return;
      placed++;
      const text = (d.line ? "Line " + d.line + (d.column ? ", column " + d.column : "") + ": " : "") + d.message;
      if (slot.tagName === "OL") {
        const li = document.createElement("li"); li.textContent = text; slot.appendChild(li);
      } else {
        slot.textContent = slot.textContent ? slot.textContent + " " + text : text;
      }
      slot.hidden = false;
      const input = form.querySelector('[name="' + field + '"]');
      if (input) { input.setAttribute("aria-invalid", "true"); if (slot.id) input.setAttribute("aria-describedby", slot.id); }
      if (d.line && input && input.tagName === "TEXTAREA") markLine(input, d.line);
    });
    const fe = form.querySelector(".form-error");
    if (fe && (placed === 0 || placed < details.length || details.length === 0)) {
      fe.textContent = (err && err.message) || "Something went wrong.";
      fe.hidden = false;
    }
    const first = form.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
  }

  // markLine selects the line of a textarea that an error names.
  function markLine(ta, line) {
    const lines = ta.value.split("\n");
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    const end = start + (lines[line - 1] || "").length;
    ta.setSelectionRange(start, end);
  }

  function formBody(form) {
    const body = {};
    form.querySelectorAll("input[name], textarea[name], select[name]").forEach(el => {
      if (el.type === "checkbox") {
        if (el.hasAttribute("data-int-list") || el.hasAttribute("data-str-list")) {
          body[el.name] = body[el.name] || [];
          if (el.checked) body[el.name].push(el.hasAttribute("data-str-list") ? el.value : parseInt(el.value, 10));
        } else { body[el.name] = el.checked; }
        return;
      }
      let v = el.value;
      if (el.hasAttribute("data-int")) v = v === "" ? 0 : parseInt(v, 10);
      if (el.hasAttribute("data-list")) v = v.split(",").map(s => s.trim()).filter(Boolean);
      if (el.hasAttribute("data-lines")) v = v.split("\n").map(s => s.trim()).filter(Boolean);
      if (el.hasAttribute("data-number")) v = v === "" ? null : Number(v);
      if (el.hasAttribute("data-json")) v = v === "" ? null : JSON.parse(v);
      if (el.type === "datetime-local") v = v ? new Date(v).toISOString() : "";
      body[el.name] = v;
    });
    return body;
  }

  document.querySelectorAll("form[data-api-form]").forEach(form => {
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
      clearErrors(form);
      const btn = form.querySelector('button[type="submit"]'); if (btn) btn.disabled = true;
      const headers = {};
      if (form.dataset.etag) headers["If-Match"] = form.dataset.etag;
      try {
        const res = await api(form.dataset.method || "POST", form.dataset.action, formBody(form), headers);
        if (!res.ok) {
          const err = res.data && res.data.error;
          if (res.status === 412) err.message = "Someone else changed this since you opened it. Copy your changes, reload the page and apply them again.";
          showErrors(form, err);
          return;
        }
        if (res.headers.get("ETag")) form.dataset.etag = res.headers.get("ETag");
        form.dispatchEvent(new CustomEvent("funnel:saved", { detail: res.data }));
        if (form.hasAttribute("data-refresh")) document.dispatchEvent(new CustomEvent("funnel:refresh"));
        if (form.dataset.next) {
          const id = res.data && res.data.id;
          window.location.assign(form.dataset.next.replace("{id}", id));
        } else if (form.dataset.done) {
          const d = form.querySelector(".done"); if (d) { d.textContent = form.dataset.done; d.hidden = false; }
        }
      } catch (e) {
        showErrors(form, { message: "Could not reach the server: " + e.message });
      } finally { if (btn) btn.disabled = false; }
    });
  });

  // Segment rule: a live count while typing.
  document.querySelectorAll("textarea[data-live-count]").forEach(ta => {
    const out = document.getElementById("count");
    const form = ta.form;
    let timer = null, seq = 0;
    const run = async () => {
      const mine = ++seq;
      if (!ta.value.trim()) { out.textContent = ""; return; }
      const res = await api("POST", "/api/v1/segments/preview", { text: ta.value });
      if (mine !== seq) return;
      const slot = form.querySelector('[data-error-for="text"]');
      if (res.ok) {
        slot.hidden = true; ta.removeAttribute("aria-invalid");
        out.textContent = res.data.count.toLocaleString() + (res.data.count === 1 ? " contact matches" : " contacts match");
      } else {
        out.textContent = "";
        const e = res.data && res.data.error, d = e && e.details && e.details[0];
        slot.textContent = d ? (d.line ? "Line " + d.line + ", column " + d.column + ": " : "") + d.message : (e ? e.message : "invalid rule");
        slot.hidden = false; ta.setAttribute("aria-invalid", "true");
      }
    };
    ta.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 300); });
    run();
  });

  // Template preview beside the editor.
  const editor = document.querySelector("form[data-preview]");
  const pform = document.querySelector("form[data-preview-form]");
  if (editor && pform) {
    const frame = document.getElementById("preview-frame");
    const subject = document.getElementById("preview-subject");
    const preview = async () => {
      clearErrors(pform);
      const raw = pform.contact_id.value.trim();
      const res = await api("POST", editor.dataset.preview, { contact_id: raw ? parseInt(raw, 10) || -1 : 0 });
      if (!res.ok) { showErrors(pform, res.data && res.data.error); return; }
      subject.textContent = "Subject: " + res.data.subject;
      frame.srcdoc = res.data.html;
    };
    pform.addEventListener("submit", ev => { ev.preventDefault(); preview(); });
    editor.addEventListener("funnel:saved", preview);
    preview();
  }

  // CSV import with a progress bar and the row errors.
  const imp = document.querySelector("form[data-import]");
  if (imp) {
    imp.addEventListener("submit", async ev => {
      ev.preventDefault();
      clearErrors(imp);
      const fd = new FormData(imp);
      const res = await api("POST", "/api/v1/imports", fd);
      if (!res.ok) { showErrors(imp, res.data && res.data.error); return; }
      const box = document.getElementById("import-progress"); box.hidden = false;
      const bar = document.getElementById("import-bar"), status = document.getElementById("import-status");
      const poll = async () => {
        const r = await api("GET", "/api/v1/imports/" + res.data.id);
        const d = r.data, s = d.stats || {};
        bar.max = d.bytes_total || 1; bar.value = s.bytes_read || 0;
        status.textContent = d.status + ": " + (s.rows_read || 0) + " rows read, " + (s.inserted || 0) + " added, " +
          (s.updated || 0) + " updated, " + (s.invalid || 0) + " rejected." + (d.failure ? " " + d.failure : "");
        const errs = s.errors || [];
        if (errs.length) {
          const t = document.getElementById("import-errors"); t.hidden = false;
          const tb = t.querySelector("tbody"); tb.textContent = "";
          errs.forEach(e => {
            const tr = document.createElement("tr");
            [e.line, e.field || "", e.message].forEach(v => { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
            tb.appendChild(tr);
          });
        }
        if (d.status === "running") setTimeout(poll, 400);
        else { bar.value = bar.max; box.dataset.done = d.status; }
      };
      poll();
    });
  }

  // zonedTime writes an RFC 3339 time as the pages do (timeLayout in
  // ui.go: "2006-01-02 15:04" and the zone's abbreviation) in the IANA
  // zone given, or "—" for none.
  function zonedTime(iso, zone) {
    if (!iso) return "—";
    let f;
    try {
      f = new Intl.DateTimeFormat("en-US", { timeZone: zone || "UTC", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" });
    } catch (e) { return new Date(iso).toLocaleString(); }
    const t = {}; f.formatToParts(new Date(iso)).forEach(x => { t[x.type] = x.value; });
    return t.year + "-" + t.month + "-" + t.day + " " + t.hour + ":" + t.minute + " " + t.timeZoneName;
  }

  // rateText writes messages per second as the campaign page does
  // (rateText in ui.go).
  function rateText(r) {
    return (r > 0 && r < 1 ? String(Number(r.toPrecision(2))) : r.toFixed(1)) + " messages/s";
  }

  // liveCampaign keeps the progress of the campaign that el names
  // (data-campaign-live, polled every data-every ms) current inside el:
  // [data-count] (a delivery status, or "audience"), progress[data-sent-bar],
  // the [data-live-status] badge, [data-rate], time[data-eta] and
  // time[data-send-at] (in their data-zone), and the controls that apply
  // to the status ([data-when]).
  // It polls while the campaign may still change; it returns a function
  // that polls at once, for after a control was used.
  function liveCampaign(el) {
    const id = el.dataset.campaignLive, every = parseInt(el.dataset.every, 10) || 1000;
    const all = sel => el.querySelectorAll(sel);
    let timer = null;
    const tick = async () => {
      let r;
      try { r = await api("GET", "/api/v1/campaigns/" + id); } catch (e) { r = { status: 0 }; }
      clearTimeout(timer);
      // A busy server or a dropped connection is asked again later; a
      // campaign that is gone or forbidden is not.
      if (!r.ok) { if (r.status === 0 || r.status >= 500) timer = setTimeout(tick, every * 3); return; }
      const status = r.data.status, p = r.data.progress || {}, c = p.counts || {};
      all("[data-count]").forEach(e => {
        const k = e.dataset.count; e.textContent = k === "audience" ? (p.audience || 0) : (c[k] || 0);
      });
      all("progress[data-sent-bar]").forEach(b => { b.max = p.audience || 1; b.value = c.sent || 0; });
      all("[data-live-status]").forEach(b => { b.textContent = status; b.className = "badge " + status; });
      all("[data-rate]").forEach(e => { e.textContent = rateText(p.rate || 0); });
      all("time[data-eta]").forEach(e => { e.dateTime = p.eta || ""; e.textContent = zonedTime(p.eta, e.dataset.zone); });
      all("time[data-send-at]").forEach(e => {
        if (Date.parse(e.dateTime) !== Date.parse(r.data.send_at)) { e.dateTime = r.data.send_at || ""; e.textContent = zonedTime(r.data.send_at, e.dataset.zone); }
      });
      all("[data-when]").forEach(e => {
        const on = e.dataset.when.split(" ").includes(status);
        if (e.tagName === "FORM") e.querySelectorAll("button").forEach(b => { b.disabled = !on; });
        else e.hidden = !on;
      });
      if (["scheduled", "sending", "paused"].includes(status)) timer = setTimeout(tick, every);
    };
    timer = setTimeout(tick, every);
    return tick;
  }
  // The campaign page and each campaign in progress on the dashboard.
  document.querySelectorAll("[data-campaign-live]").forEach(el => {
    document.addEventListener("funnel:refresh", liveCampaign(el));
  });

  // Times in the viewer's zone.
  document.querySelectorAll("time.local[datetime]").forEach(t => {
    if (t.dateTime) t.textContent = new Date(t.dateTime).toLocaleString();
  });
  document.querySelectorAll("[data-tz]").forEach(e => { e.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone; });

  // API tokens.
  const tokens = document.querySelector("table[data-tokens]");
  if (tokens) {
    const load = async () => {
      const r = await api("GET", "/api/v1/tokens");
      const tb = tokens.querySelector("tbody"); tb.textContent = "";
      (r.data.tokens || []).forEach(t => {
        const tr = document.createElement("tr");
        [t.name, t.user_email || "(bootstrap)", t.prefix + "…", new Date(t.created_at).toLocaleString(),
         t.last_used_at ? new Date(t.last_used_at).toLocaleString() : "never"].forEach(v => {
          const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
        });
        const td = document.createElement("td"), b = document.createElement("button");
        b.textContent = "Revoke"; b.className = "danger"; b.setAttribute("aria-label", "Revoke " + t.name);
        b.addEventListener("click", async () => {
          if (!window.confirm("Revoke " + t.name + "? Programs using it stop working.")) return;
          await api("DELETE", "/api/v1/tokens/" + t.id); load();
        });
        td.appendChild(b); tr.appendChild(td); tb.appendChild(tr);
      });
    };
    document.querySelector("form[data-token-create]").addEventListener("funnel:saved", ev => {
      document.getElementById("secret").textContent = ev.detail.secret;
      document.getElementById("new-secret").hidden = false;
      load();
    });
    load();
  }
  // Webhooks: the signing secret, shown once, after creating an endpoint.
  const hookForm = document.querySelector("form[data-webhook-create]");
  if (hookForm) {
    hookForm.addEventListener("funnel:saved", ev => {
      document.getElementById("secret").textContent = ev.detail.secret;
      document.getElementById("webhook-link").href = "/webhooks/" + ev.detail.id;
      const box = document.getElementById("webhook-secret");
      hookForm.hidden = true; box.hidden = false; box.focus();
    });
  }

  // Scoring: owner rules are rows of controls, sent as JSON in a hidden field.
  const owners = document.querySelector("[data-owner-rules]");
  if (owners) {
    const field = document.getElementById("owner_rules"), tbody = owners.querySelector("tbody");
    const none = owners.querySelector("[data-no-rules]"), add = owners.querySelector("[data-add-rule]");
    const sync = () => {
      const rules = [...tbody.rows].map((tr, i) => {
        const get = k => tr.querySelector('[data-k="' + k + '"]');
        [["attribute", "Attribute"], ["value", "Value"], ["user_id", "Owner"]].forEach(([k, l]) => get(k).setAttribute("aria-label", l + " of rule " + (i + 1)));
        tr.querySelector("[data-remove-rule]").setAttribute("aria-label", "Remove rule " + (i + 1));
        return { attribute: get("attribute").value.trim(), value: get("value").value, user_id: parseInt(get("user_id").value, 10) || 0 };
      });
      field.value = JSON.stringify(rules);
      none.hidden = rules.length > 0;
      tbody.closest("table").hidden = rules.length === 0;
    };
    owners.addEventListener("input", sync);
    owners.addEventListener("change", sync);
    owners.addEventListener("click", ev => {
      const b = ev.target.closest("[data-remove-rule]");
      if (!b) return;
      b.closest("tr").remove(); sync();
      if (add) add.focus();
    });
    if (add) add.addEventListener("click", () => {
      tbody.appendChild(document.getElementById("owner-rule-row").content.firstElementChild.cloneNode(true));
      sync(); tbody.lastElementChild.querySelector("input").focus();
    });
    sync();
  }

  // SMTP servers: check a connection and show what the server said.
  document.querySelectorAll("form[data-smtp-check]").forEach(form => {
    const out = form.querySelector(".check-result"), btn = form.querySelector("button");
    const row = (dl, k, v) => {
      if (!v) return;
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k; dd.textContent = v; dl.append(dt, dd);
    };
    form.addEventListener("submit", async ev => {
      ev.preventDefault(); clearErrors(form);
      btn.disabled = true; out.textContent = "Checking…";
      try {
        const res = await api("POST", form.dataset.action);
        out.textContent = "";
        if (!res.ok) { showErrors(form, res.data && res.data.error); return; }
        const r = res.data, p = document.createElement("p");
        p.className = r.ok ? "ok" : "warning";
        p.textContent = r.ok ? "OK: connected in " + r.latency_ms + " ms; every step succeeded."
          : "Failed at " + r.stage + (r.code ? " (reply " + r.code + ")" : "") + " after " + r.latency_ms + " ms: " + r.error;
        const dl = document.createElement("dl"); dl.className = "kv";
        row(dl, "Greeting", r.greeting); row(dl, "EHLO", r.hello); row(dl, "Encryption", r.tls || (r.greeting ? "none" : ""));
        row(dl, "Authenticated", r.auth ? "with " + r.auth : ""); row(dl, "Extensions", (r.extensions || []).join(", "));
        out.append(p, dl);
      } catch (e) {
        out.textContent = "";
        showErrors(form, { message: "Could not reach the server: " + e.message });
      } finally { btn.disabled = false; }
    });
  });

  // DNS records: copy a value, or select it where the clipboard is not allowed.
  document.querySelectorAll("button[data-copy]").forEach(b => {
    b.addEventListener("click", async () => {
      const code = b.parentElement.querySelector("code");
      try {
        await navigator.clipboard.writeText(code.textContent); b.textContent = "Copied";
      } catch (e) {
        const range = document.createRange(); range.selectNodeContents(code);
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
        b.textContent = "Selected: press Ctrl+C";
      }
      setTimeout(() => { b.textContent = "Copy"; }, 2500);
    });
  });

  // Schedule forms take a date and time in the user's time zone (account
  // page). The server converts it, daylight saving included
  // (GET /api/v1/me/local-time), and the schedule gets that RFC 3339 time.
  async function localToRFC3339(form, value) {
    const r = await api("GET", "/api/v1/me/local-time?at=" + encodeURIComponent(value));
    if (r.ok) return r.data.time;
    const e = (r.data && r.data.error) || { message: "Could not read the time." };
    showErrors(form, { message: e.message, details: (e.details || []).map(d => Object.assign({}, d, { field: "send_at" })) });
    return null;
  }
  document.querySelectorAll("form[data-local-schedule]").forEach(form => {
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      clearErrors(form);
      const btn = form.querySelector('button[type="submit"]'); if (btn) btn.disabled = true;
      try {
        const at = await localToRFC3339(form, form.querySelector('input[type="datetime-local"]').value);
        if (!at) return;
        const res = await api("POST", form.dataset.action, { send_at: at });
        if (!res.ok) { showErrors(form, res.data && res.data.error); return; }
        window.location.assign(form.dataset.next);
      } catch (e) {
        showErrors(form, { message: "Could not reach the server: " + e.message });
      } finally { if (btn) btn.disabled = false; }
    });
  });
  // The new-campaign form: an optional schedule is converted before the
  // draft is created (a capture listener runs before the form's own), and
  // applied once it exists.
  document.querySelectorAll("form[data-schedule-after]").forEach(form => {
    const input = form.querySelector("input[data-local-time]");
    let sendAt = "", checked = null;
    document.addEventListener("submit", async ev => {
      if (ev.target !== form || !input.value || checked === input.value) return;
      ev.preventDefault(); ev.stopPropagation();
      clearErrors(form);
      try {
        const at = await localToRFC3339(form, input.value);
        if (!at) return;
        sendAt = at; checked = input.value;
        form.requestSubmit();
      } catch (e) { showErrors(form, { message: "Could not reach the server: " + e.message }); }
    }, true);
    form.addEventListener("funnel:saved", async ev => {
      const id = ev.detail && ev.detail.id;
      if (input.value && sendAt) {
        const res = await api("POST", "/api/v1/campaigns/" + id + "/schedule", { send_at: sendAt });
        if (!res.ok) window.alert("The draft was saved but not scheduled: " + ((res.data && res.data.error && res.data.error.message) || res.status));
      }
      window.location.assign(form.dataset.nextAfter.replace("{id}", id));
    });
  });

  // Users page: a new reset link is shown once.
  document.querySelectorAll("form[data-reset-link]").forEach(form => {
    form.addEventListener("funnel:saved", ev => {
      document.getElementById("reset-for").textContent = form.dataset.resetLink;
      document.getElementById("reset-url").textContent = ev.detail.url;
      const box = document.getElementById("reset-link"); box.hidden = false; box.scrollIntoView({ block: "nearest" });
    });
  });
  // Account page: offer the browser's zone; forget typed passwords once saved.
  document.querySelectorAll("[data-browser-zone]").forEach(el => {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!zone) return;
    const b = el.querySelector("[data-use-zone]"); b.textContent = zone;
    b.addEventListener("click", () => { document.getElementById("time_zone").value = zone; });
    el.hidden = false;
  });
  document.querySelectorAll("form[data-clear]").forEach(form => {
    form.addEventListener("funnel:saved", () => form.querySelectorAll('input[type="password"]').forEach(i => { i.value = ""; }));
  });
})();
