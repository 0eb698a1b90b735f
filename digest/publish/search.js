// The archive's search on a static host: reads search.json (built by `digest publish`)
// and lists the items whose title or summary holds every word of ?q=, ignoring case and
// accents, as digest/publish/search.py does on the server. No dependencies, no tracking.
(function () {
  "use strict";
  var box = document.getElementById("results");
  var query = new URLSearchParams(window.location.search).get("q") || "";
  if (!box || !query.trim()) { return; }
  function fold(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }
  var words = fold(query).split(/\s+/).filter(Boolean);
  fetch(box.getAttribute("data-index"), { credentials: "omit" })
    .then(function (response) { return response.json(); })
    .then(function (items) {
      var found = items.filter(function (item) {
        var text = fold(item.title + " " + item.summary);
        return words.every(function (word) { return text.indexOf(word) !== -1; });
      }).slice(0, 100);
      box.textContent = "";
      if (!found.length) {
        var none = document.createElement("p");
        none.textContent = box.getAttribute("data-none");
        box.appendChild(none);
        return;
      }
      var list = document.createElement("ol");
      list.className = "results";
      found.forEach(function (item) {
        var entry = document.createElement("li");
        var link = document.createElement("a");
        link.href = item.url;
        link.textContent = item.title;
        entry.appendChild(link);
        entry.appendChild(document.createElement("br"));
        var meta = document.createElement("span");
        meta.className = "meta";
        var issue = document.createElement("a");
        issue.href = item.issue_url;
        issue.textContent = box.getAttribute("data-in").replace("{n}", item.number);
        meta.appendChild(issue);
        meta.appendChild(document.createTextNode(" · " + item.day));
        entry.appendChild(meta);
        if (item.summary) {
          entry.appendChild(document.createElement("br"));
          entry.appendChild(document.createTextNode(item.summary));
        }
        list.appendChild(entry);
      });
      box.appendChild(list);
    })
    .catch(function () { box.textContent = box.getAttribute("data-none"); });
  var input = document.getElementById("q");
  if (input) { input.value = query; }
}());
