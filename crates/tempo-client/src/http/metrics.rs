//! TraceQL metrics, `GET /api/metrics/query_range`: exact rates and error counts per (service,
//! operation) without fetching traces. Answers are `series[]` of `labels` and `samples`;
//! `timestampMs` is a string, and a sample whose value is 0 comes without `value` (proto3 JSON leaves
//! zeros out), which reads as 0. A Tempo with metrics turned off, or asked about a range it cannot
//! answer (`time range must be within last 20m0s`), answers an error: callers fall back to counting
//! search results and say so.

use super::{TempoClient, TempoError, TempoResult, success_json};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One series: its labels (`resource.service.name`, `name`, …) and samples in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsSeries {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<MetricsSample>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricsSample {
    pub timestamp_ms: u64,
    pub value: f64,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    series: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    labels: Vec<RawLabel>,
    #[serde(default)]
    samples: Vec<RawSample>,
}

#[derive(Deserialize)]
struct RawLabel {
    key: String,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSample {
    timestamp_ms: serde_json::Value,
    #[serde(default)]
    value: Option<f64>,
}

/// A label value as TraceQL metrics writes it: `{"stringValue": …}`, `{"intValue": …}` and so on.
fn label_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => map
            .values()
            .next()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number(value: &serde_json::Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

pub fn parse_query_range(body: &[u8]) -> Result<Vec<MetricsSeries>, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    answer
        .series
        .into_iter()
        .map(|s| {
            let labels = s
                .labels
                .into_iter()
                .map(|l| (l.key, label_text(&l.value)))
                .collect();
            let mut samples = s
                .samples
                .into_iter()
                .map(|p| {
                    Ok(MetricsSample {
                        timestamp_ms: number(&p.timestamp_ms).ok_or_else(|| {
                            format!("a sample's timestampMs is {}", p.timestamp_ms)
                        })?,
                        value: p.value.unwrap_or(0.0),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            samples.sort_by_key(|p| p.timestamp_ms);
            Ok(MetricsSeries { labels, samples })
        })
        .collect()
}

impl TempoClient {
    /// `query` over `[start, end)` (Unix seconds) in steps of `step_seconds`.
    pub async fn metrics_query_range(
        &self,
        query: &str,
        start: u64,
        end: u64,
        step_seconds: u64,
    ) -> TempoResult<Vec<MetricsSeries>> {
        let what = format!("GET /api/metrics/query_range [{start}, {end})");
        let answer = self
            .get(
                &what,
                "/api/metrics/query_range",
                &[
                    ("q", query.to_owned()),
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("step", format!("{step_seconds}s")),
                ],
                "application/json",
            )
            .await?;
        let body = success_json(&what, &answer)?;
        parse_query_range(&body).map_err(|message| TempoError::Malformed {
            request: what,
            message,
        })
    }
}

/// Spans counted by Tempo for one (service, operation) over a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanCount {
    pub service: String,
    pub operation: String,
    pub spans: u64,
    pub errors: u64,
}

/// Every span, by service and operation.
const ALL_SPANS: &str = "{ } | count_over_time() by (resource.service.name, name)";
/// The spans detect-core counts as errors (`Span::is_error`): status error, or a server span that
/// answered 5xx (under the current and the older HTTP attribute name).
const ERROR_SPANS: &str = "{ status = error || (kind = server && span.http.response.status_code >= 500) \
     || (kind = server && span.http.status_code >= 500) } | count_over_time() by (resource.service.name, name)";

/// Sums a series' samples per (service, operation). Every sample of the answer lies in the asked
/// range, so the sum is the range's count whichever end of its step a Tempo version stamps a sample with.
fn sum_by_key(series: &[MetricsSeries]) -> BTreeMap<(String, String), u64> {
    let mut sums = BTreeMap::new();
    for s in series {
        let (Some(service), Some(operation)) =
            (s.labels.get("resource.service.name"), s.labels.get("name"))
        else {
            continue;
        };
        let total: f64 = s.samples.iter().map(|p| p.value).sum();
        *sums
            .entry((service.clone(), operation.clone()))
            .or_default() += total.round().max(0.0) as u64;
    }
    sums
}

impl TempoClient {
    /// Exact span and error counts per (service, operation) in `[start, end)` (Unix seconds), from
    /// TraceQL metrics. Fails where Tempo has metrics turned off or cannot answer for the range.
    pub async fn span_counts(&self, start: u64, end: u64) -> TempoResult<Vec<SpanCount>> {
        let step = end.saturating_sub(start).max(1);
        let spans = self
            .metrics_query_range(ALL_SPANS, start, end, step)
            .await?;
        let errors = sum_by_key(
            &self
                .metrics_query_range(ERROR_SPANS, start, end, step)
                .await?,
        );
        Ok(sum_by_key(&spans)
            .into_iter()
            .map(|((service, operation), spans)| {
                let errors = errors
                    .get(&(service.clone(), operation.clone()))
                    .copied()
                    .unwrap_or(0);
                SpanCount {
                    service,
                    operation,
                    spans,
                    errors,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn rates_with_left_out_zero_values_read_as_zero() {
        let series = parse_query_range(&fixture("metrics_query_range_rate.json")).unwrap();
        let first = &series[0];
        assert_eq!(first.labels["resource.service.name"], "checkout-api");
        assert_eq!(first.labels["name"], "GET /api/orders");
        assert_eq!(
            first.samples[0],
            MetricsSample {
                timestamp_ms: 1_795_546_500_000,
                value: 0.0
            }
        );
        assert!((first.samples[2].value - 4.083_333).abs() < 1e-3);
        assert!(
            first
                .samples
                .windows(2)
                .all(|w| w[0].timestamp_ms < w[1].timestamp_ms)
        );
    }

    #[test]
    fn error_counts_are_read_and_garbage_is_an_error() {
        let series = parse_query_range(&fixture("metrics_query_range_errors.json")).unwrap();
        assert!(!series.is_empty());
        assert!(
            parse_query_range(b"{\"series\": [{\"samples\": [{\"timestampMs\": true}]}]}").is_err()
        );
        assert!(parse_query_range(b"not json").is_err());
        assert_eq!(parse_query_range(b"{}").unwrap(), vec![]);
    }

    #[test]
    fn counts_are_the_sum_of_a_series_samples_per_key() {
        let series = parse_query_range(&fixture("metrics_query_range_errors.json")).unwrap();
        let sums = sum_by_key(&series);
        let key = ("checkout-api".to_owned(), "GET /api/orders".to_owned());
        // The recorded answer: one sample of 19 errors, the others left out as zeros.
        assert_eq!(sums[&key], 19);
        let unlabelled = MetricsSeries {
            labels: BTreeMap::new(),
            samples: vec![MetricsSample {
                timestamp_ms: 0,
                value: 3.0,
            }],
        };
        assert!(sum_by_key(&[unlabelled]).is_empty());
    }
}
