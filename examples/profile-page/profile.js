/**
 * Profile page: lets the signed-in person change their own name and phone through village-edge.
 *
 * Demo configuration, read from the URL fragment and then removed from the address bar:
 *   #api=<village-edge URL>&token=<the user's JWT, or a token bound to this page's origin>
 *   [&email=<whose record>]  (default: the JWT's `email` claim; the Worker refuses anyone else's)
 * A real app gets the JWT from its identity provider's SDK. The token lives in memory only.
 * Everything shown comes from the Worker's answer: `errors[]` of problem+json next to the
 * fields, `detail` and the `X-Request-Id` below the form.
 */
const FIELDS = ["first_name", "last_name", "phone_number"];

const form = document.getElementById("profile");
const save = document.getElementById("save");
const statusLine = document.getElementById("status");
const requestIdLine = document.getElementById("request-id");
const signedIn = document.getElementById("signed-in");

/** Reads the demo configuration and wipes it from the address bar and history. */
function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return { api: params.get("api"), token: params.get("token"), email: params.get("email") };
}

/** The `email` claim of a JWT, read only to know whose record to edit: the Worker verifies it. */
function emailFromJwt(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims.email === "string" ? claims.email : null;
  } catch {
    return null;
  }
}

function showStatus(state, message, requestId) {
  statusLine.dataset.state = state;
  statusLine.textContent = message;
  if (requestId !== undefined) requestIdLine.textContent = requestId ?? "–";
}

function clearFieldErrors() {
  for (const field of FIELDS) {
    document.getElementById(`${field}-error`).textContent = "";
    form.elements[field].removeAttribute("aria-invalid");
  }
}

/** Puts each field error next to its input; returns the messages that belong to no input. */
function showFieldErrors(errors) {
  const unplaced = [];
  for (const error of Array.isArray(errors) ? errors : []) {
    const field = FIELDS.find((f) => f === error.field || error.pointer === `/${f}`);
    if (field) {
      const slot = document.getElementById(`${field}-error`);
      slot.textContent = slot.textContent ? `${slot.textContent} ${error.detail}` : String(error.detail);
      form.elements[field].setAttribute("aria-invalid", "true");
    } else {
      unplaced.push(error.field ? `${error.field}: ${error.detail}` : String(error.detail));
    }
  }
  return unplaced;
}

async function submit(api, token, email) {
  clearFieldErrors();
  const changes = {};
  for (const field of FIELDS) {
    const value = form.elements[field].value;
    if (value.trim() !== "") changes[field] = value;
  }
  if (Object.keys(changes).length === 0) {
    showStatus("error", "Nothing to change: fill in at least one field.");
    return;
  }
  save.disabled = true;
  showStatus("sending", "Saving…");
  let res;
  try {
    res = await fetch(`${api}/users/${encodeURIComponent(email)}`, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify(changes),
    });
  } catch {
    // The browser hides why: offline, or this page's origin is not allowed by the Worker (CORS).
    showStatus(
      "network-error",
      "The service could not be reached (network error, or this site is not allowed to call it).",
      null,
    );
    return;
  } finally {
    save.disabled = false;
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const requestId = res.headers.get("X-Request-Id") ?? body?.instance ?? null;
  statusLine.dataset.http = String(res.status);
  if (res.ok) {
    form.reset();
    showStatus(
      "saved",
      "Saved. Village has queued the change; it may take a moment to show everywhere.",
      requestId,
    );
    return;
  }
  const unplaced = showFieldErrors(body?.errors);
  const detail = typeof body?.detail === "string" ? body.detail : `The change failed (HTTP ${res.status}).`;
  showStatus("error", [detail, ...unplaced].join(" "), requestId);
}

function start() {
  const { api, token, email: given } = readFragment();
  let base = null;
  try {
    const url = new URL(api ?? "");
    if (url.protocol === "https:" || url.protocol === "http:") base = url.href.replace(/\/+$/, "");
  } catch {
    base = null;
  }
  const email = given ?? (token ? emailFromJwt(token) : null);
  if (!base || !token || !email) {
    showStatus(
      "error",
      "Not signed in: open this page with #api=…&token=… (and &email=… for a non-JWT token).",
    );
    return;
  }
  signedIn.textContent = `Editing the record of ${email}.`;
  signedIn.dataset.email = email;
  save.disabled = false;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void submit(base, token, email);
  });
}

start();
