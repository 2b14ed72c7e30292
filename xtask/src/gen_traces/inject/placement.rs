//! When an injection goes: a random start where it touches no keys of another injection at the same
//! time (with a margin), or, one at a time, no other injection at all; then committing it to the plan.

use super::candidates::random_candidate;
use super::trace_mutations::{TraceInjection, TraceKind};
use super::windows::WindowKind;
use super::{ALONE_GAP_SECONDS, Plan, Spacing};
use crate::gen_traces::topology::{Key, Topology};
use crate::gen_traces::traffic::{NANOS_PER_SEC, Population, Traffic};
use detect_core::Subtype;
use rand::Rng;
use rand::rngs::StdRng;
use std::collections::BTreeSet;

/// Margin kept between injections that touch the same keys.
const MARGIN: u64 = 120 * NANOS_PER_SEC;

/// A candidate injection: (duration, primary tags, affected tags, what).
pub(super) type Placement = (u64, BTreeSet<String>, BTreeSet<String>, Candidate);

#[derive(Debug, Clone, Copy)]
pub(super) enum Candidate {
    Window(WindowKind),
    Attack,
    Trace(TraceKind),
}

/// What occupies keys for a while, for placement.
pub(super) struct Footprint {
    start: u64,
    end: u64,
    primary: BTreeSet<String>,
    affected: BTreeSet<String>,
}

impl Footprint {
    fn conflicts(&self, other: &Footprint, spacing: Spacing) -> bool {
        let near = |margin: u64| self.start < other.end + margin && other.start < self.end + margin;
        if spacing == Spacing::OneAtATime {
            return near(ALONE_GAP_SECONDS * NANOS_PER_SEC);
        }
        near(MARGIN)
            && (!self.primary.is_disjoint(&other.primary)
                || !self.primary.is_disjoint(&other.affected)
                || !self.affected.is_disjoint(&other.primary))
    }
}

pub(super) fn tag((service, operation): &Key) -> String {
    format!("{service}|{operation}")
}

pub(super) fn tags(keys: &BTreeSet<Key>) -> BTreeSet<String> {
    keys.iter().map(tag).collect()
}

impl Plan {
    /// Tries to place one injection of `subtype` somewhere in `[first, limit)`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn place(
        &mut self,
        topo: &Topology,
        traffic: &Traffic,
        population: &Population,
        rates: &[f64],
        rng: &mut StdRng,
        subtype: Subtype,
        first: u64,
        limit: u64,
    ) -> bool {
        self.place_with(
            topo,
            traffic,
            population,
            rng,
            subtype,
            (first, limit),
            |rng| random_candidate(topo, traffic, rates, rng, subtype),
        )
    }

    /// Tries to place one injection of `subtype` drawn by `candidate` somewhere in `[first, limit)`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn place_with(
        &mut self,
        topo: &Topology,
        traffic: &Traffic,
        population: &Population,
        rng: &mut StdRng,
        subtype: Subtype,
        (first, limit): (u64, u64),
        mut candidate: impl FnMut(&mut StdRng) -> Option<Placement>,
    ) -> bool {
        for _attempt in 0..400 {
            let Some((dur, primary, affected, kind)) = candidate(rng) else {
                return false;
            };
            if limit <= first + dur {
                return false;
            }
            let start = rng.random_range(first..limit - dur);
            let start = start - start % NANOS_PER_SEC;
            let footprint = Footprint {
                start,
                end: start + dur,
                primary,
                affected,
            };
            if self
                .footprints
                .iter()
                .any(|f| f.conflicts(&footprint, self.spacing))
            {
                continue;
            }
            self.footprints.push(footprint);
            self.commit(
                topo,
                traffic,
                population,
                rng,
                subtype,
                kind,
                start,
                start + dur,
            );
            return true;
        }
        false
    }

    /// Makes the placed candidate real: its label, and its windows, attack requests or pending
    /// trace injection.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        topo: &Topology,
        traffic: &Traffic,
        population: &Population,
        rng: &mut StdRng,
        subtype: Subtype,
        candidate: Candidate,
        start: u64,
        end: u64,
    ) {
        match candidate {
            Candidate::Window(kind) => self.commit_window(topo, subtype, kind, start, end),
            Candidate::Attack => {
                self.commit_attack(topo, traffic, population, rng, subtype, start, end);
            }
            Candidate::Trace(kind) => {
                let at = start;
                self.pending.push_back(TraceInjection { at, kind });
            }
        }
    }
}
