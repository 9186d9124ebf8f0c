// The same MLP in TensorFlow.js (the wasm backend, SIMD; single-threaded under Node):
// 784-50-25-10, ReLU, softmax + cross-entropy, He-normal init, SGD with momentum 0.9
// (v = 0.9 v + g, w -= lr v, as PyTorch), cosine learning rate per step, 50k/10k split of
// the training images, the 10k test images. Only the training passes are timed, as in
// scratchnet. Prints the peers' result line last (bench/peers/mnist_io.py's format).
//   node tfjs_mlp.mjs --data DIR [--epochs 10] [--batch 128] [--threads 1] [--lr 0.05] [--seed 42]
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

const args = { data: null, epochs: 10, batch: 128, threads: 1, lr: 0.05, seed: 42 };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!(key in args) || i + 1 >= process.argv.length) {
    console.error(`tfjs_mlp.mjs: unknown flag or missing value '${process.argv[i]}'`);
    process.exit(2);
  }
  args[key] = key === 'data' ? process.argv[i + 1] : Number(process.argv[i + 1]);
}
if (!args.data) {
  console.error('tfjs_mlp.mjs: --data DIR is required');
  process.exit(2);
}

// MNIST IDX, raw or .gz: images as uint8 [n * 784], labels as uint8 [n].
function idx(name) {
  const raw = join(args.data, name);
  return existsSync(raw) ? readFileSync(raw) : gunzipSync(readFileSync(raw + '.gz'));
}
function load(split) {
  const im = idx(`${split}-images-idx3-ubyte`), lb = idx(`${split}-labels-idx1-ubyte`);
  if (im.readUInt32BE(0) !== 2051 || lb.readUInt32BE(0) !== 2049) throw new Error(`${split}: not IDX`);
  const n = im.readUInt32BE(4);
  return { images: im.subarray(16, 16 + n * 784), labels: lb.subarray(8, 8 + n), n };
}

// A seeded shuffle (mulberry32), so a run is reproducible.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function batch(set, order, first, count) {
  const x = new Float32Array(count * 784), y = new Int32Array(count);
  for (let b = 0; b < count; b++) {
    const r = order ? order[first + b] : first + b;
    for (let p = 0; p < 784; p++) x[b * 784 + p] = set.images[r * 784 + p] / 255;
    y[b] = set.labels[r];
  }
  return { x: tf.tensor2d(x, [count, 784]), y: tf.oneHot(tf.tensor1d(y, 'int32'), 10) };
}

await tf.setBackend('wasm');
await tf.ready();
const all = load('train'), test = load('t10k');
const train = { images: all.images.subarray(0, 50000 * 784), labels: all.labels.subarray(0, 50000), n: 50000 };
const val = { images: all.images.subarray(50000 * 784), labels: all.labels.subarray(50000), n: all.n - 50000 };

const sizes = [784, 50, 25, 10];
const W = [], B = [];
for (let l = 0; l < 3; l++) {
  W.push(tf.variable(tf.initializers.heNormal({ seed: args.seed + l }).apply([sizes[l], sizes[l + 1]])));
  B.push(tf.variable(tf.zeros([sizes[l + 1]])));
}
const forward = (x) => {
  let h = x;
  for (let l = 0; l < 3; l++) {
    h = tf.add(tf.matMul(h, W[l]), B[l]);
    if (l < 2) h = tf.relu(h);
  }
  return h;
};
const lossOf = (x, y) => tf.losses.softmaxCrossEntropy(y, forward(x));

const opt = tf.train.momentum(args.lr, 0.9);
const steps = Math.ceil(train.n / args.batch) * args.epochs;
const random = rng(args.seed);
const order = Array.from({ length: train.n }, (_, i) => i);
let step = 0, trainS = 0, lastLoss = NaN;
for (let e = 0; e < args.epochs; e++) {
  for (let i = order.length - 1; i > 0; i--) { // Fisher-Yates, untimed like the gathers' setup
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  let sum = 0, rows = 0;
  for (let first = 0; first < train.n; first += args.batch) {
    const count = Math.min(args.batch, train.n - first);
    const b = batch(train, order, first, count);
    const t0 = process.hrtime.bigint();
    opt.setLearningRate(args.lr * 0.5 * (1 + Math.cos(Math.PI * step / steps)));
    const loss = opt.minimize(() => lossOf(b.x, b.y), true);
    const value = (await loss.data())[0]; // waits for the step: part of its time
    trainS += Number(process.hrtime.bigint() - t0) / 1e9;
    sum += value * count, rows += count, step++;
    loss.dispose(), b.x.dispose(), b.y.dispose();
  }
  lastLoss = sum / rows;
}

function evaluate(set) {
  let loss = 0, right = 0;
  for (let first = 0; first < set.n; first += 1000) {
    const count = Math.min(1000, set.n - first);
    const b = batch(set, null, first, count);
    tf.tidy(() => {
      const z = forward(b.x);
      loss += tf.losses.softmaxCrossEntropy(b.y, z).dataSync()[0] * count;
      right += tf.sum(tf.cast(tf.equal(tf.argMax(z, 1), tf.argMax(b.y, 1)), 'int32')).dataSync()[0];
    });
    b.x.dispose(), b.y.dispose();
  }
  return [loss / set.n, right / set.n];
}
const [valLoss] = evaluate(val), [, testAcc] = evaluate(test);
console.log(`result name=tfjs-wasm epochs=${args.epochs} batch=${args.batch} threads=1 ` +
  `train_loss=${lastLoss.toFixed(6)} val_loss=${valLoss.toFixed(6)} test_acc=${testAcc.toFixed(6)} ` +
  `train_s=${trainS.toFixed(6)} samples_per_s=${Math.round(50000 * args.epochs / trainS)}`);
