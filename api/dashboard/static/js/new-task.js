// #/tasks/new — create tasks for chosen devices or accounts. Tasks made here carry source "ui".
// The post script's form has every field of TikMatrix's table; the api validates them all and the
// form shows its message when one is wrong.

import { api, listAll } from "./api.js";
import { attempt, clear, field, h, routeQuery, routeTo, select, showError, showInfo } from "./ui.js";

const number = (name, value, min, max, props = {}) =>
  h("input", { name, type: "number", value: String(value), min: String(min), max: String(max), step: "1", ...props });

function postFields() {
  return h(
    "fieldset",
    { dataset: { script: "post" } },
    h("legend", {}, "Post"),
    h(
      "div",
      { class: "fields" },
      field("Platform", select("platform", [["", "auto (the account's)"], ["tiktok", "TikTok"], ["instagram", "Instagram"]], "")),
      field("Content type", select("content_type", [["0", "video"], ["1", "images"]], "0")),
      field("Image count", number("image_count", 1, 1, 35)),
      field("Captions", h("textarea", { name: "captions", rows: 3, placeholder: "{Hi|Hello} title##description #tag" }), { class: "wide" }),
      field("Material files (one per line)", h("textarea", { name: "material_list", rows: 3, placeholder: "/srv/media/clip.mp4" }), { class: "wide" }),
      field("Material source", select("material_source", [["materialLibrary", "material library"], ["localFolder", "local folder"]], "materialLibrary")),
      field("Material folder", h("input", { name: "material_path", placeholder: "for local folder" })),
      field("Material tags", h("input", { name: "materials_tags", placeholder: "comma-separated" })),
      field("Post way", select("post_way", [["share", "share"], ["addButton", "add button"], ["useSound", "use sound"]], "share")),
      field("Upload wait (s)", number("upload_wait_time", 30, 0, 3600)),
      field("Sound wait (s)", number("sound_wait_time", 10, 0, 600)),
      field("Add sound", select("add_sound", [["-1", "default"], ["0", "off"], ["1", "on"], ["custom", "custom"]], "-1")),
      field("Sound name", h("input", { name: "sound_name" })),
      field("Custom sound keyword", h("input", { name: "custom_sound_keyword" })),
      field("Original sound volume", number("origin_sound_volume", 50, 0, 100)),
      field("Added sound volume", number("add_sound_volume", 50, 0, 100)),
      field("Product link (TikTok)", select("add_product_link", [["0", "no"], ["1", "yes"]], "0")),
      field("Placement (Instagram)", select("placement", [["reel", "reel"], ["story", "story"]], "reel")),
    ),
  );
}

function noopFields() {
  return h(
    "fieldset",
    { dataset: { script: "noop" } },
    h("legend", {}, "Noop"),
    h(
      "div",
      { class: "fields" },
      field("Duration (s)", h("input", { name: "duration", type: "number", value: "0", min: "0", max: "3600", step: "any" })),
      field("Fail with (remark)", h("input", { name: "fail_with", placeholder: "empty: succeed" })),
    ),
  );
}

function postConfig(data) {
  const text = (name) => String(data.get(name) ?? "");
  const int = (name) => {
    const raw = text(name).trim();
    // Sent as typed (the api's types are strict): a bad value comes back with its field named.
    return raw === "" ? null : Number(raw);
  };
  const config = {
    content_type: int("content_type"),
    image_count: int("image_count"),
    captions: text("captions"),
    post_way: text("post_way"),
    material_source: text("material_source"),
    material_path: text("material_path").trim(),
    material_list: text("material_list").split("\n").map((line) => line.trim()).filter(Boolean),
    materials_tags: text("materials_tags").trim(),
    upload_wait_time: int("upload_wait_time"),
    sound_wait_time: int("sound_wait_time"),
    add_sound: text("add_sound"),
    sound_name: text("sound_name"),
    custom_sound_keyword: text("custom_sound_keyword"),
    origin_sound_volume: int("origin_sound_volume"),
    add_sound_volume: int("add_sound_volume"),
    add_product_link: int("add_product_link"),
    placement: text("placement"),
  };
  if (text("platform")) config.platform = text("platform");
  // A number left empty takes the script's default.
  for (const [name, value] of Object.entries(config)) if (value === null) delete config[name];
  return config;
}

function noopConfig(data) {
  const config = { duration: Number(String(data.get("duration") || "0")) };
  const failWith = String(data.get("fail_with") || "").trim();
  if (failWith) config.fail_with = failWith;
  return config;
}

// A list of checkboxes with a filter box; `items` are {value, label, detail}.
function checklist(name, items, preselected) {
  const filter = h("input", { type: "search", placeholder: "filter", "aria-label": `Filter ${name}` });
  const list = h(
    "div",
    { class: "checklist", dataset: { list: name } },
    items.length
      ? items.map((item) =>
          h(
            "label",
            { class: "inline", dataset: { value: item.value } },
            h("input", { type: "checkbox", name, value: item.value, checked: preselected.has(item.value) }),
            h("span", {}, item.label),
            h("span", { class: "detail" }, item.detail),
          ),
        )
      : h("p", { class: "muted" }, "None known yet."),
  );
  filter.addEventListener("input", () => {
    const needle = filter.value.trim().toLowerCase();
    for (const label of list.querySelectorAll("label")) {
      label.classList.toggle("hidden", needle !== "" && !label.textContent.toLowerCase().includes(needle));
    }
  });
  const setVisible = (checked) => {
    for (const label of list.querySelectorAll("label:not(.hidden) input")) label.checked = checked;
  };
  const tools = h(
    "div",
    { class: "checklist-tools" },
    filter,
    h("button", { class: "button small", type: "button", onclick: () => setVisible(true) }, "Select shown"),
    h("button", { class: "button small", type: "button", onclick: () => setVisible(false) }, "Clear"),
  );
  return h("div", {}, tools, list);
}

