// Builds the dashboard (app.js, app.css, index.html) into server/weldpulse/static/dashboard, or the folder given.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, "..", "server", "weldpulse", "static", "dashboard");
const common = { bundle: true, minify: true, write: false, legalComments: "eof", logLevel: "warning", charset: "utf8" };

const [js, css] = await Promise.all([
  build({ ...common, entryPoints: [join(here, "src", "main.js")], format: "iife", target: ["es2022"] }),
  build({ ...common, entryPoints: [join(here, "src", "app.css")], loader: { ".css": "css" } }),
]);
const files = { "app.js": js.outputFiles[0].contents, "app.css": css.outputFiles[0].contents };
// index.html names each asset with its content hash, so browsers may cache them for long.
const hash = (bytes) => createHash("sha256").update(bytes).digest("hex").slice(0, 12);
const html = readFileSync(join(here, "src", "index.html"), "utf8")
  .replace("{{js}}", hash(files["app.js"]))
  .replace("{{css}}", hash(files["app.css"]));
mkdirSync(out, { recursive: true });
for (const [name, bytes] of Object.entries(files)) writeFileSync(join(out, name), bytes);
writeFileSync(join(out, "index.html"), html);
