// parley's dashboard works without this script; it only saves a click: a preset
// picked in the range menu applies at once, and the custom dates show only for a
// custom range.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("range-form");
  if (!form) return;
  const range = form.querySelector("select[name=range]");
  const dates = form.querySelector(".dates");
  const sync = () => { if (dates) dates.hidden = range.value !== "custom"; };
  sync();
  range.addEventListener("change", () => {
    sync();
    if (range.value !== "custom") form.submit();
  });
});