export function renderNewTask(view) {
  const query = routeQuery();
  const preselected = new Set(query.serial ? [query.serial] : []);
  let disposed = false;

  const devicesBox = h("div", { dataset: { targets: "serials" } }, h("p", { class: "muted" }, "Loading devices…"));
  const accountsBox = h("div", { dataset: { targets: "usernames" }, class: "hidden" }, h("p", { class: "muted" }, "Loading accounts…"));
  const multi = h("label", { class: "inline" }, h("input", { type: "checkbox", name: "enable_multi_account" }), "every account on each chosen phone (one task each, in turn)");
  const post = postFields();
  const noop = noopFields();
  noop.classList.add("hidden");

  const form = h(
    "form",
    { class: "form", id: "new-task-form", novalidate: true, onsubmit: (event) => submit(event) },
    h(
      "fieldset",
      {},
      h("legend", {}, "Run on"),
      h(
        "div",
        { class: "segmented", role: "radiogroup" },
        h("label", {}, h("input", { type: "radio", name: "mode", value: "serials", checked: true }), "Devices"),
        h("label", {}, h("input", { type: "radio", name: "mode", value: "usernames" }), "Accounts"),
      ),
      h("div", { class: "panel-gap" }),
      devicesBox,
      accountsBox,
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Script"),
      h(
        "div",
        { class: "fields" },
        field("Script", select("script_name", [["post", "post: publish"], ["noop", "noop: test run"]], "post")),
        field("Start at (HH:MM, server time)", h("input", { name: "start_time", type: "time", step: "60" })),
        h("div", { class: "wide" }, multi),
      ),
    ),
    post,
    noop,
    h(
      "div",
      { class: "toolbar" },
      h("button", { class: "button primary", type: "submit", id: "create-tasks" }, "Create tasks"),
      h("a", { class: "button ghost", href: "#/tasks" }, "Cancel"),
    ),
  );

  form.addEventListener("change", (event) => {
    if (event.target.name === "mode") {
      const byDevice = event.target.value === "serials";
      devicesBox.classList.toggle("hidden", !byDevice);
      accountsBox.classList.toggle("hidden", byDevice);
      multi.classList.toggle("hidden", !byDevice);
    }
    if (event.target.name === "script_name") {
      post.classList.toggle("hidden", event.target.value !== "post");
      noop.classList.toggle("hidden", event.target.value !== "noop");
    }
  });

  async function submit(event) {
    event.preventDefault();
    const data = new FormData(form);
    const mode = String(data.get("mode"));
    const scriptName = String(data.get("script_name"));
    const body = {
      script_name: scriptName,
      script_config: scriptName === "post" ? postConfig(data) : noopConfig(data),
      source: "ui",
    };
    const targets = data.getAll(mode).map(String);
    body[mode] = targets;
    if (mode === "serials" && data.get("enable_multi_account")) body.enable_multi_account = true;
    const startTime = String(data.get("start_time") || "");
    if (startTime) body.start_time = startTime.slice(0, 5);
    const button = form.querySelector("#create-tasks");
    button.disabled = true;
    try {
      const created = await attempt(() => api("POST", "/task", { body }));
      if (created) {
        const ids = created.task_ids;
        showInfo(`Created ${created.created_count} task${created.created_count === 1 ? "" : "s"}: ${ids.map((id) => `#${id}`).join(", ")}`);
        routeTo("/tasks");
      }
    } finally {
      button.disabled = false;
    }
  }

  clear(view, h("div", { class: "toolbar" }, h("h1", {}, "New task")), form);

  listAll("/devices", "devices")
    .then((devices) => {
      if (disposed) return;
      const items = devices.map((d) => ({
        value: d.serial,
        label: d.serial,
        detail: ` ${d.model || ""} · ${d.hub || "no hub"} · ${d.online ? (d.busy ? "busy" : "idle") : "offline"}`,
      }));
      clear(devicesBox, checklist("serials", items, preselected));
    })
    .catch((error) => {
      if (!disposed && error.code !== 40101) showError(error);
    });
  listAll("/accounts", "accounts")
    .then((accounts) => {
      if (disposed) return;
      const items = accounts.map((a) => ({
        value: a.username,
        label: `@${a.username}`,
        detail: ` ${a.platform} · ${a.device || "no device"}${a.status === 1 ? " · disabled" : ""}`,
      }));
      clear(accountsBox, checklist("usernames", items, new Set()));
    })
    .catch((error) => {
      if (!disposed && error.code !== 40101) showError(error);
    });

  return () => {
    disposed = true;
  };
}
