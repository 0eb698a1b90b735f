// The editor's desk, enhanced. Every form on the issue page works without this script (a
// POST, then a redirect to the page); with it, the forms marked data-enhance post with
// fetch() (the session's CSRF token is in the form) and the server answers the changed part
// of the page (X-Requested-With: fetch), which replaces #issue-work: no reload. Items of
// the curation list can also be dragged to another place in their section. What changed is
// said in #desk-live (aria-live) and the focus goes back to the control that was used.
// No dependencies, nothing from another site; served by digest/web/scripts.py.
(function () {
  "use strict";
  var work = document.getElementById("issue-work");
  if (!work || !window.fetch || !window.URLSearchParams) { return; }
  // The live region is there before anything changes (so screen readers listen to it), and
  // only with the script (without it, each answer is a page whose notice has its role).
  var live = document.createElement("p");
  live.id = "desk-live";
  live.className = "visually-hidden";
  live.setAttribute("aria-live", "polite");
  work.parentNode.insertBefore(live, work);
  var busy = false;
  var dragged = null;

  // The page's channel and width stay as they are in the answer.
  function target(action) {
    var url = new URL(action, window.location.href);
    var here = new URLSearchParams(window.location.search);
    ["channel", "width"].forEach(function (name) {
      if (here.has(name) && !url.searchParams.has(name)) {
        url.searchParams.set(name, here.get(name));
      }
    });
    return url.toString();
  }

  // An item's row, and its key (the row's hidden "item" field).
  var ROWS = "table.items tr[id^='item-']";
  function keyOf(row) {
    var field = row.querySelector("input[name='item']");
    return field ? field.value : "";
  }
  function rowByKey(key) {
    var found = null;
    work.querySelectorAll(ROWS).forEach(function (row) {
      if (keyOf(row) === key) { found = row; }
    });
    return found;
  }

  // Which control to focus after the answer: the same one (by name and value) or, when it
  // is now disabled (an item moved to the top), the other arrow of its row.
  function remember(control) {
    if (!control) { return null; }
    return { id: control.id, name: control.getAttribute("name"), value: control.value };
  }

  function restore(wanted, key) {
    var found = null;
    if (wanted && wanted.name && wanted.value) {
      found = work.querySelector(
        "button[name='" + wanted.name + "'][value='" + CSS.escape(wanted.value) + "']");
    }
    if (!found && wanted && wanted.id) { found = document.getElementById(wanted.id); }
    if (found && found.disabled) {
      var row = found.closest("tr");
      found = row ? row.querySelector("button.move:not([disabled])") : null;
    }
    if (!found && key) {
      var moved = rowByKey(key);
      found = moved ? moved.querySelector("button.move:not([disabled])") : null;
    }
    if (!found) {
      found = work.querySelector(".notice") || work;
      found.setAttribute("tabindex", "-1");
    }
    found.focus();
  }

  // Ticks and words typed in the curation form and not saved yet survive a move.
  function unsaved() {
    var kept = [];
    var form = work.querySelector("form[data-curation]");
    if (!form) { return kept; }
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.type === "checkbox" && field.checked !== field.defaultChecked) {
        kept.push({ name: field.name, value: field.value, checked: field.checked });
      } else if ((field.type === "text" || field.tagName === "TEXTAREA") &&
                 field.value !== field.defaultValue) {
        kept.push({ id: field.id, text: field.value });
      }
    });
    return kept;
  }

  function reapply(kept) {
    var form = work.querySelector("form[data-curation]");
    if (!form) { return; }
    kept.forEach(function (field) {
      if (field.id) {
        var box = document.getElementById(field.id);
        if (box) { box.value = field.text; }
        return;
      }
      var tick = form.querySelector("input[type='checkbox'][name='" + CSS.escape(field.name) +
                                    "'][value='" + CSS.escape(field.value) + "']");
      if (tick) { tick.checked = field.checked; }
    });
  }

  function say(text) {
    live.textContent = "";
    // A new text in the live region is what screen readers announce.
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function post(action, body, focus, key, keep) {
    if (busy) { return Promise.resolve(); }
    busy = true;
    work.setAttribute("aria-busy", "true");
    var kept = keep ? unsaved() : [];
    return fetch(target(action), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "Accept": "text/html" },
    }).then(function (response) {
      if (!response.headers.get("X-Digest-Fragment")) {
        // Not the answer we asked for (signed out, a stale token, an error): load the page
        // again, which shows the login or the state the server is in.
        window.location.reload();
        return;
      }
      return response.text().then(function (html) {
        work.innerHTML = html;
        reapply(kept);
        // A live region put into the page with its text is not announced everywhere: the
        // region that stays on the page says it (the notice keeps its role, as without us).
        var notice = work.querySelector(".notice[role]");
        if (notice) { say(notice.textContent.replace(/\s+/g, " ").trim()); }
        var invalid = work.querySelector("[aria-invalid='true']");
        if (invalid) {
          invalid.focus();
          var error = work.querySelector("p.error");
          if (error) { say(error.textContent.trim()); }
        } else {
          restore(focus, key);
        }
      });
    }).catch(function () {
      window.location.reload();
    }).finally(function () {
      busy = false;
      work.removeAttribute("aria-busy");
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-enhance") || !work.contains(form)) { return; }
    event.preventDefault();
    var submitter = event.submitter || null;
    var body = new URLSearchParams(new FormData(form));
    if (submitter && submitter.name) { body.append(submitter.name, submitter.value); }
    post(form.action, body, remember(submitter || document.activeElement), null,
         !form.hasAttribute("data-curation"));
  });

  // Drag and drop: a row goes before (upper half) or after (lower half) the row it is
  // dropped on, in its own section; the ↑ and ↓ buttons do the same from the keyboard.
  function rowOf(node) {
    var row = node && node.closest ? node.closest(ROWS) : null;
    return row && work.contains(row) ? row : null;
  }

  function prepare() {
    work.querySelectorAll(ROWS).forEach(function (row) {
      row.setAttribute("draggable", "true");
    });
  }

  function clearMarks() {
    work.querySelectorAll(".drop-before, .drop-after").forEach(function (row) {
      row.classList.remove("drop-before", "drop-after");
    });
  }

  work.addEventListener("dragstart", function (event) {
    var row = rowOf(event.target);
    if (!row || busy) { return; }
    dragged = row;
    row.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", keyOf(row));
  });

  work.addEventListener("dragover", function (event) {
    var row = rowOf(event.target);
    if (!dragged || !row || row.parentNode !== dragged.parentNode) { return; }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    var box = row.getBoundingClientRect();
    clearMarks();
    if (row !== dragged) {
      row.classList.add(event.clientY < box.top + box.height / 2 ? "drop-before" : "drop-after");
    }
  });

  work.addEventListener("drop", function (event) {
    var row = rowOf(event.target);
    if (!dragged || !row || row.parentNode !== dragged.parentNode) { return; }
    event.preventDefault();
    var box = row.getBoundingClientRect();
    var after = event.clientY >= box.top + box.height / 2;
    var moving = dragged;
    clearMarks();
    if (row === moving) { return; }
    row.parentNode.insertBefore(moving, after ? row.nextSibling : row);
    var rows = Array.prototype.slice.call(row.parentNode.querySelectorAll(ROWS));
    var place = rows.indexOf(moving) + 1;
    var form = document.getElementById("move-form");
    var body = new URLSearchParams(new FormData(form));
    var key = keyOf(moving);
    body.append("key", key);
    body.append("to", String(place));
    post(form.action, body, null, key, true);
  });

  work.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
    clearMarks();
  });

  new MutationObserver(prepare).observe(work, { childList: true });
  prepare();
  document.documentElement.classList.add("desk-enhanced");
})();
