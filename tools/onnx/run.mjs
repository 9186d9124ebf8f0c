// Runs an ONNX model exported by `scratchnet export --format onnx` in onnxruntime:
//   node tools/onnx/run.mjs MODEL.onnx INPUT.f32 ROWS OUT.f32
// INPUT.f32: ROWS x 784 little-endian floats; OUT.f32 gets the ROWS x 10 "logits".
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [model, input, rowsText, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node run.mjs MODEL.onnx INPUT.f32 ROWS OUT.f32');
  process.exit(2);
}
const rows = Number(rowsText);
const bytes = readFileSync(input);
const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
if (x.length % rows !== 0) {
  console.error(`run.mjs: ${input}: ${x.length} floats is not ${rows} rows`);
  process.exit(1);
}
const session = await ort.InferenceSession.create(model);
const result = await session.run({ input: new ort.Tensor('float32', x, [rows, x.length / rows]) });
const logits = result.logits.data;
writeFileSync(out, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
console.log(`run.mjs: ${rows} rows, logits ${result.logits.dims.join('x')}, probs ${result.probs.dims.join('x')}`);
