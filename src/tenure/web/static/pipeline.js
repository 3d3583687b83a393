// The pipeline board: drag a card onto a stage's column (HTML5 drag and drop) to move it
// there; the move is posted and the board (cards and totals) is replaced by the answer.
(() => {
  let dragged = null;

  const columnOf = (target) => (target instanceof Element ? target.closest("[data-stage]") : null);

  document.addEventListener("dragstart", (event) => {
    const card = event.target instanceof Element ? event.target.closest("[data-opportunity]") : null;
    if (!card) return;
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.opportunity);
    card.classList.add("dragging");
  });

  document.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
  });

  document.addEventListener("dragover", (event) => {
    const column = columnOf(event.target);
    if (!column || !dragged) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    document.querySelectorAll(".board-column.drop-target").forEach((c) => c.classList.remove("drop-target"));
    column.classList.add("drop-target");
  });

  document.addEventListener("drop", async (event) => {
    const column = columnOf(event.target);
    const board = document.getElementById("board");
    if (!column || !dragged || !board) return;
    event.preventDefault();
    const card = dragged;
    const others = [...column.querySelectorAll("[data-opportunity]")].filter((c) => c !== card);
    let position = others.length;
    for (let i = 0; i < others.length; i += 1) {
      const box = others[i].getBoundingClientRect();
      if (event.clientY < box.top + box.height / 2) {
        position = i;
        break;
      }
    }
    board.setAttribute("aria-busy", "true");
    const body = new URLSearchParams({
      opportunity_id: card.dataset.opportunity,
      stage_id: column.dataset.stage,
      position: String(position),
      owner_id: board.dataset.owner || "",
    });
    const response = await fetch("/pipeline/move", {
      method: "POST",
      headers: { "X-CSRF-Token": board.dataset.csrf },
      body,
      credentials: "same-origin",
    });
    if (response.ok) {
      board.outerHTML = await response.text();
    } else {
      window.location.reload();
    }
  });
})();
