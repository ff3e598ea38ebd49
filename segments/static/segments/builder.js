// The segment builder: the rule document as nested groups of conditions, previewed on every edit by
// POST /api/segments/dry-run, and saved through POST /api/segments or PATCH /api/segments/<id>.
// The document itself is the state; every input carries the JSON path of the value it edits, so the
// server's problems (`problems[].path`) land on the input they name. The server does all checking.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("builder-config").textContent);
  const DRY_RUN_DELAY_MS = 350;
  const OPS = {
    gt: "is more than", gte: "is at least", lt: "is less than", lte: "is at most", eq: "is", neq: "is not",
    between: "is between", before: "is before", after: "is after", within_last_days: "is within the last (days)",
    in: "is one of", not_in: "is none of", is: "is",
  };
  const FAMILIES = {purchase: "Purchase", engagement: "Engagement", browsing: "Browsing (storefront)", timing: "Timing",
                    benefits: "Benefits sought and channel", predictions: "Predictions (per customer)"};
  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December"];
  const WINDOWS = {"": "All time", last_days: "In the last … days", between: "Between dates", months: "In months",
    holiday: "During a holiday"};
  const INTEGER_TYPES = new Set(["count", "days", "score"]);
  const DECIMAL_TYPES = new Set(["money", "ratio", "number"]);

  const state = {
    metrics: [], byKey: new Map(), templates: [], groups: [],
    rules: null, template: config.template || "", segment: null,
    seq: 0, timer: null, pending: false, problems: [], result: null, saving: false, uid: 0,
  };

  // -- small DOM helpers ------------------------------------------------------------------------------
  const $ = (selector, root = document) => root.querySelector(selector);
  function h(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }
  const uid = (stem) => `${stem}-${++state.uid}`;
  const clone = (value) => JSON.parse(JSON.stringify(value));
  const fmt = (n) => Number(n).toLocaleString("en-US");

  async function api(method, path, body) {
    const init = {method, headers: {Accept: "application/json"}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return {ok: response.ok, status: response.status, data};
  }

  // -- defaults for a metric ------------------------------------------------------------------------------
  function defaultValue(metric, op) {
    const t = metric.value_type;
    if (op === "between") return [defaultValue(metric, "eq"), defaultValue(metric, "eq")];
    if (op === "in" || op === "not_in") return metric.choices.length ? [metric.choices[0]] : [];
    if (op === "within_last_days") return 30;
    if (t === "bool") return true;
    if (t === "state") return metric.choices[0];
    if (t === "date") return new Date().toISOString().slice(0, 10);
    if (t === "text") return "";
    if (INTEGER_TYPES.has(t)) return Number(metric.bounds && metric.bounds.example) || 1;
    return (metric.bounds && metric.bounds.example) || "0";
  }

  function defaultParam(param) {
    if (param.type === "months") return [];
    if (param.type === "holiday") return config.holidays[0].key;
    return "";
  }

  function newCondition(key) {
    const metric = state.byKey.get(key) || state.metrics[0];
    const op = metric.operators.includes("gte") ? "gte"
      : metric.operators.includes("within_last_days") ? "within_last_days" : metric.operators[0];
    const condition = {metric: metric.key, op, value: defaultValue(metric, op)};
    if (metric.params.length) {
      condition.params = {};
      for (const p of metric.params) condition.params[p.name] = defaultParam(p);
    }
    return condition;
  }

  function blankRules() {
    // customers who have ordered: a rule that matches someone, to edit from
    return {version: 1, include: {all: [{...newCondition("orders_count"), value: 1}]}};
  }

  // A value kept across an operator change where the shapes allow it.
  function convertValue(metric, from, to, value) {
    const list = (op) => op === "in" || op === "not_in";
    if (from === to) return value;
    if (to === "within_last_days" || from === "within_last_days") return defaultValue(metric, to);
    if (to === "between") return Array.isArray(value) ? defaultValue(metric, to) : [value, value];
    if (list(to)) return list(from) ? value : (value === "" || value === undefined ? [] : [value]);
    if (Array.isArray(value)) return value.length ? value[0] : defaultValue(metric, to);
    return value;
  }

  // -- rendering the rule document --------------------------------------------------------------------------
  const isGroup = (node) => node && typeof node === "object" && ("all" in node || "any" in node || "not" in node);

  function renderRules(focusPath) {
    const root = $("#rules");
    root.replaceChildren();
    root.setAttribute("aria-busy", "false");
    root.append(h("h3", {class: "section-title", text: "Include customers who match"}));
    root.append(renderNode(state.rules.include, "include", (node) => { state.rules.include = node; }, null));
    if (state.rules.exclude) {
      root.append(h("h3", {class: "section-title", text: "Leave out customers who match"}));
      root.append(renderNode(state.rules.exclude, "exclude", (node) => { state.rules.exclude = node; }, () => {
        delete state.rules.exclude;
        changed("include", true, '[data-action="add-exclude"]');
      }));
    } else {
      root.append(h("button", {type: "button", class: "btn btn-plain", "data-action": "add-exclude",
        onclick: () => {
          state.rules.exclude = {any: [newCondition("has_tag")]};
          changed("exclude.any[0].metric", true);
        }}, "+ Leave out customers who match…"));
    }
    if (focusPath) focusAt(focusPath);
  }

  function focusAt(target) {
    const node = target.startsWith("[") || target.startsWith("#") ? $(target) : findPath(target, true);
    if (node) node.focus();
  }

  // `replace(node)` puts a new node where this one is; `remove()` takes it out (null: it cannot go).
  function renderNode(node, path, replace, remove) {
    if ("not" in node) {
      const box = h("div", {class: "node node-not", "data-path": path});
      box.append(h("div", {class: "node-head"},
        h("span", {class: "badge badge-attention", text: "Does not match"}),
        h("button", {type: "button", class: "btn btn-plain", "data-action": "unnegate",
          "aria-label": "Remove “does not match”", onclick: () => {
            replace(node.not);
            changed(path, true, pathFocus(path, node.not));
          }}, "Undo “does not match”")),
        nodeError(path),
        renderNode(node.not, `${path}.not`, (inner) => { node.not = inner; }, remove));
      return box;
    }
    if ("all" in node || "any" in node) return renderGroup(node, path, replace, remove);
    return renderCondition(node, path, replace, remove);
  }

  function pathFocus(path, node) {
    return isGroup(node) ? `${path}` : `${path}.metric`;
  }

  function nodeError(path) {
    return h("p", {class: "node-error", "data-error-for": path, hidden: true});
  }

  function renderGroup(node, path, replace, remove) {
    const kind = "all" in node ? "all" : "any";
    const items = node[kind];
    const id = uid("group");
    const box = h("fieldset", {class: "node node-group", "data-path": path, tabindex: "-1"});
    const select = h("select", {id, "data-path": `${path}.kind`, onchange: () => {
      const next = select.value;
      replace({[next]: items});
      changed(`${path}.kind`, true);
    }},
    h("option", {value: "all", selected: kind === "all"}, "all"),
    h("option", {value: "any", selected: kind === "any"}, "any"));
    box.append(h("legend", {class: "group-legend"},
      h("label", {for: id}, "Match "), select, h("span", {text: " of these"})));
    box.append(nodeError(path));
    const list = h("ol", {class: "node-list"});
    items.forEach((child, i) => {
      const childPath = `${path}.${kind}[${i}]`;
      list.append(h("li", {}, renderNode(child, childPath, (inner) => { items[i] = inner; },
        items.length > 1 ? () => {
          items.splice(i, 1);
          changed(path, true, `${path}.${kind}[${Math.min(i, items.length - 1)}]`);
        } : null)));
    });
    box.append(list);
    const tools = h("div", {class: "group-tools"},
      h("button", {type: "button", class: "btn btn-secondary", "data-action": "add-condition", onclick: () => {
        items.push(newCondition("orders_count"));
        changed(`${path}.${kind}[${items.length - 1}].metric`, true);
      }}, "+ Add condition"),
      h("button", {type: "button", class: "btn btn-secondary", "data-action": "add-group", onclick: () => {
        items.push({any: [newCondition("orders_count")]});
        changed(`${path}.${kind}[${items.length - 1}].any[0].metric`, true);
      }}, "+ Add group"),
      h("button", {type: "button", class: "btn btn-plain", "data-action": "negate", onclick: () => {
        replace({not: node});
        changed(`${path}`, true, `${path}.not`);
      }}, "Does not match"),
      remove ? h("button", {type: "button", class: "btn btn-plain btn-critical", "data-action": "remove-group",
        onclick: () => remove()}, "Remove group") : null);
    box.append(tools);
    return box;
  }

  function renderCondition(node, path, replace, remove) {
    const metric = state.byKey.get(node.metric);
    const box = h("div", {class: "node node-condition", "data-path": path, role: "group", tabindex: "-1",
      "aria-label": `Condition on ${metric ? metric.label : node.metric}`});
    const metricId = uid("metric");
    const describeId = uid("metric-desc");
    const picker = h("select", {id: metricId, "data-path": `${path}.metric`, "aria-describedby": describeId,
      onchange: () => {
        replace(newCondition(picker.value));
        changed(`${path}.metric`, true);
      }});
    const families = new Map();
    for (const m of state.metrics) {
      if (!families.has(m.family)) {
        families.set(m.family, h("optgroup", {label: FAMILIES[m.family] || m.family}));
        picker.append(families.get(m.family));
      }
      families.get(m.family).append(h("option", {value: m.key, selected: m.key === node.metric, title: m.description},
        m.label));
    }
    if (!metric) picker.prepend(h("option", {value: node.metric, selected: true}, `${node.metric} (unknown)`));
    box.append(h("div", {class: "condition-row"},
      field(`${path}.metric`, h("label", {for: metricId}, "Metric"), picker),
      metric ? operatorField(node, metric, path) : null,
      metric ? valueField(node, metric, path) : null));
    box.append(h("p", {class: "metric-description subdued", id: describeId},
      metric ? metric.description : "This metric is not in the catalog."));
    if (metric && metric.params.length) box.append(paramsRow(node, metric, path));
    if (metric && metric.windowed) box.append(windowRow(node, path));
    box.append(nodeError(path));
    box.append(h("div", {class: "condition-tools"},
      h("button", {type: "button", class: "btn btn-plain", "data-action": "negate", onclick: () => {
        replace({not: node});
        changed(path, true, `${path}.not.metric`);
      }}, "Does not match"),
      remove ? h("button", {type: "button", class: "btn btn-plain btn-critical", "data-action": "remove-condition",
        "aria-label": `Remove condition: ${metric ? metric.label : node.metric}`, onclick: () => remove()},
      "Remove") : null));
    return box;
  }

  // A labelled control with a slot for the problem the server names at `path`.
  function field(path, label, control, extraClass = "") {
    const errorId = uid("error");
    const describedBy = [control.getAttribute("aria-describedby"), errorId].filter(Boolean).join(" ");
    control.setAttribute("aria-describedby", describedBy);
    return h("div", {class: `field ${extraClass}`.trim()}, label, control,
      h("p", {class: "field-error", id: errorId, "data-error-for": path, hidden: true}));
  }

  function operatorField(node, metric, path) {
    const id = uid("op");
    const select = h("select", {id, "data-path": `${path}.op`, onchange: () => {
      node.value = convertValue(metric, node.op, select.value, node.value);
      node.op = select.value;
      changed(`${path}.op`, true);
    }}, metric.operators.map((op) => h("option", {value: op, selected: op === node.op}, OPS[op] || op)));
    return field(`${path}.op`, h("label", {for: id}, "Condition"), select);
  }

  function valueField(node, metric, path) {
    if (node.op === "between") {
      const value = Array.isArray(node.value) ? node.value : [node.value, node.value];
      node.value = value;
      return h("div", {class: "between"},
        scalarInput(metric, node.op, value[0], `${path}.value[0]`, "From", (v) => { value[0] = v; }),
        h("span", {class: "between-and", "aria-hidden": "true"}, "and"),
        scalarInput(metric, node.op, value[1], `${path}.value[1]`, "To", (v) => { value[1] = v; }));
    }
    if (node.op === "in" || node.op === "not_in") {
      if (metric.choices.length) {
        return checkboxes(`${path}.value`, "Values", metric.choices.map((c) => ({value: c, label: c.replaceAll("_", " ")})),
          Array.isArray(node.value) ? node.value : [], (list) => { node.value = list; });
      }
      const id = uid("value");
      const input = h("input", {id, type: "text", "data-path": `${path}.value`, autocomplete: "off",
        value: Array.isArray(node.value) ? node.value.join(", ") : "", "aria-describedby": `${id}-help`,
        oninput: () => {
          node.value = input.value.split(",").map((s) => s.trim()).filter(Boolean);
          changed(null, false);
        }});
      return h("div", {}, field(`${path}.value`, h("label", {for: id}, "Values"), input),
        h("p", {class: "subdued help", id: `${id}-help`, text: "Separate values with commas."}));
    }
    return scalarInput(metric, node.op, node.value, `${path}.value`, "Value", (v) => {
      if (v === undefined) delete node.value; else node.value = v;
    });
  }

  // One value typed by the metric: whole numbers as numbers, decimals as the strings typed, dates as dates.
  function scalarInput(metric, op, value, path, labelText, set) {
    const id = uid("value");
    const t = op === "within_last_days" ? "days" : metric.value_type;
    let control;
    if (t === "bool") {
      control = h("select", {id, "data-path": path, onchange: () => { set(control.value === "true"); changed(null, false); }},
        h("option", {value: "true", selected: value === true}, "yes"),
        h("option", {value: "false", selected: value === false}, "no"));
    } else if (t === "state") {
      control = h("select", {id, "data-path": path, onchange: () => { set(control.value); changed(null, false); }},
        metric.choices.map((c) => h("option", {value: c, selected: c === value}, c.replaceAll("_", " "))));
    } else if (t === "date") {
      control = h("input", {id, type: "date", "data-path": path, value: value || "",
        oninput: () => { set(control.value || undefined); changed(null, false); }});
    } else if (INTEGER_TYPES.has(t)) {
      const bounds = metric.bounds || {};
      control = h("input", {id, type: "number", step: "1", inputmode: "numeric", "data-path": path,
        min: op === "within_last_days" ? "1" : bounds.minimum, max: op === "within_last_days" ? "3650" : bounds.maximum,
        value: value === undefined || value === null ? "" : String(value),
        oninput: () => { set(readInteger(control)); changed(null, false); }});
    } else if (DECIMAL_TYPES.has(t)) {
      const bounds = metric.bounds || {};
      control = h("input", {id, type: "text", inputmode: "decimal", "data-path": path, autocomplete: "off",
        placeholder: bounds.example || "", value: value === undefined || value === null ? "" : String(value),
        oninput: () => { const v = control.value.trim(); set(v === "" ? undefined : v); changed(null, false); }});
    } else {
      control = h("input", {id, type: "text", "data-path": path, autocomplete: "off", maxlength: "255",
        value: value === undefined || value === null ? "" : String(value),
        oninput: () => { set(control.value); changed(null, false); }});
    }
    return field(path, h("label", {for: id}, labelText), control);
  }

  // What the merchant typed, as the document wants it: a whole number as a number, anything else
  // as typed (the server then says what it must be), nothing as missing.
  function readInteger(input) {
    const raw = input.value.trim();
    if (raw === "") return input.validity.badInput ? "not a number" : undefined;
    return /^-?\d+$/.test(raw) ? Number(raw) : raw;
  }

  function checkboxes(path, legend, options, selected, set) {
    const chosen = new Set(selected.map(String));
    const box = h("fieldset", {class: "checks", "data-path": path, tabindex: "-1"}, h("legend", {text: legend}));
    for (const option of options) {
      const id = uid("check");
      const input = h("input", {type: "checkbox", id, value: String(option.value), checked: chosen.has(String(option.value)),
        onchange: () => {
          const values = [...box.querySelectorAll("input:checked")].map((i) => options.find((o) => String(o.value) === i.value).value);
          set(values);
          changed(null, false);
        }});
      box.append(h("span", {class: "check"}, input, h("label", {for: id, text: option.label})));
    }
    box.append(h("p", {class: "field-error", "data-error-for": path, hidden: true}));
    return box;
  }

  function paramsRow(node, metric, path) {
    node.params = node.params || {};
    const row = h("div", {class: "condition-row params-row"});
    for (const param of metric.params) {
      const p = `${path}.params.${param.name}`;
      const value = node.params[param.name];
      if (param.type === "months") {
        row.append(checkboxes(p, param.description || "Months", MONTHS.map((m, i) => ({value: i + 1, label: m.slice(0, 3)})),
          Array.isArray(value) ? value : [], (list) => { node.params[param.name] = list; }));
      } else if (param.type === "holiday") {
        const id = uid("param");
        const select = h("select", {id, "data-path": p, onchange: () => { node.params[param.name] = select.value; changed(null, false); }},
          config.holidays.map((x) => h("option", {value: x.key, selected: x.key === value}, x.label)));
        row.append(field(p, h("label", {for: id}, "Holiday"), select));
      } else {
        const id = uid("param");
        const input = h("input", {id, type: "text", "data-path": p, autocomplete: "off", maxlength: "255",
          inputmode: param.type === "id" ? "numeric" : undefined, value: value === undefined ? "" : String(value),
          title: param.description,
          oninput: () => {
            const raw = input.value.trim();
            node.params[param.name] = param.type === "id" && /^\d+$/.test(raw) ? Number(raw) : input.value;
            changed(null, false);
          }});
        row.append(field(p, h("label", {for: id}, paramLabel(param)), input));
      }
    }
    return row;
  }

  const paramLabel = (param) => ({product_type: "Product type", vendor: "Vendor", product_id: "Product id", tag: "Tag",
    event: "Custom event"})[param.name]
    || param.name.replaceAll("_", " ");

  function windowKind(window) {
    if (!window) return "";
    return ["last_days", "between", "months", "holiday"].find((k) => k in window) || "";
  }

  function windowRow(node, path) {
    const kind = windowKind(node.window);
    const wp = `${path}.window`;
    const id = uid("window");
    const select = h("select", {id, "data-path": wp, onchange: () => {
      const k = select.value;
      if (!k) delete node.window;
      else if (k === "last_days") node.window = {last_days: 90};
      else if (k === "between") { const today = new Date().toISOString().slice(0, 10); node.window = {between: [today, today]}; }
      else if (k === "months") node.window = {months: [new Date().getMonth() + 1], years: 1};
      else node.window = {holiday: config.holidays[0].key, years: 1};
      changed(wp, true);
    }}, Object.entries(WINDOWS).map(([k, label]) => h("option", {value: k, selected: k === kind}, label)));
    const row = h("div", {class: "condition-row window-row"}, field(wp, h("label", {for: id}, "Time window"), select));
    const w = node.window;
    if (kind === "last_days") {
      const days = {value_type: "days", bounds: {minimum: "1", maximum: "3650"}};
      row.append(scalarInput(days, "eq", w.last_days, `${wp}.last_days`, "Days", (v) => {
        if (v === undefined) delete w.last_days; else w.last_days = v;
      }));
    } else if (kind === "between") {
      const date = {value_type: "date"};
      row.append(scalarInput(date, "eq", w.between[0], `${wp}.between[0]`, "From", (v) => { w.between[0] = v || ""; }));
      row.append(scalarInput(date, "eq", w.between[1], `${wp}.between[1]`, "To", (v) => { w.between[1] = v || ""; }));
    } else if (kind === "months" || kind === "holiday") {
      if (kind === "months") {
        row.append(checkboxes(`${wp}.months`, "Months", MONTHS.map((m, i) => ({value: i + 1, label: m.slice(0, 3)})),
          w.months, (list) => { w.months = list; }));
      } else {
        const hid = uid("holiday");
        const hs = h("select", {id: hid, "data-path": `${wp}.holiday`, onchange: () => { w.holiday = hs.value; changed(null, false); }},
          config.holidays.map((x) => h("option", {value: x.key, selected: x.key === w.holiday}, x.label)));
        row.append(field(`${wp}.holiday`, h("label", {for: hid}, "Holiday"), hs));
      }
      const years = {value_type: "count", bounds: {minimum: "1", maximum: "10"}};
      row.append(scalarInput(years, "eq", w.years === undefined ? 1 : w.years, `${wp}.years`, "Years", (v) => {
        if (v === undefined) delete w.years; else w.years = v;
      }));
    }
    return row;
  }

  // -- edits and the live preview ------------------------------------------------------------------------------
  // After any edit: re-render when the shape changed (then focus `focus`, a path or a selector), and
  // schedule a dry-run.
  function changed(focus, rerender, explicitFocus) {
    if (rerender) renderRules(explicitFocus || focus);
    scheduleDryRun();
  }

  function scheduleDryRun() {
    clearTimeout(state.timer);
    state.pending = true;
    $("#preview").setAttribute("aria-busy", "true");
    state.timer = setTimeout(dryRun, DRY_RUN_DELAY_MS);
  }

  async function dryRun() {
    const seq = ++state.seq;
    const body = {rules: state.rules};
    if (state.segment) body.segment = state.segment.id;
    let response;
    try {
      response = await api("POST", "/api/segments/dry-run", body);
    } catch (e) {
      response = {ok: false, status: 0, data: null};
    }
    if (seq !== state.seq) return;   // a newer edit's preview is on its way
    state.pending = false;
    $("#preview").setAttribute("aria-busy", "false");
    if (response.ok) {
      state.problems = [];
      state.result = response.data;
      showProblems([]);
      showResult(response.data);
    } else if (response.status === 400 && response.data && response.data.error) {
      state.result = null;
      state.problems = response.data.error.problems || [{path: "", message: response.data.error.message}];
      showProblems(state.problems);
      showResult(null);
      announce(`${state.problems.length} problem${state.problems.length === 1 ? "" : "s"} in the rules: ` +
        state.problems.map((p) => merchantText(p)).join(" "));
    } else {
      state.result = null;
      state.problems = [{path: "", message: "The preview could not be computed; try again in a moment."}];
      showProblems(state.problems);
      showResult(null);
      announce("The preview could not be computed.");
    }
  }

  function announce(text) {
    $("#live-status").textContent = text;
  }

  function showResult(result) {
    const tag = currentTag();
    for (const node of document.querySelectorAll(".diff-tag")) node.textContent = tag;
    showOverlaps(result ? result.overlaps || [] : []);
    if (!result) {
      $("#live-count").textContent = "—";
      $("#live-evaluated").textContent = "";
      $("#live-summary").textContent = "";
      fillSample("#sample-members", [], "Fix the rules to see who matches.");
      $("#diff-gain").textContent = "—";
      $("#diff-lose").textContent = "—";
      fillSample("#sample-entries", [], "None.");
      fillSample("#sample-exits", [], "None.");
      return;
    }
    $("#live-count").textContent = fmt(result.size);
    $("#live-count-label").textContent = result.size === 1 ? "customer matches" : "customers match";
    $("#live-evaluated").textContent = `of ${fmt(result.evaluated)} customers evaluated`;
    $("#live-summary").textContent = result.summary || "";
    fillSample("#sample-members", result.sample.members, "No customer matches these rules.");
    $("#diff-gain").textContent = fmt(result.entries);
    $("#diff-lose").textContent = fmt(result.exits);
    fillSample("#sample-entries", result.sample.entries, "None.");
    fillSample("#sample-exits", result.sample.exits, "None.");
    announce(`${fmt(result.size)} ${result.size === 1 ? "customer matches" : "customers match"}; ` +
      `${fmt(result.entries)} would gain ${tag}, ${fmt(result.exits)} would lose it.`);
  }

  // Segments that already hold these customers: the same members, or at least 90% of them.
  function showOverlaps(overlaps) {
    const box = $("#overlap");
    const list = $("#overlap-list");
    list.replaceChildren(...overlaps.map((o) => h("li", {"data-overlap": String(o.segment),
      text: o.same ? `These rules select the same customers as ${o.name}.`
        : `${Math.floor(o.share * 100 + 1e-9)}% of these customers are already in ${o.name}.`})));
    box.hidden = !overlaps.length;
  }

  function fillSample(selector, customers, empty) {
    const list = $(selector);
    list.replaceChildren();
    if (!customers.length) {
      list.append(h("li", {class: "subdued", text: empty}));
      return;
    }
    for (const c of customers) {
      list.append(h("li", {}, h("span", {class: "sample-name", text: c.name || "(no name)"}),
        c.email ? h("span", {class: "subdued", text: ` ${c.email}`}) : null));
    }
  }

  // -- problems at the inputs they name ------------------------------------------------------------------------
  // The element for a path: the input with that path, else the nearest enclosing node's.
  function findPath(path, focusable = false) {
    let p = path;
    while (p) {
      const found = document.querySelector(`#rules [data-path="${CSS.escape(p)}"]`);
      if (found) return focusable && found.matches("fieldset, .node") ? (found.querySelector("input, select") || found) : found;
      p = p.replace(/(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\])$/, "");
      if (p === path) break;
    }
    return null;
  }

  function clearRuleErrors() {
    for (const slot of document.querySelectorAll("#rules [data-error-for]")) { slot.hidden = true; slot.textContent = ""; }
    for (const input of document.querySelectorAll("#rules [aria-invalid]")) input.removeAttribute("aria-invalid");
    for (const node of document.querySelectorAll("#rules .has-error")) node.classList.remove("has-error");
    const general = $("#rules-error");
    general.hidden = true;
    general.textContent = "";
  }

  function showProblems(problems) {
    clearRuleErrors();
    for (const problem of problems) {
      const target = problem.path ? findPath(problem.path.replace(/^rules\.?/, "")) : null;
      let slot = null;
      if (target) {
        const path = target.getAttribute("data-path");
        slot = document.querySelector(`#rules [data-error-for="${CSS.escape(path)}"]`);
        if (target.matches("input, select")) target.setAttribute("aria-invalid", "true");
        const node = target.closest(".node");
        if (node) node.classList.add("has-error");
      }
      slot = slot || $("#rules-error");
      const text = merchantText(problem);
      slot.textContent = slot.textContent ? `${slot.textContent} ${text}` : text;
      slot.hidden = false;
    }
  }

  const capital = (text) => text ? text[0].toUpperCase() + text.slice(1) : text;

  // -- problems in the merchant's words ------------------------------------------------------------------------
  // The API names a JSON path and says what the document must hold ("must be a number from 0 to
  // 999999999999.99 … written as a JSON number or a string"); beside an input the merchant reads what
  // to type there instead. A problem this does not recognise keeps the server's words.
  const amount = (n) => Number(n).toLocaleString("en-US", {maximumFractionDigits: 4});
  const HUGE = 1e9;

  function conditionAt(path) {
    const steps = path.match(/[A-Za-z_][A-Za-z0-9_]*|\[\d+\]/g) || [];
    let node = state.rules;
    for (const step of steps) {
      if (node === null || typeof node !== "object") return null;
      node = step.startsWith("[") ? node[Number(step.slice(1, -1))] : node[step];
    }
    return node && typeof node === "object" && "metric" in node ? node : null;
  }

  function rangeText(low, high, one, several) {
    if (Number(high) >= HUGE) return `${one} of ${amount(low)} or more`;
    return `${several} from ${amount(low)} to ${amount(high)}`;
  }

  function decimalsTyped(value) {
    const match = /^-?\d*\.(\d+)$/.exec(String(value).trim());
    return match ? match[1].length : 0;
  }

  function valueText(metric, condition, typed, message) {
    const t = metric.value_type;
    const b = metric.bounds || {};
    if (condition.op === "within_last_days") return "Enter a number of days from 1 to 3650.";
    if (/low end must not be above/.test(message)) return "The first value must not be more than the second.";
    if (/twice/.test(message)) return "Enter each value once.";
    if ((condition.op === "in" || condition.op === "not_in") && /non-empty list/.test(message)) {
      return metric.choices.length ? "Choose at least one value." : "Enter at least one value, separated by commas.";
    }
    if (t === "money") {
      if (decimalsTyped(typed) > b.decimal_places) return `Enter an amount with at most ${b.decimal_places} decimals, like ${b.example}.`;
      return `${rangeText(b.minimum, b.maximum, "Enter an amount", "Enter an amount")}.`;
    }
    if (t === "ratio" || t === "number") {
      if (decimalsTyped(typed) > b.decimal_places) return `Enter a number with at most ${b.decimal_places} decimals, like ${b.example}.`;
      return `${rangeText(b.minimum, b.maximum, "Enter a number", "Enter a number")}.`;
    }
    if (INTEGER_TYPES.has(t)) {
      const unit = t === "days" ? "a number of days" : "a whole number";
      return `${rangeText(b.minimum, b.maximum, `Enter ${unit}`, `Enter ${unit}`)}.`;
    }
    if (t === "date") return "Enter a date between 2000 and 2100.";
    if (t === "text") return "Enter some text, up to 255 characters.";
    if (t === "state") return "Choose one of the options.";
    if (t === "bool") return "Choose yes or no.";
    return null;
  }

  function merchantText(problem) {
    const message = String(problem.message || "");
    const path = String(problem.path || "").replace(/^rules\.?/, "");
    const match = /^(.*?)\.(value|window|params)((?:\.|\[).*)?$/.exec(path);
    const condition = match && conditionAt(match[1]);
    const metric = condition && state.byKey.get(condition.metric);
    let text = null;
    if (metric && match[2] === "value") {
      const index = /^\[(\d+)\]$/.exec(match[3] || "");
      const typed = index && Array.isArray(condition.value) ? condition.value[Number(index[1])] : condition.value;
      text = valueText(metric, condition, typed, message);
    } else if (metric && match[2] === "window") {
      const part = match[3] || "";
      const range = /from (\d+) to (\d+)/.exec(message);
      if (part.startsWith(".last_days")) text = `Enter a number of days from ${range ? range[1] : 1} to ${range ? range[2] : 3650}.`;
      else if (part.startsWith(".years")) text = `Enter a number of years from ${range ? range[1] : 1} to ${range ? range[2] : 10}.`;
      else if (/first date must not be after/.test(message)) text = "The first date must not be after the last.";
      else if (part.startsWith(".between")) text = "Enter a date between 2000 and 2100.";
      else if (part.startsWith(".months")) text = /twice/.test(message) ? "Choose each month once." : "Choose at least one month.";
    } else if (metric && match[2] === "params") {
      const param = metric.params.find((p) => (match[3] || "").startsWith(`.${p.name}`));
      if (param && param.type === "id") text = "Enter the id as digits only, like 7001234567.";
      else if (param && param.type === "months") text = "Choose at least one month.";
      else if (param && param.type !== "holiday") text = `Enter a ${paramLabel(param).toLowerCase()}.`;
    }
    return text || `${capital(message)}.`;
  }

  // -- settings -------------------------------------------------------------------------------------------------
  // Django's slugify, for the preview of a new segment's tag (the server assigns it on save).
  function slugify(text) {
    const ascii = text.normalize("NFKD").replace(/[^\x00-\x7f]/g, "");
    const slug = ascii.toLowerCase().replace(/[^\w\s-]/g, "").replace(/[-\s]+/g, "-").replace(/^[-_]+|[-_]+$/g, "");
    return slug.slice(0, 50) || "segment";
  }

  function currentTag() {
    if (config.tag) return config.tag;
    return `${config.tag_prefix}${$("#setting-handle").value}`;
  }

  // The tag name follows the name until the merchant types one of their own.
  function followName() {
    const handle = $("#setting-handle");
    if (handle && !handle.dataset.edited) handle.value = slugify($("#setting-name").value);
  }

  function showTag() {
    $("#tag-preview").textContent = currentTag();
    for (const node of document.querySelectorAll(".diff-tag")) node.textContent = currentTag();
  }

  function fillGroups(selectedId) {
    const select = $("#setting-group");
    const keep = selectedId !== undefined ? String(selectedId) : select.value;
    select.replaceChildren(h("option", {value: ""}, "None"),
      ...state.groups.map((g) => h("option", {value: String(g.id)}, g.name)),
      h("option", {value: "new"}, "New group…"));
    select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
  }

  function settingError(name, message) {
    const slot = document.getElementById(`setting-${name}-error`);
    const wrapper = document.querySelector(`[data-setting="${name}"]`);
    const input = wrapper && wrapper.querySelector("input, select, textarea");
    if (!slot) return false;
    slot.textContent = message ? `${capital(message)}.` : "";
    slot.hidden = !message;
    if (input) { if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid"); }
    return true;
  }

  function clearSettingErrors() {
    for (const name of ["name", "handle", "description", "group", "priority", "holdout_percent", "reason"]) {
      settingError(name, "");
    }
  }

  // A number field as typed: a whole number, else the text (the server says what it must be).
  function readSettingInt(input) {
    const raw = input.value.trim();
    if (raw === "") return input.validity.badInput ? "not a number" : 0;
    return /^-?\d+$/.test(raw) ? Number(raw) : raw;
  }

  function settingsBody() {
    const group = $("#setting-group").value;
    const body = {
      name: $("#setting-name").value,
      description: $("#setting-description").value,
      priority: readSettingInt($("#setting-priority")),
      holdout_percent: readSettingInt($("#setting-holdout")),
      group: group && group !== "new" ? Number(group) : null,
    };
    const reason = $("#setting-reason").value;
    if (state.segment || reason.trim()) body.reason = reason;
    if (!state.segment) body.handle = $("#setting-handle").value;
    return body;
  }

  async function createGroup() {
    const input = $("#new-group-name");
    const slot = $("#new-group-error");
    const response = await api("POST", "/api/groups", {name: input.value});
    if (response.ok) {
      state.groups.push(response.data);
      state.groups.sort((a, b) => a.name.localeCompare(b.name));
      fillGroups(response.data.id);
      $("#new-group").hidden = true;
      slot.hidden = true;
      input.value = "";
      input.removeAttribute("aria-invalid");
      $("#setting-group").focus();
      return;
    }
    const error = response.data && response.data.error;
    slot.textContent = error ? (error.problems || [error]).map((p) => `${capital(p.message)}.`).join(" ") : "The group could not be created.";
    slot.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  // -- save -----------------------------------------------------------------------------------------------------
  function banner(kind, title, text) {
    const node = $("#save-banner");
    node.className = `banner banner-${kind}`;
    node.replaceChildren(h("h2", {text: title}), text ? h("p", {text}) : null);
    node.hidden = false;
    node.focus();
  }

  // Save sends the rules as they are, never waiting for a preview (one can take long on a big shop):
  // the API checks them again on save and its problems land at the inputs like the preview's.
  async function save() {
    if (state.saving || !state.rules) return;
    $("#save-banner").hidden = true;
    clearSettingErrors();
    state.saving = true;
    for (const button of document.querySelectorAll('[data-action="save"]')) {
      button.disabled = true;
      button.textContent = "Saving…";
    }
    const body = {...settingsBody(), rules: state.rules};
    let response;
    try {
      response = state.segment
        ? await api("PATCH", `/api/segments/${state.segment.id}`, body)
        : await api("POST", "/api/segments", state.template ? {...body, template: state.template} : body);
    } catch (e) {
      response = {ok: false, status: 0, data: null};
    }
    state.saving = false;
    for (const button of document.querySelectorAll('[data-action="save"]')) {
      button.disabled = false;
      button.textContent = "Save segment";
    }
    if (response.ok) {
      clearTimeout(state.timer);
      if (response.data.changed === false) {
        banner("info", "Nothing changed", "The rules and settings are the same as the current version.");
        return;
      }
      const saved = response.data.segment || response.data;
      window.location.assign(config.after_save_url.replace(config.detail_placeholder, String(saved.id)));
      return;
    }
    const error = response.data && response.data.error;
    if (!error) {
      banner("critical", "The segment was not saved", "The server could not be reached; try again.");
      return;
    }
    const problems = error.problems || [];
    const ruleProblems = [];
    const other = [];
    for (const p of problems) {
      const key = p.path.split(/[.[]/)[0];
      if (settingError(key, p.message)) continue;
      if (key === "include" || key === "exclude" || key === "version" || key === "rules" || key === "") ruleProblems.push(p);
      else other.push(p);
    }
    if (ruleProblems.length) {
      state.problems = ruleProblems;
      showProblems(ruleProblems);
    }
    // The API's message lists paths; the page says where to look, and each problem sits at its input.
    const text = ruleProblems.length ? "Fix the problems marked in the rules; nothing was saved."
      : problems.length > other.length ? "Fix the problems marked below; nothing was saved." : error.message;
    banner("critical", "The segment was not saved",
      [text, ...other.map((p) => merchantText(p))].filter(Boolean).join(" "));
    const first = document.querySelector("[aria-invalid]");
    if (first) first.focus();
  }

  // -- templates ---------------------------------------------------------------------------------------------------
  function renderTemplates() {
    const list = $("#template-list");
    if (!list) return;
    list.replaceChildren();
    list.setAttribute("aria-busy", "false");
    const choices = [{key: "", name: "Blank", why: "Start from one condition and build your own rules."}, ...state.templates];
    const headings = {purchase: "From purchase history", browsing: "From storefront browsing (the web pixel)",
                      predictions: "From predictions (each customer's likely future)"};
    let family = "";
    for (const t of choices) {
      if (t.family && t.family !== family) {
        family = t.family;
        list.append(h("h3", {class: "template-family", text: headings[family] || family}));
      }
      list.append(h("button", {type: "button", class: "template-card", "data-template": t.key,
        "aria-pressed": String(t.key === state.template), onclick: () => {
        pickTemplate(t.key);
        showStarts(false);
        focusAt("#rules select");
      }},
      h("span", {class: "template-name", text: t.name}), h("span", {class: "template-why subdued", text: t.why})));
    }
  }

  // The list of starts folds away once one is chosen, so the rules come into view.
  function showStarts(open) {
    const list = $("#template-list");
    if (!list) return;
    const chosen = state.templates.find((t) => t.key === state.template);
    list.hidden = !open;
    $("#start-summary").hidden = open;
    $("#start-name").textContent = chosen ? chosen.name : "Blank";
    $("#start-change").setAttribute("aria-expanded", String(open));
  }

  function pickTemplate(key) {
    const previous = state.templates.find((t) => t.key === state.template);
    const template = state.templates.find((t) => t.key === key);
    state.template = template ? key : "";
    state.rules = template ? clone(template.rules) : blankRules();
    const name = $("#setting-name");
    const description = $("#setting-description");
    if (!name.value || (previous && name.value === previous.name)) name.value = template ? template.name : "";
    if (!description.value || (previous && description.value === previous.why)) description.value = template ? template.why : "";
    followName();
    showTag();
    for (const card of document.querySelectorAll("[data-template]")) {
      card.setAttribute("aria-pressed", String(card.getAttribute("data-template") === state.template));
    }
    const url = new URL(window.location.href);
    if (state.template) url.searchParams.set("template", state.template); else url.searchParams.delete("template");
    window.history.replaceState(null, "", url.toString());
    renderRules();
    scheduleDryRun();
  }

  // -- loading ------------------------------------------------------------------------------------------------------
  async function load() {
    $("#load-error").hidden = true;
    $("#rules").setAttribute("aria-busy", "true");
    announce("Loading…");
    const requests = [api("GET", "/api/metrics"), api("GET", "/api/groups")];
    if (config.segment) requests.push(api("GET", `/api/segments/${config.segment}`));
    else requests.push(api("GET", "/api/templates"));
    let answers;
    try {
      answers = await Promise.all(requests);
    } catch (e) {
      answers = null;
    }
    const failed = !answers || answers.find((a) => !a.ok);
    if (failed) {
      const what = !answers || failed === answers[0] ? "The metric catalog did not load."
        : failed === answers[1] ? "The exclusive groups did not load."
          : config.segment ? "The segment did not load." : "The templates did not load.";
      $("#load-error-text").textContent = `${what} Check your connection and try again.`;
      $("#load-error").hidden = false;
      announce(what);
      $("#load-retry").focus();
      return;
    }
    const [metrics, groups, third] = answers;
    state.metrics = metrics.data.metrics;
    state.byKey = new Map(state.metrics.map((m) => [m.key, m]));
    state.groups = groups.data.groups;
    if (config.segment) {
      const segment = third.data;
      state.segment = segment;
      state.rules = clone(segment.rules);
      $("#setting-name").value = segment.name;
      $("#setting-description").value = segment.description || "";
      $("#setting-priority").value = String(segment.priority);
      $("#setting-holdout").value = String(segment.holdout_percent);
      fillGroups(segment.group ? segment.group.id : "");
      showTag();
      renderRules();
      scheduleDryRun();
      return;
    }
    state.templates = third.data.templates;
    fillGroups("");
    renderTemplates();
    const preset = state.templates.some((t) => t.key === state.template);
    pickTemplate(preset ? state.template : "");
    showStarts(!preset);
  }

  function wire() {
    for (const button of document.querySelectorAll('[data-action="save"]')) button.addEventListener("click", save);
    $("#load-retry").addEventListener("click", load);
    if ($("#start-change")) {
      $("#start-change").addEventListener("click", () => {
        showStarts(true);
        const pressed = $('[data-template][aria-pressed="true"]');
        if (pressed) pressed.focus();
      });
    }
    $("#settings").addEventListener("submit", (event) => { event.preventDefault(); save(); });
    $("#setting-name").addEventListener("input", () => { followName(); showTag(); settingError("name", ""); });
    const handle = $("#setting-handle");
    if (handle) {
      handle.addEventListener("input", () => {
        handle.dataset.edited = "1";
        showTag();
        settingError("handle", "");
      });
    }
    $("#setting-group").addEventListener("change", () => {
      const isNew = $("#setting-group").value === "new";
      $("#new-group").hidden = !isNew;
      if (isNew) $("#new-group-name").focus();
    });
    $("#new-group-create").addEventListener("click", createGroup);
    $("#new-group-name").addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); createGroup(); }
    });
    for (const name of ["description", "priority", "holdout", "reason"]) {
      const input = document.getElementById(`setting-${name}`);
      input.addEventListener("input", () => settingError(name === "holdout" ? "holdout_percent" : name, ""));
    }
  }

  wire();
  showTag();
  load();
})();
