// Veil app: live updates over server-sent events, sending without page reloads, countdowns.
// Everything works without this file except live updates; it only makes the pages feel live.
"use strict";
(function () {
  const body = document.body;
  let clockOffset = 0; // device clock minus browser clock, so countdowns follow the device

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 120;
  }
  function toBottom() { window.scrollTo(0, document.body.scrollHeight); }

  function showError(text) {
    const el = document.getElementById("error");
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
  }

  // Put the new list's lines in place, keeping nodes whose key did not change (no image reloads).
  function morph(oldList, newList) {
    const keep = new Map(Array.from(oldList.children, (li) => [li.dataset.key, li]));
    let i = 0;
    for (const li of Array.from(newList.children)) {
      const node = keep.get(li.dataset.key) || li;
      keep.delete(li.dataset.key);
      const at = oldList.children[i];
      if (at !== node) oldList.insertBefore(node, at || null);
      i += 1;
    }
    for (const li of keep.values()) li.remove();
    oldList.dataset.now = newList.dataset.now;
  }

  function syncClock() {
    const lines = document.getElementById("lines");
    if (lines && lines.dataset.now) clockOffset = Number(lines.dataset.now) - Date.now();
  }

  let refreshing = null;
  async function refreshPart() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      const seen = document.visibilityState === "visible" ? "1" : "0";
      const resp = await fetch(body.dataset.part + "&seen=" + seen, { headers: { "X-Veil": "fetch" } });
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const live = document.getElementById("live");
      const stick = nearBottom();
      for (const id of ["head", "banner", "typing", "empty"]) {
        const now = document.getElementById(id), next = doc.getElementById(id);
        if (now && next) now.replaceWith(next);
        else if (now) now.remove();
        else if (next) live.appendChild(next);
      }
      morph(document.getElementById("lines"), doc.getElementById("lines"));
      syncClock();
      tick();
      if (stick) toBottom();
    })().finally(() => { refreshing = null; });
    return refreshing;
  }

  let leaving = false; // a form is being submitted: a live reload now would race its answer
  function listen() {
    if (!body.dataset.events) return;
    const es = new EventSource(body.dataset.events);
    es.onmessage = () => {
      if (body.dataset.part) refreshPart();
      else if (!leaving) window.location.reload();
    };
    window.addEventListener("pagehide", () => es.close());
  }

  async function post(form, submitter) {
    const data = new FormData(form, submitter);
    const resp = await fetch(form.action, { method: "POST", body: data, headers: { "X-Veil": "fetch" } });
    let answer = { ok: resp.ok, error: "" };
    try { answer = await resp.json(); } catch (e) { answer.error = resp.ok ? "" : "Something went wrong."; }
    showError(answer.ok ? "" : answer.error);
    return answer.ok;
  }

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (!body.dataset.part) leaving = true;
    if (!body.dataset.part || !(form.classList.contains("js-post") || form.classList.contains("unsend"))) return;
    ev.preventDefault();
    const text = form.querySelector("#text");
    const ok = await post(form, ev.submitter);
    if (ok && text) text.value = "";
    if (ok && form.closest("details")) form.closest("details").open = false;
    const file = form.querySelector("input[type=file]");
    if (file) file.value = "";
    await refreshPart();
    if (ok && !form.classList.contains("unsend")) toBottom();
  });

  const file = document.getElementById("file");
  if (file) file.addEventListener("change", () => { if (file.files.length) file.form.requestSubmit(); });

  // Typing: tell the other side at most every 3 seconds while keys are pressed.
  const text = document.getElementById("text");
  let lastTyping = 0;
  if (text && text.dataset.typing) {
    text.addEventListener("input", () => {
      const now = Date.now();
      if (!text.value || now - lastTyping < 3000) return;
      lastTyping = now;
      fetch(text.dataset.typing, { method: "POST", headers: { "X-Veil": "fetch" } }).catch(() => {});
    });
  }

  function left(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }
  function tick() {
    const now = Date.now() + clockOffset;
    for (const el of document.querySelectorAll(".countdown[data-expires]")) {
      el.textContent = left(Number(el.dataset.expires) - now);
    }
  }

  syncClock();
  tick();
  setInterval(tick, 1000);
  if (body.dataset.part) {
    toBottom();
    // A thread that comes back into view counts as read now: countdowns start, "Seen" is sent.
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") refreshPart(); });
  }
  listen();
})();
