//! A self-metric is declared once, as a [`Spec`], and made twice from it: a Prometheus metric in the
//! registry behind `/metrics`, and an OpenTelemetry instrument for the OTLP exporter. Both sides are
//! always made together ([`Registrar`]), so the two exports cannot drift apart.

use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::metrics::histogram::{Histogram as PromHistogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// Everything both exporters need to know about one metric.
pub struct Spec {
    /// The Prometheus name, after the registry's `tracewatch_` prefix (a counter's samples add `_total`).
    pub prometheus: &'static str,
    /// The OpenTelemetry instrument name.
    pub otel: &'static str,
    pub help: &'static str,
    /// The OpenTelemetry unit (UCUM), "" for a plain count; Prometheus names carry their unit.
    pub unit: &'static str,
    pub kind: Kind,
    /// Label names; every measurement gives their values in this order.
    pub labels: &'static [&'static str],
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Counter,
    /// A level that is set, not added to.
    Gauge,
    Histogram(Buckets),
}

/// Exponential bucket bounds: `count` of them, the first `start`, each `factor` times the one before.
#[derive(Clone, Copy, Debug)]
pub struct Buckets {
    pub start: f64,
    pub factor: f64,
    pub count: u16,
}

impl Buckets {
    fn bounds(self) -> Vec<f64> {
        exponential_buckets(self.start, self.factor, self.count).collect()
    }
}

impl MetricConstructor<PromHistogram> for Buckets {
    fn new_metric(&self) -> PromHistogram {
        PromHistogram::new(self.bounds())
    }
}

type Labels = Vec<(&'static str, String)>;

/// The Prometheus side. A metric without labels is registered alone, so that it is exposed (at zero)
/// before its first measurement, as `name value` rather than `name{} value`.
enum Prom<M, C> {
    Alone(M),
    ByLabels(Family<Labels, M, C>),
}

impl<M, C> Prom<M, C>
where
    M: Metric + TypedMetric + Clone,
    C: MetricConstructor<M> + Clone + Send + Sync + 'static,
{
    fn register(spec: &Spec, registry: &mut Registry, make: C) -> Self {
        if spec.labels.is_empty() {
            let metric = make.new_metric();
            registry.register(spec.prometheus, spec.help, metric.clone());
            Prom::Alone(metric)
        } else {
            let family = Family::new_with_constructor(make);
            registry.register(spec.prometheus, spec.help, family.clone());
            Prom::ByLabels(family)
        }
    }
}

impl<M, C: MetricConstructor<M>> Prom<M, C> {
    fn with(&self, spec: &Spec, values: &[&str], measure: impl FnOnce(&M)) {
        match self {
            Prom::Alone(metric) => measure(metric),
            Prom::ByLabels(family) => {
                let labels = spec
                    .labels
                    .iter()
                    .zip(values)
                    .map(|(&name, &value)| (name, value.to_owned()))
                    .collect();
                measure(&family.get_or_create(&labels));
            }
        }
    }
}

fn otel_labels(spec: &Spec, values: &[&str]) -> Vec<KeyValue> {
    debug_assert_eq!(spec.labels.len(), values.len(), "{}", spec.prometheus);
    spec.labels
        .iter()
        .zip(values)
        .map(|(&name, &value)| KeyValue::new(name, value.to_owned()))
        .collect()
}

/// Makes declared metrics on both sides and keeps the Prometheus registry and the list of what it made.
pub struct Registrar {
    pub registry: Registry,
    meter: Meter,
    pub declared: Vec<&'static Spec>,
}

impl Registrar {
    pub fn new(meter: Meter) -> Self {
        Registrar {
            registry: Registry::with_prefix("tracewatch"),
            meter,
            declared: Vec::new(),
        }
    }

    fn both<M, C, O>(&mut self, spec: &'static Spec, make: C, otel: O) -> Both<M, C, O>
    where
        M: Metric + TypedMetric + Clone,
        C: MetricConstructor<M> + Clone + Send + Sync + 'static,
    {
        self.declared.push(spec);
        Both {
            spec,
            prom: Prom::register(spec, &mut self.registry, make),
            otel,
        }
    }

    pub fn counter(&mut self, spec: &'static Spec) -> Counter {
        assert!(matches!(spec.kind, Kind::Counter), "{}", spec.prometheus);
        let otel = self.meter.u64_counter(spec.otel);
        let otel = otel.with_description(spec.help).with_unit(spec.unit);
        self.both(spec, PromCounter::default, otel.build())
    }

    pub fn gauge(&mut self, spec: &'static Spec) -> Gauge {
        assert!(matches!(spec.kind, Kind::Gauge), "{}", spec.prometheus);
        let otel = self.meter.i64_gauge(spec.otel);
        let otel = otel.with_description(spec.help).with_unit(spec.unit);
        self.both(spec, PromGauge::default, otel.build())
    }

    pub fn histogram(&mut self, spec: &'static Spec) -> Histogram {
        let Kind::Histogram(buckets) = spec.kind else {
            panic!("{} is not declared a histogram", spec.prometheus)
        };
        let otel = self.meter.f64_histogram(spec.otel);
        let otel = otel.with_description(spec.help).with_unit(spec.unit);
        self.both(
            spec,
            buckets,
            otel.with_boundaries(buckets.bounds()).build(),
        )
    }
}

/// One metric on both sides: `M` in Prometheus (made by `C`), `O` in OpenTelemetry.
pub struct Both<M, C, O> {
    spec: &'static Spec,
    prom: Prom<M, C>,
    otel: O,
}

impl<M, C: MetricConstructor<M>, O> Both<M, C, O> {
    /// One measurement, given the values of the declared labels in order.
    fn measure(&self, labels: &[&str], prom: impl FnOnce(&M), otel: impl FnOnce(&O, &[KeyValue])) {
        self.prom.with(self.spec, labels, prom);
        otel(&self.otel, &otel_labels(self.spec, labels));
    }
}

pub type Counter = Both<PromCounter, fn() -> PromCounter, opentelemetry::metrics::Counter<u64>>;
pub type Gauge = Both<PromGauge, fn() -> PromGauge, opentelemetry::metrics::Gauge<i64>>;
pub type Histogram = Both<PromHistogram, Buckets, opentelemetry::metrics::Histogram<f64>>;

impl Counter {
    pub fn add(&self, n: u64, labels: &[&str]) {
        let prom = |c: &PromCounter| {
            c.inc_by(n);
        };
        self.measure(labels, prom, |o, kv| o.add(n, kv));
    }
}

impl Gauge {
    pub fn set(&self, value: i64, labels: &[&str]) {
        let prom = |g: &PromGauge| {
            g.set(value);
        };
        self.measure(labels, prom, |o, kv| o.record(value, kv));
    }
}

impl Histogram {
    pub fn observe(&self, value: f64, labels: &[&str]) {
        let prom = |h: &PromHistogram| h.observe(value);
        self.measure(labels, prom, |o, kv| o.record(value, kv));
    }
}
