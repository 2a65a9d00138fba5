import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { readSecret, type TelemetryConfig } from '../config.js';
import { describeError } from '../errors.js';
import { formatTraceParent, parseTraceParent } from './traceparent.js';

/**
 * Spans of Agate's own work on a command (the proxy handling it, policy deciding it, the ledger
 * recording it), linked through the W3C `traceparent` its events carry. Off unless
 * `telemetry.otlp.endpoint` is set: the services then hold no `Tracing` at all and pay nothing.
 */
export interface Tracing {
  /**
   * Starts a span named `name`, a child of `parent` (a `traceparent` value: the client's, or one
   * an event carries) or, when that is absent or not a valid trace context, the root of a new trace.
   */
  start(name: string, parent: string | null | undefined, options?: { attributes?: Attributes; kind?: 'server' | 'consumer' | 'internal' }): TraceSpan;
  /** Exports what is buffered, then stops exporting (at process stop). */
  shutdown(): Promise<void>;
}

export interface TraceSpan {
  /** This span's context as a `traceparent` value, for the events it produces. */
  readonly traceParent: string;
  /** Adds attributes (what was decided, how many records) before the span ends. */
  set(attributes: Attributes): void;
  /** Ends the span; with `error`, its status is ERROR and the error's description its message. */
  end(error?: unknown): void;
}

interface OtlpTracingOptions {
  /** OTLP/HTTP base URL, e.g. `http://collector:4318` (`/v1/traces` is appended). */
  endpoint: string;
  /** `service.name` of the spans' resource. */
  serviceName: string;
  /** `service.instance.id` (the process's `instance_id`). */
  instanceId: string;
  /** Extra HTTP headers on every export (a collector's credentials). */
  headers?: Readonly<Record<string, string>>;
}

const KINDS = { server: SpanKind.SERVER, consumer: SpanKind.CONSUMER, internal: SpanKind.INTERNAL } as const;

/**
 * Tracing that exports over OTLP/HTTP (protobuf) in batches, off the request path: a span costs
 * its ids and attributes; the batch processor drops spans rather than queue without bound when
 * the collector is away (its queue holds 2,048), and an export failure never reaches a command.
 */
function otlpTracing(options: OtlpTracingOptions): Tracing {
  const exporter = new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces`, headers: { ...options.headers } });
  return sdkTracing(new BatchSpanProcessor({ exporter, scheduledDelayMillis: 1_000 }), { 'service.name': options.serviceName, 'service.instance.id': options.instanceId });
}

/** Tracing over the OpenTelemetry SDK, its spans handed to `processor` (tests give an in-memory one). */
export function sdkTracing(processor: SpanProcessor, resource: Attributes): Tracing {
  const provider = new TracerProvider({
    resource: resourceFromAttributes(resource),
    // A client that did not sample its trace is followed; a trace Agate starts is recorded.
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [processor],
  });
  const tracer: Tracer = provider.getTracer('agate');
  return {
    start(name, parent, opts = {}) {
      const tp = parseTraceParent(parent);
      const context = tp === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, { traceId: tp.traceId, spanId: tp.spanId, traceFlags: tp.flags & TraceFlags.SAMPLED, isRemote: true });
      const span = tracer.startSpan(name, { kind: KINDS[opts.kind ?? 'internal'], attributes: opts.attributes }, context);
      return new OtelSpan(span);
    },
    shutdown: () => provider.shutdown(),
  };
}

/** The process's tracing as `telemetry` configures it: undefined (off) without an OTLP endpoint. */
export function tracingFromConfig(telemetry: TelemetryConfig, instanceId: string): Tracing | undefined {
  const { endpoint, headers, service_name } = telemetry.otlp;
  if (endpoint === undefined) return undefined;
  const resolved = Object.fromEntries(Object.entries(headers).map(([name, ref]) => [name, readSecret(ref, `telemetry.otlp.headers.${name}`)]));
  return otlpTracing({ endpoint, serviceName: service_name, instanceId, headers: resolved });
}

class OtelSpan implements TraceSpan {
  readonly traceParent: string;
  #ended = false;

  constructor(private readonly span: Span) {
    const c = span.spanContext();
    this.traceParent = formatTraceParent({ traceId: c.traceId, spanId: c.spanId, flags: c.traceFlags });
  }

  set(attributes: Attributes): void {
    this.span.setAttributes(attributes);
  }

  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error !== undefined) this.span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(error) });
    this.span.end();
  }
}
