//! What each built trace adds to the labels: the spans a fault failed, the calls skipped behind it,
//! and the traffic of attacks.

use super::Plan;
use crate::gen_traces::labels::{SideEffect, Target};
use crate::gen_traces::topology::{Key, Topology};
use crate::gen_traces::trace::{SpanRec, Trace};
use detect_core::Subtype;
use std::collections::BTreeSet;

impl Plan {
    /// What a built trace tells the labels: faults, skipped calls, attack traffic.
    pub(super) fn record_trace(&mut self, topo: &Topology, trace: &Trace) {
        for span in &trace.spans {
            let Some(label) = span.fault else { continue };
            let key = topo.key(span.service, span.op);
            let draft = &mut self.labels[label];
            if draft.subtype == Subtype::ErrorRateSpike {
                draft.key_target(&key);
            } else {
                draft.side_effect(Subtype::ErrorRateSpike, Some(&key), None, None);
            }
            draft.add_trace(trace.trace_id);
        }
        for (label, key) in &trace.skipped {
            let draft = &mut self.labels[*label];
            draft.side_effect(Subtype::ThroughputDrop, Some(key), None, None);
            // A skipped call changes what its caller calls, and the caller's time no longer splits
            // into the callee's: its call path and own time move. The trace does not say which span
            // would have called, so any caller's window finding of these kinds is the injection's.
            draft.side_effect(Subtype::CallPathChange, None, None, None);
            draft.side_effect(Subtype::LatencyDegradation, None, None, None);
            if draft.subtype == Subtype::ServiceSilent {
                let service = (key.0.clone(), String::new());
                draft.side_effects.insert(SideEffect {
                    anomaly_type: "PERFORMANCE".into(),
                    subtype: Subtype::ServiceSilent.as_str().into(),
                    service: Some(service.0),
                    operation: None,
                    client: None,
                    trace_id: None,
                });
            }
        }
        for &label in &trace.labels {
            let draft = &mut self.labels[label];
            let root = &trace.spans[0];
            if draft.traces.is_empty() {
                draft.start = root.start;
            }
            draft.end = draft
                .end
                .max(trace.spans.iter().map(SpanRec::end).max().unwrap_or(0));
            draft.add_trace(trace.trace_id);
            let client = trace.caller.ip.clone();
            match draft.subtype {
                Subtype::SensitiveRouteNewPrincipal => {
                    draft.targets.insert(Target {
                        service: Some(topo.service_name(root.service).to_owned()),
                        operation: Some(topo.ops[root.op].name.clone()),
                        client: Some(client),
                        trace_id: None,
                        span_id: None,
                    });
                }
                Subtype::RequestFlood
                | Subtype::AuthFailureBurst
                | Subtype::EndpointEnumeration => {
                    let keys: BTreeSet<Key> = trace
                        .spans
                        .iter()
                        .map(|s| topo.key(s.service, s.op))
                        .collect();
                    for key in &keys {
                        draft.side_effect(Subtype::ThroughputSpike, Some(key), None, None);
                    }
                    if draft.subtype == Subtype::RequestFlood {
                        // Thousands of normal requests draw a few normal 404s too.
                        draft.side_effect(Subtype::EndpointEnumeration, None, Some(&client), None);
                    }
                }
                _ => {}
            }
        }
    }
}
