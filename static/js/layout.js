// The top bar's menu on narrow screens, and the labels that let tables stack on them.
// Without this script the menu is a plain list and a wide table scrolls in its own box.
document.documentElement.classList.add("js");

function setMenu(toggle, open) {
  toggle.setAttribute("aria-expanded", String(open));
  document.getElementById(toggle.getAttribute("aria-controls")).classList.toggle("open", open);
}

document.addEventListener("click", (event) => {
  const toggle = event.target.closest(".menu-toggle");
  if (toggle) setMenu(toggle, toggle.getAttribute("aria-expanded") !== "true");
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const toggle = document.querySelector('.menu-toggle[aria-expanded="true"]');
  if (!toggle) return;
  setMenu(toggle, false);
  toggle.focus();
});

// Each body cell gets its column's heading as data-label, shown before it once the
// rows stack; a cell spanning columns takes the first one's.
function labelTable(table) {
  const headerRow = table.tHead ? table.tHead.rows[0] : null;
  if (!headerRow) return;
  const names = [];
  for (const th of headerRow.cells) {
    for (let i = 0; i < th.colSpan; i += 1) names.push(th.textContent.trim());
  }
  for (const body of table.tBodies) {
    for (const row of body.rows) {
      let column = 0;
      for (const cell of row.cells) {
        const name = names[column];
        if (name && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", name);
        // A stacked row shows no heading over nothing.
        if (!cell.textContent.trim() && !cell.querySelector("input, select, button, img, svg")) {
          cell.classList.add("empty-cell");
        }
        column += cell.colSpan;
      }
    }
  }
  table.classList.add("stacks");
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("main table").forEach(labelTable);
});
