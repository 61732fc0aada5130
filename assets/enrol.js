// The enrolment link carries its token in the fragment (#token=...), which
// no server and no Referer sees: put it in the form, then drop it from the
// address bar.
document.addEventListener("DOMContentLoaded", function () {
  var found = /token=([0-9a-fA-F]+)/.exec(location.hash);
  var field = document.getElementById("token");
  if (found && field && !field.value) {
    field.value = found[1];
    history.replaceState(null, "", location.pathname);
  }
});
