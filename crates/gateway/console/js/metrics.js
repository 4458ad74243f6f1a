// Reading Prometheus's text format (what /metrics answers): samples by name and labels.

/** Parses the text into `[{name, labels, value}]` (comments skipped). */
export function parse(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3])) !== null) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/** The samples named `name`. */
export const samples = (all, name) => all.filter((s) => s.name === name);

/** The sum of the samples named `name`. */
export const sum = (all, name) => samples(all, name).reduce((a, s) => a + s.value, 0);
