// The correction notice's 打印 button (kept out of the page: the CSP allows no inline script).

document.getElementById("print-notice")?.addEventListener("click", () => window.print());
