// Runs every exported model of a directory (made by onnx_export_cases) in ONNX Runtime, at each of
// the settings its .json file lists, and compares the outputs with ember's within 1e-5 relative, as
// numpy's allclose with rtol = 1e-5 and atol = 1e-5 * (the output's largest magnitude):
// |ort - ember| <= 1e-5 * (|ember| + max |ember|).
// Usage: node run_onnxruntime.js DIR   (NODE_PATH must reach onnxruntime-node)
'use strict';
const fs = require('fs');
const path = require('path');

let ort;
try {
  ort = require('onnxruntime-node');
} catch (error) {
  console.error('run_onnxruntime: onnxruntime-node is not installed where NODE_PATH points (' +
                (process.env.NODE_PATH || 'unset') + '); run scripts/setup-deps.sh');
  process.exit(1);
}

function toOrt(t) {
  const dims = t.shape;
  if (t.dtype === 'float32') return new ort.Tensor('float32', Float32Array.from(t.data), dims);
  if (t.dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(t.data.map(BigInt)), dims);
  if (t.dtype === 'bool') return new ort.Tensor('bool', Uint8Array.from(t.data), dims);
  throw new Error('unexpected dtype ' + t.dtype);
}

function compare(name, got, want) {
  if (JSON.stringify(Array.from(got.dims)) !== JSON.stringify(want.shape))
    return `${name}: shape [${got.dims}] but ember gave [${want.shape}]`;
  const scale = want.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let worst = 0;
  for (let i = 0; i < want.data.length; ++i) {
    const a = Number(got.data[i]), b = want.data[i];
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      if (!(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)))) return `${name}[${i}]: ${a} vs ${b}`;
      continue;
    }
    const err = Math.abs(a - b) / Math.max(Math.abs(b) + scale, 1e-30);
    worst = Math.max(worst, err);
    if (err > 1e-5) return `${name}[${i}]: onnxruntime ${a}, ember ${b} (relative error ${err.toExponential(2)})`;
  }
  return `ok ${name} (worst relative error ${worst.toExponential(2)})`;
}

async function main(dir) {
  const cases = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  if (cases.length === 0) {
    console.error(`run_onnxruntime: no cases in ${dir}`);
    return 1;
  }
  let failures = 0;
  for (const file of cases) {
    const spec = JSON.parse(fs.readFileSync(path.join(dir, file)));
    const session = await ort.InferenceSession.create(path.join(dir, spec.model));
    for (const [r, run] of spec.runs.entries()) {
      const feeds = {};
      for (const t of run.inputs) feeds[t.name] = toOrt(t);
      const results = await session.run(feeds);
      for (const want of run.outputs) {
        const verdict = compare(want.name, results[want.name], want);
        const shapes = run.inputs.map((t) => `[${t.shape}]`).join(' ');
        console.log(`${spec.model} run ${r} (inputs ${shapes}): ${verdict}`);
        if (!verdict.startsWith('ok')) failures += 1;
      }
    }
  }
  return failures ? 1 : 0;
}

main(process.argv[2]).then((code) => process.exit(code), (error) => {
  console.error('run_onnxruntime:', error.message || error);
  process.exit(1);
});
