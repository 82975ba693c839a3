// Behaviour the pages once wrote inline, which the Content-Security-Policy forbids:
// a button with data-confirm asks before it submits; a select with data-autosubmit
// submits its form when it changes.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
});
