// Runs the page `vnet ui` serves inside node, against the real server, with
// a minimal DOM: enough for the page's script to build its elements, which
// are then dumped as JSON (tag, attributes, text, children) for the test to
// inspect, after optionally "clicking" a button by its label.
//   node ui_dom.js URL [BUTTON-LABEL [NET]]
"use strict";
const [url, click, clickNet] = process.argv.slice(2);
const base = url.split("/?")[0];

class Node {
  constructor(tag) { this.tag = tag; this.attrs = {}; this.children = []; this.listeners = {}; this.text = ""; }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  addEventListener(ev, fn) { this.listeners[ev] = fn; }
  append(...kids) { for (const k of kids) this.children.push(k); }
  replaceChildren(...kids) { this.children = kids; }
  set textContent(t) { this.children = [new TextNode(t)]; }
  get textContent() { return this.children.map(c => c.textContent).join(""); }
  toJSON() { return {tag: this.tag, attrs: this.attrs, children: this.children}; }
}
class TextNode extends Node {
  constructor(t) { super("#text"); this.value = t; }
  get textContent() { return this.value; }
  toJSON() { return this.value; }
}
const byId = {};
globalThis.Node = Node;
globalThis.document = {
  createElement: tag => new Node(tag),
  createElementNS: (_, tag) => new Node(tag),
  createTextNode: t => new TextNode(t),
  getElementById: id => (byId[id] = byId[id] || new Node("div#" + id)),
};
globalThis.location = {search: "?" + url.split("?")[1]};
const realFetch = globalThis.fetch;
globalThis.fetch = (path, opts) => realFetch(base + path, opts);
globalThis.setInterval = () => 0;

function find(node, pred, out = []) {
  if (!(node instanceof Node)) return out;
  if (pred(node)) out.push(node);
  for (const c of node.children) find(c, pred, out);
  return out;
}

(async () => {
  const html = await (await realFetch(url)).text();
  const script = html.slice(html.indexOf("<script>") + 8, html.lastIndexOf("</script>"));
  // The script's own refresh() is the page's first draw; expose it to run again after a click.
  (0, eval)(script + "\nglobalThis.__refresh = refresh;");
  await new Promise(r => setTimeout(r, 500));
  await globalThis.__refresh();
  if (click) {
    const root = byId.nets;
    const scope = clickNet ? find(root, n => n.attrs["data-net"] === clickNet)[0] : root;
    const button = find(scope, n => n.tag === "button" && n.textContent === click)[0];
    if (!button) throw new Error("no button " + click);
    await button.listeners.click();
  }
  console.log(JSON.stringify({nets: byId.nets, err: byId.err ? byId.err.textContent : ""}));
})().catch(e => { console.error(e.stack || e); process.exit(1); });
