// The case page's "move to state" form (kept out of the page: the CSP allows no inline script).

const form = /** @type {HTMLFormElement | null} */ (document.getElementById("move"));
if (form) {
  form.onsubmit = async (event) => {
    event.preventDefault();
    if (!form.to.value) {
      document.getElementById("move-error").textContent = form.dataset.choose || "";
      form.to.focus();
      return;
    }
    const response = await fetch(`/api/v1/cases/${form.dataset.number}/transitions`, {
      method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({to: form.to.value, reason: form.reason.value}),
    });
    if (response.ok) location.reload();
    else {
      // The catalog's words for the error code, never the server's English message.
      const code = (await response.json()).error.code;
      const messages = JSON.parse(form.dataset.errors || "{}");
      document.getElementById("move-error").textContent = messages[code] || messages[""];
    }
  };
}
