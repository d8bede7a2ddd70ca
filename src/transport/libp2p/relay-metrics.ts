/**
 * Byte counters for a relay, through libp2p's `metrics` hook: libp2p hands every connection
 * (`trackMultiaddrConnection`) and every negotiated stream (`trackProtocolStream`) to it. We
 * count what the relay *sends* — wrapping `send` adds no listener, so it changes nothing about
 * how data flows — on every connection (all traffic) and on circuit relay hop/stop streams
 * (relayed traffic: the relay writes each relayed byte once, to the other side's stream).
 * The metric registries libp2p also asks for are answered with inert objects.
 */
import type { Metrics, MultiaddrConnection, Stream } from '@libp2p/interface';

const HOP = '/libp2p/circuit/relay/0.2.0/hop';
const STOP = '/libp2p/circuit/relay/0.2.0/stop';

export interface ByteCounters {
  /** Bytes the relay wrote on all its connections (after encryption and muxing). */
  sentBytes: number;
  /** Bytes the relay forwarded between the two sides of circuits. */
  relayedBytes: number;
}

/** An object every method call and property read of which returns itself: a metric nobody reads. */
const inert: unknown = new Proxy(() => inert, {
  get: (_target, key) => (key === 'then' ? undefined : inert),
  apply: () => inert,
});

function countSends(
  target: { send(data: Uint8Array | { byteLength: number }): boolean },
  add: (n: number) => void,
) {
  const send = target.send.bind(target);
  target.send = (data) => {
    add(data.byteLength);
    return send(data as Uint8Array);
  };
}

export function countingMetrics(): { counters: ByteCounters; metrics: () => Metrics } {
  const counters: ByteCounters = { sentBytes: 0, relayedBytes: 0 };
  const metrics = {
    trackMultiaddrConnection(maConn: MultiaddrConnection) {
      countSends(maConn as never, (n) => {
        counters.sentBytes += n;
      });
    },
    trackProtocolStream(stream: Stream) {
      if (stream.protocol !== HOP && stream.protocol !== STOP) return;
      countSends(stream as never, (n) => {
        counters.relayedBytes += n;
      });
    },
    registerMetric: () => inert,
    registerMetricGroup: () => inert,
    registerCounter: () => inert,
    registerCounterGroup: () => inert,
    registerHistogram: () => inert,
    registerHistogramGroup: () => inert,
    registerSummary: () => inert,
    registerSummaryGroup: () => inert,
    traceFunction: <F>(_name: string, fn: F) => fn,
    createTrace: () => undefined,
  };
  return { counters, metrics: () => metrics as unknown as Metrics };
}
