// Shows that ONNX Runtime, running the model mnist_cnn exported (<dir>/model.onnx), predicts the
// same digit as ember for every held-out image (<dir>/heldout_images.f32, heldout_predictions.i64).
// Usage: node scripts/onnx_agrees.js DIR   (NODE_PATH must reach onnxruntime-node; scripts/main.sh
// sets it to where scripts/setup-deps.sh installs it). Exits 1 on any disagreement.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main(dir) {
  const images = fs.readFileSync(path.join(dir, 'heldout_images.f32'));
  const ember = fs.readFileSync(path.join(dir, 'heldout_predictions.i64'));
  const pixels = new Float32Array(images.buffer, images.byteOffset, images.length / 4);
  const expected = new BigInt64Array(ember.buffer, ember.byteOffset, ember.length / 8);
  const n = expected.length;
  if (pixels.length !== n * 28 * 28) throw new Error(`${n} predictions but ${pixels.length / 784} images`);
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'));
  let agree = 0;
  const batch = 500;
  for (let start = 0; start < n; start += batch) {
    const count = Math.min(batch, n - start);
    const input = new ort.Tensor('float32', pixels.subarray(start * 784, (start + count) * 784), [count, 1, 28, 28]);
    const logits = (await session.run({images: input})).logits.data;
    for (let i = 0; i < count; ++i) {
      let best = 0;
      for (let c = 1; c < 10; ++c) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
      if (BigInt(best) === expected[start + i]) agree += 1;
      else console.log(`digit ${start + i}: ONNX Runtime says ${best}, ember ${expected[start + i]}`);
    }
  }
  console.log(`onnx: ONNX Runtime agrees with ember on ${agree} of ${n} held-out digits`);
  return agree === n ? 0 : 1;
}

main(process.argv[2]).then((code) => process.exit(code), (error) => {
  console.error('onnx_agrees:', error.message || error);
  process.exit(1);
});
