// Runs the real @electron/osx-sign over a fake Electron host app that
// nests Attestd.app, with electron-builder's ignore function built from
// the patterns given, and a stand-in codesign on PATH that records what
// it is asked to sign. Prints JSON: {asked, signed} (paths relative to
// the host app's parent directory).
//
//   node osxsign.mjs OSX_SIGN_PACKAGE_DIR PATTERNS_JSON
//
// The ignore function is electron-builder's, as in app-builder-lib
// v26.0.9 src/macPackager.ts (signIgnore) and v27 src/targets/mac/
// MacTargetHelper.ts (sign.ignore): each pattern is compiled with
// new RegExp(pattern) and tested against the absolute path osx-sign
// passes, plus electron-builder's own defaults.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [pkgDir, patternsJSON] = process.argv.slice(2);
const patterns = JSON.parse(patternsJSON);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'osxsign-'));
const app = path.join(root, 'Host.app');
const macho = Buffer.concat([Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 0x0c, 0x00, 0x00, 0x01]), Buffer.alloc(1024)]);
const files = {
  'Contents/Info.plist': '<?xml version="1.0"?><plist version="1.0"><dict><key>CFBundleExecutable</key><string>Host</string></dict></plist>\n',
  'Contents/MacOS/Host': macho,
  'Contents/Frameworks/Electron Framework.framework/Versions/A/Electron Framework': macho,
  'Contents/Frameworks/Host Helper.app/Contents/MacOS/Host Helper': macho,
  'Contents/Frameworks/Host Helper (Renderer).app/Contents/MacOS/Host Helper (Renderer)': macho,
  'Contents/Helpers/Attestd.app/Contents/Info.plist': '<?xml version="1.0"?><plist version="1.0"><dict/></plist>\n',
  'Contents/Helpers/Attestd.app/Contents/MacOS/attestd': macho,
  'Contents/Helpers/Attestd.app/Contents/_CodeSignature/CodeResources': '<plist/>\n',
  'Contents/Library/LaunchAgents/com.example.Host.attestd.plist': '<plist/>\n',
  'Contents/Resources/app.asar': 'asar\n',
};
for (const [rel, data] of Object.entries(files)) {
  const p = path.join(app, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data, { mode: 0o755 });
}

// A stand-in codesign: records the target of each signing call.
const bin = path.join(root, 'bin');
const signedLog = path.join(root, 'signed');
fs.mkdirSync(bin);
fs.writeFileSync(path.join(bin, 'codesign'),
  '#!/bin/sh\nfor last; do :; done\ncase " $* " in *" --sign "*) printf "%s\\n" "$last" >> "$SIGNED_LOG" ;; esac\nexit 0\n',
  { mode: 0o755 });
process.env.PATH = bin + path.delimiter + process.env.PATH;
process.env.SIGNED_LOG = signedLog;

const filterRe = patterns.map((p) => new RegExp(p));
const asked = [];
const ignore = (file) => {
  asked.push(file);
  for (const re of filterRe) {
    if (re.test(file)) return true;
  }
  return (
    file.endsWith('.kext') ||
    file.startsWith('/Contents/PlugIns', app.length) ||
    file.includes('/node_modules/puppeteer/.local-chromium') ||
    file.includes('/node_modules/playwright-firefox/.local-browsers') ||
    file.includes('/node_modules/playwright/.local-browsers')
  );
};

const mod = await import(pathToFileURL(path.join(pkgDir, JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'))).main ?? 'dist/index.js')).href)
  .catch(() => import(pathToFileURL(path.join(pkgDir, 'dist', 'index.js')).href));
const api = mod.signApp ? mod : mod.default?.signApp ? mod.default : mod;
const sign = api.signApp ?? api.sign;
await sign({
  app,
  identity: 'Developer ID Application: Example Inc (ABCDE12345)',
  identityValidation: false,
  platform: 'darwin',
  preAutoEntitlements: false,
  ignore,
});

const rel = (p) => path.relative(root, p);
const signed = fs.existsSync(signedLog) ? fs.readFileSync(signedLog, 'utf8').trim().split('\n') : [];
process.stdout.write(JSON.stringify({ asked: asked.map(rel), signed: signed.map(rel) }) + '\n');
fs.rmSync(root, { recursive: true, force: true });
