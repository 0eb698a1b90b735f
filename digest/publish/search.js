// The archive's search on a static host: reads search.json (built by `digest publish`)
// and the parts it names, and lists the items whose title or summary holds every word of
// ?q=, ignoring case and accents, as digest/publish/search.py does on the server. No dependencies, no tracking.
(function () {
  "use strict";
  var box = document.getElementById("results");
  var query = new URLSearchParams(window.location.search).get("q") || "";
  if (!box || !query.trim()) { return; }
  function fold(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }
  var words = fold(query).split(/\s+/).filter(Boolean);
  var indexUrl = new URL(box.getAttribute("data-index"), window.location.href);
  function load(url) {
    return fetch(url, { credentials: "omit" }).then(function (response) {
      if (!response.ok) { throw new Error(response.status); }
      return response.json();
    });
  }
  // search.json holds the newest issues' items and names the parts with the older ones.
  load(indexUrl)
    .then(function (index) {
      if (Array.isArray(index)) { return [index]; }
      var parts = (index.parts || []).filter(function (name) {
        return /^search-[0-9]+\.json$/.test(name);
      }).map(function (name) { return load(new URL(name, indexUrl)); });
      return Promise.all([index.items || []].concat(parts));
    })
    .then(function (lists) {
      var seen = {};
      var found = [];
      lists.forEach(function (items) {
        items.forEach(function (item) {
          var id = item.title + "\u001f" + item.url;
          if (seen[id]) { return; }  // the newest record of a story only
          seen[id] = true;
          var text = fold(item.title + " " + item.summary);
          if (found.length < 100 &&
              words.every(function (word) { return text.indexOf(word) !== -1; })) {
            found.push(item);
          }
        });
      });
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
