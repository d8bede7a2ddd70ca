/**
 * A bare wasi:http handler for the benchmarks (bench/edge.ts): what a component answering
 * "hello" costs on the same host, beside which the homeserver component's figures are read.
 */
addEventListener('fetch', (event) => {
  (event as Event & { respondWith(response: Response): void }).respondWith(new Response('hello'));
});
