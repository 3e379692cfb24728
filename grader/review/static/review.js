// Keyboard grading: j/k move between answers, a digit toggles that rubric item on the current
// answer, c jumps to its comment. The current answer is kept across the page's reloads.
(function () {
  "use strict";
  function answers() { return Array.from(document.querySelectorAll("article.answer")); }
  function current() { return document.querySelector("article.answer.current"); }
  function select(article) {
    if (!article) { return; }
    answers().forEach(function (other) { other.classList.remove("current"); });
    article.classList.add("current");
    article.scrollIntoView({ block: "center" });
    sessionStorage.setItem("review-current", article.id);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var wanted = decodeURIComponent(location.hash.slice(1)) || sessionStorage.getItem("review-current");
    var found = wanted ? document.getElementById(wanted) : null;
    select(found || answers()[0]);
    answers().forEach(function (article) {
      article.addEventListener("click", function () { select(article); });
    });
  });
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var list = answers();
    var index = list.indexOf(current());
    if (event.key === "j") { select(list[Math.min(index + 1, list.length - 1)]); event.preventDefault(); }
    else if (event.key === "k") { select(list[Math.max(index - 1, 0)]); event.preventDefault(); }
    else if (event.key === "c" && current()) { current().querySelector("textarea").focus(); event.preventDefault(); }
    else if (/^[1-9]$/.test(event.key) && current()) {
      var button = current().querySelector('button.item[data-key="' + event.key + '"]');
      if (button) { button.click(); event.preventDefault(); }
    }
  });
}());
