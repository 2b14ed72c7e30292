//! The label of one injection while traffic is generated: what it targets, what it causes besides,
//! and the traces it touched.

use crate::gen_traces::labels::{SideEffect, Target};
use crate::gen_traces::topology::Key;
use detect_core::Subtype;
use std::collections::BTreeSet;

/// A label being built while traffic is generated.
#[derive(Debug, Clone)]
pub struct LabelDraft {
    pub subtype: Subtype,
    pub start: u64,
    pub end: u64,
    pub targets: BTreeSet<Target>,
    pub side_effects: BTreeSet<SideEffect>,
    pub traces: Vec<[u8; 16]>,
    pub description: String,
    /// Placed just past a detector's default rule (`near_threshold`).
    pub near_threshold: bool,
    /// Where the injection starts (the label's `origin`).
    pub origin: Option<Target>,
}

impl LabelDraft {
    pub(super) fn new(subtype: Subtype, start: u64, end: u64, description: String) -> Self {
        LabelDraft {
            subtype,
            start,
            end,
            targets: BTreeSet::new(),
            side_effects: BTreeSet::new(),
            traces: Vec::new(),
            description,
            near_threshold: false,
            origin: None,
        }
    }

    pub(super) fn add_trace(&mut self, trace_id: [u8; 16]) {
        if self.traces.last() != Some(&trace_id) {
            self.traces.push(trace_id);
        }
    }

    /// Names `key` as where the injection starts.
    pub(super) fn origin_at(&mut self, (service, operation): &Key) {
        self.origin = Some(Target {
            service: Some(service.clone()),
            operation: Some(operation.clone()),
            ..Target::default()
        });
    }

    pub(super) fn key_target(&mut self, (service, operation): &Key) {
        self.targets.insert(Target {
            service: Some(service.clone()),
            operation: Some(operation.clone()),
            ..Target::default()
        });
    }

    pub(super) fn side_effect(
        &mut self,
        subtype: Subtype,
        key: Option<&Key>,
        client: Option<&str>,
        trace: Option<[u8; 16]>,
    ) {
        self.side_effects.insert(SideEffect {
            anomaly_type: subtype.anomaly_type().as_str().to_owned(),
            subtype: subtype.as_str().to_owned(),
            service: key.map(|k| k.0.clone()),
            operation: key.map(|k| k.1.clone()),
            client: client.map(str::to_owned),
            trace_id: trace.map(hex::encode),
        });
    }
}
