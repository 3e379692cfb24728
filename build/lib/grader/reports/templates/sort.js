// Sorts a table.sortable by the column whose header is clicked (or focused and Enter).
function sortTable(table, header, column) {
  var ascending = header.getAttribute("aria-sort") !== "ascending";
  Array.prototype.forEach.call(header.parentNode.cells, function (cell) { cell.removeAttribute("aria-sort"); });
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[column].getAttribute("data-sort"), y = b.cells[column].getAttribute("data-sort");
    var order = (x !== "" && y !== "" && !isNaN(x) && !isNaN(y)) ? Number(x) - Number(y) : x.localeCompare(y);
    return ascending ? order : -order;
  });
  rows.forEach(function (row) { body.appendChild(row); });
}
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headers = table.tHead.rows[table.tHead.rows.length - 1].cells;
  Array.prototype.forEach.call(headers, function (header, column) {
    header.tabIndex = 0;
    header.title = "Sort by this column";
    header.addEventListener("click", function () { sortTable(table, header, column); });
    header.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { sortTable(table, header, column); }
    });
  });
});
