// ONNX Runtime (the npm package onnxruntime-node, CPU) on one model, for
// bench/bench-peers.py: prints the median milliseconds of RUNS runs after
// two warm-up runs, on the same test card as bench-net.
//   node bench/ort-bench.js MODEL.onnx W H RUNS THREADS
const ort = require('onnxruntime-node');

async function main() {
  const [model, w, h, runs, threads] = process.argv.slice(2);
  const W = Number(w), H = Number(h), n = W * H;
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = ((i * 37) % 100) - 50;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 1, H, W]) };
  for (let i = 0; i < 2; i++) await session.run(feeds);
  const t = [];
  for (let i = 0; i < Number(runs); i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  t.sort((a, b) => a - b);
  console.log(`median ${t[t.length >> 1].toFixed(3)} ms`);
}

main().catch((e) => { console.error(e.message); process.exit(1); });
