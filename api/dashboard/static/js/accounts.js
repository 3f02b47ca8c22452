// #/accounts — the TikTok and Instagram accounts tasks can run as: list, filter, add, remove.

import { api, listAll } from "./api.js";
import { attempt, clear, confirmAction, field, h, routeQuery, routeTo, select, showInfo } from "./ui.js";

const FILTERS = ["platform", "device", "logined", "status", "tag", "username"];
const PAGE_SIZE = 50;

export function renderAccounts(view) {
  const query = routeQuery();
  const filters = {};
  for (const name of FILTERS) if (query[name]) filters[name] = query[name];
  const page = Math.max(1, Number.parseInt(query.page || "1", 10) || 1);
  let disposed = false;

  const serials = h("datalist", { id: "account-serials" });
  const filterForm = h(
    "form",
    {
      class: "filters",
      id: "account-filters",
      onchange: () => apply(),
      onsubmit: (event) => {
        event.preventDefault();
        apply();
      },
    },
    field("Username", h("input", { name: "username", value: filters.username || "", placeholder: "exact name" })),
    field("Platform", select("platform", [["", "any"], ["tiktok", "TikTok"], ["instagram", "Instagram"]], filters.platform)),
    field("Device", h("input", { name: "device", value: filters.device || "", list: "account-serials", placeholder: "serial" })),
    field("Logged in", select("logined", [["", "any"], ["1", "yes"], ["0", "no"]], filters.logined)),
    field("Status", select("status", [["", "any"], ["0", "enabled"], ["1", "disabled"]], filters.status)),
    field("Tag", h("input", { name: "tag", value: filters.tag || "" })),
    serials,
  );

  function apply() {
    const data = new FormData(filterForm);
    const next = {};
    for (const name of FILTERS) next[name] = String(data.get(name) || "").trim();
    routeTo("/accounts", next);
  }

  // --- add ---
  const addForm = h(
    "form",
    { class: "form", id: "account-add", novalidate: true, onsubmit: (event) => add(event) },
    h(
      "div",
      { class: "fields" },
      field("Username", h("input", { name: "username", required: true, autocomplete: "off" })),
      field("Platform", select("platform", [["tiktok", "TikTok"], ["instagram", "Instagram"]], "tiktok")),
      field("Device", h("input", { name: "device", list: "account-serials", placeholder: "serial of the phone it is on" })),
      field("Email", h("input", { name: "email", type: "email", autocomplete: "off" })),
      field("Password", h("input", { name: "password", type: "password", autocomplete: "new-password" })),
      field("Clone app package", h("input", { name: "packagename", placeholder: "default app" })),
      field("Tags", h("input", { name: "tags", placeholder: "comma-separated" })),
      field("Status", select("status", [["0", "enabled"], ["1", "disabled"]], "0")),
      h("label", { class: "inline" }, h("input", { type: "checkbox", name: "logined", checked: true }), "logged in on the device"),
    ),
    h("div", {}, h("button", { class: "button primary", type: "submit" }, "Add account")),
  );

  async function add(event) {
    event.preventDefault();
    const data = new FormData(addForm);
    const text = (name) => String(data.get(name) || "").trim();
    const body = {
      username: text("username"),
      platform: text("platform"),
      logined: data.get("logined") ? 1 : 0,
      status: Number(text("status") || "0"),
      tags: text("tags") ? text("tags").split(",").map((t) => t.trim()).filter(Boolean) : [],
    };
    for (const name of ["device", "email", "password", "packagename"]) if (text(name)) body[name] = text(name);
    const created = await attempt(() => api("POST", "/accounts", { body }));
    if (created) {
      showInfo(`Account @${created.username} (${created.platform}) added`);
      addForm.reset();
      load();
    }
  }

  // --- list ---
  const tbody = h("tbody");
  const pager = h("div", { class: "pager" });
  const table = h(
    "table",
    { class: "data cards", id: "accounts-table" },
    h("thead", {}, h("tr", {}, ["Username", "Platform", "Device", "Logged in", "Status", "Tags", ""].map((t) => h("th", {}, t)))),
    tbody,
  );

  function row(account) {
    return h(
      "tr",
      { dataset: { accountId: String(account.id), username: account.username } },
      h("td", { "data-label": "Username" }, h("strong", {}, `@${account.username}`), account.email ? h("div", { class: "muted" }, account.email) : null),
      h("td", { "data-label": "Platform" }, account.platform, account.packagename ? h("div", { class: "muted mono" }, account.packagename) : null),
      h(
        "td",
        { "data-label": "Device" },
        account.device
          ? [
              h("span", { class: "mono" }, account.device),
              " ",
              h("span", { class: `badge ${account.device_online ? "online" : "offline"}` }, account.device_online ? "online" : "offline"),
              account.device_name ? h("div", { class: "muted" }, account.device_name) : null,
            ]
          : h("span", { class: "muted" }, "—"),
      ),
      h("td", { "data-label": "Logged in" }, account.logined ? "yes" : "no"),
      h("td", { "data-label": "Status" }, account.status === 0 ? "enabled" : "disabled"),
      h("td", { "data-label": "Tags" }, account.tags.length ? account.tags.join(", ") : h("span", { class: "muted" }, "—")),
      h(
        "td",
        { class: "actions", "data-label": "" },
        h(
          "button",
          {
            class: "button danger small",
            type: "button",
            dataset: { action: "remove" },
            onclick: async () => {
              if (!(await confirmAction(`Remove @${account.username} (${account.platform})? Its tasks stay.`, "Remove"))) return;
              const done = await attempt(() => api("DELETE", `/accounts/${account.id}`));
              if (done !== undefined) {
                showInfo(`Account @${account.username} removed`);
                load();
              }
            },
          },
          "Remove",
        ),
      ),
    );
  }

  async function load() {
    const data = await attempt(() => api("GET", "/accounts", { query: { ...filters, page, page_size: PAGE_SIZE } }));
    if (!data || disposed) return;
    clear(tbody, data.accounts.map(row));
    if (!data.accounts.length) tbody.append(h("tr", {}, h("td", { colspan: 7, class: "empty", "data-label": "" }, "No accounts match.")));
    const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
    clear(
      pager,
      h("span", { class: "muted" }, `${data.total} account${data.total === 1 ? "" : "s"} · page ${page} of ${pages}`),
      h("button", { class: "button small", type: "button", disabled: page <= 1, onclick: () => routeTo("/accounts", { ...filters, page: page - 1 }) }, "‹ Previous"),
      h("button", { class: "button small", type: "button", disabled: page >= pages, onclick: () => routeTo("/accounts", { ...filters, page: page + 1 }) }, "Next ›"),
    );
  }

  clear(
    view,
    h("div", { class: "toolbar" }, h("h1", {}, "Accounts")),
    h("details", { class: "add panel padded" }, h("summary", {}, "Add an account"), addForm),
    h("div", { class: "panel-gap" }),
    filterForm,
    h("div", { class: "panel" }, h("div", { class: "table-wrap" }, table), pager),
  );
  load();
  listAll("/devices", "devices")
    .then((devices) => {
      if (!disposed) clear(serials, devices.map((d) => h("option", { value: d.serial }, d.model || "")));
    })
    .catch(() => {});

  return () => {
    disposed = true;
  };
}
