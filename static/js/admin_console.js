// The staff console on top of Django's admin scripts: accessibility fixes axe-core asks for.
// Django's two-list selector (filter_horizontal) names its search icon with aria-label on
// a bare span, which ARIA forbids; as an image the name is allowed and read out.
function nameIcons(root) {
  root.querySelectorAll(".help-tooltip[aria-label]:not([role])").forEach((icon) => {
    icon.setAttribute("role", "img");
  });
}

new MutationObserver((changes) => {
  for (const change of changes) {
    for (const node of change.addedNodes) {
      if (node.nodeType === Node.ELEMENT_NODE) nameIcons(node.parentElement || node);
    }
  }
}).observe(document.documentElement, { childList: true, subtree: true });
