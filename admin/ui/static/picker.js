// The contact picker beside a template's preview: a combobox that
// searches contacts by the start of their email (GET /api/v1/contacts)
// and shows the matches in a listbox. Choosing one puts its id in the
// preview form's contact_id and submits it; app.js renders the preview.
// Keys: Down and Up move through the matches, Enter chooses, Escape
// closes the list (and, pressed again, clears the search).
"use strict";
(function () {
  const input = document.getElementById("contact-search");
  const list = document.getElementById("contact-options");
  const pform = input && input.form;
  if (!input || !list || !pform || !window.Funnel) return;
  const api = window.Funnel.api;
  const hidden = pform.querySelector('input[name="contact_id"]');
  const found = document.getElementById("contact-found");
  const status = document.getElementById("contact-status");
  const sample = document.getElementById("contact-sample");
  const limit = 8;
  let matches = [], active = -1, timer = null, seq = 0;

  function open(on) {
    list.hidden = !on;
    input.setAttribute("aria-expanded", on ? "true" : "false");
    if (!on) setActive(-1);
  }

  function setActive(i) {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute("aria-selected", j === i ? "true" : "false"));
    if (i >= 0 && list.children[i]) {
      input.setAttribute("aria-activedescendant", list.children[i].id);
      list.children[i].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  const fullName = c => [c.first_name, c.last_name].filter(Boolean).join(" ");

  function draw() {
    list.textContent = "";
    matches.forEach((c, i) => {
      const li = document.createElement("li");
      li.id = "contact-option-" + c.id;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      const email = document.createElement("span");
      email.className = "picker-email";
      email.textContent = c.email;
      li.appendChild(email);
      if (fullName(c)) {
        const name = document.createElement("span");
        name.className = "picker-name";
        name.textContent = fullName(c);
        li.appendChild(name);
      }
      // mousedown would move the focus out of the combobox first.
      li.addEventListener("mousedown", e => e.preventDefault());
      li.addEventListener("click", () => choose(i));
      list.appendChild(li);
    });
    open(matches.length > 0);
  }

  async function search() {
    const q = input.value.trim();
    const mine = ++seq;
    if (!q) { matches = []; draw(); found.textContent = ""; return; }
    const res = await api("GET", "/api/v1/contacts?limit=" + limit + "&email_prefix=" + encodeURIComponent(q));
    if (mine !== seq) return;
    if (!res.ok) {
      matches = []; draw();
      found.textContent = (res.data && res.data.error && res.data.error.message) || "The search failed.";
      return;
    }
    matches = res.data.contacts || [];
    draw();
    found.textContent = matches.length === 0 ? "No contact's email starts with “" + q + "”."
      : matches.length + (matches.length === 1 ? " contact matches" : " contacts match") + (res.data.next_cursor ? " (the first " + limit + " shown; type more to narrow)" : "") + ".";
  }

  function preview(id, label) {
    hidden.value = id ? String(id) : "";
    status.textContent = label;
    pform.requestSubmit(); // app.js renders the preview, or shows the error next to the field
  }

  function choose(i) {
    const c = matches[i];
    if (!c) return;
    input.value = c.email;
    open(false);
    found.textContent = "";
    preview(c.id, "Preview for " + c.email + (fullName(c) ? " (" + fullName(c) + ")" : "") + ".");
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });

  input.addEventListener("keydown", e => {
    const n = matches.length;
    switch (e.key) {
      case "ArrowDown":
        e.preventDefault();
        if (list.hidden && n) open(true);
        if (n) setActive((active + 1) % n);
        break;
      case "ArrowUp":
        e.preventDefault();
        if (list.hidden && n) open(true);
        if (n) setActive(active <= 0 ? n - 1 : active - 1);
        break;
      case "Enter":
        if (!list.hidden) {
          e.preventDefault(); // choosing, not submitting the search
          if (active >= 0) choose(active);
        }
        break;
      case "Escape":
        if (!list.hidden) { e.preventDefault(); open(false); }
        else if (input.value) { e.preventDefault(); input.value = ""; matches = []; found.textContent = ""; }
        break;
      case "Tab":
        open(false);
        break;
    }
  });

  input.addEventListener("blur", () => open(false));

  // When the preview fails, the status no longer says what it shows.
  const error = pform.querySelector('[data-error-for="contact_id"]');
  new MutationObserver(() => {
    if (error.hidden) return;
    status.textContent = "";
    input.setAttribute("aria-invalid", "true");
  }).observe(error, { attributes: true, attributeFilter: ["hidden"] });

  sample.addEventListener("click", () => {
    input.value = "";
    matches = []; draw(); found.textContent = "";
    preview(0, "Preview with sample data.");
    input.focus();
  });
})();
