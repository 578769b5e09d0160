//! A node: ports with roles, one worker's table copy and counters, as one [`Pipeline`].

use super::{access, core, handoff, Cx, PortConfig, PortRole};
use crate::counters::{Counters, DropReason};
use crate::frame::Frame;
use crate::pipeline::{Pipeline, Verdict};
use crate::table::handoff::handoff_key;
use crate::table::preload::{PreloadError, PreloadTables};
use crate::table::updates::{Drained, UpdateReceiver};
use crate::table::{IlmAction, PrefetchFn, Tables};
use crate::trace::Lookup;

/// Headend, transit and tailend in one, chosen per frame by the role of its receive port.
///
/// One `Node` per worker: it owns the worker's table copy and counters. The pipeline counts
/// its own verdicts (forwarded per ISP, punts, drops by reason); the worker loop counts only
/// the drops it decides itself (`TxFull`, `PuntRingFull`) in its own block and publishes
/// both added up ([`crate::shared::SharedCounters::publish`]).
pub struct Node {
    ports: Box<[PortConfig]>,
    tables: Tables,
    counters: Counters,
    /// The headend's keys of prefetched bursts.
    ahead: Box<access::LookAhead>,
    /// The headend's push plans by ISP id, and the ISP table generation they were worked
    /// out from.
    pushes: Box<[access::PushPlan]>,
    pushes_of: Option<u64>,
    unregistered: super::budget::PuntBudget,
}

impl Node {
    /// A node over `ports` (indexed by DPDK port id order) with these tables.
    pub fn new(ports: Vec<PortConfig>, tables: Tables) -> Self {
        let counters = Counters::new(tables.limits().max_isps);
        Self {
            ports: ports.into_boxed_slice(),
            counters,
            ahead: Box::default(),
            pushes: vec![access::PushPlan::default(); tables.isps.len()].into_boxed_slice(),
            pushes_of: None,
            unregistered: super::budget::PuntBudget::new(super::budget::monotonic_ns),
            tables,
        }
    }

    /// A node whose tables are built from the configuration preload.
    pub fn from_preload(
        ports: Vec<PortConfig>,
        preload: &PreloadTables,
    ) -> Result<Self, PreloadError> {
        Ok(Self::new(ports, preload.build()?))
    }

    /// Lets the tables prefetch with `f` (e.g. the `sys` crate's `prefetch0`).
    pub fn set_prefetch(&mut self, f: Option<PrefetchFn>) {
        self.tables.set_prefetch(f);
    }

    /// Replays at most `max` pending table writes from the slow path: call between bursts.
    pub fn apply_updates(&mut self, rx: &UpdateReceiver, max: usize) -> Drained {
        let d = rx.apply_pending(&mut self.tables, max);
        self.unregistered.recheck();
        self.counters.worker.updates_applied += d.applied;
        self.counters.worker.updates_refused += d.refused;
        d
    }

    /// The worker's tables (read only; change them with updates).
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The node's ports.
    pub fn ports(&self) -> &[PortConfig] {
        &self.ports
    }

    /// The worker's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

impl Pipeline for Node {
    fn process<F: Frame>(&mut self, rx_port: u16, frames: &mut [F], verdicts: &mut [Verdict]) {
        let n = frames.len().min(verdicts.len());
        let (frames, verdicts) = (&mut frames[..n], &mut verdicts[..n]);
        let role = self
            .ports
            .get(usize::from(rx_port))
            .map_or(PortRole::Unused, |p| p.role);
        let generation = self.tables.isps.generation();
        if self.pushes_of != Some(generation) {
            // ISP entries change rarely (a label learned, an ISP added): work the plans out
            // again in place, without allocating.
            access::plan_pushes(&self.tables, &self.ports, &mut self.pushes);
            self.pushes_of = Some(generation);
        }
        let mut cx = Cx {
            tables: &self.tables,
            ports: &self.ports,
            pushes: &self.pushes,
            counters: &mut self.counters,
            unregistered: &mut self.unregistered,
        };
        // `true`: the pipeline forwarded every frame and counted them itself.
        let counted = match role {
            PortRole::Access => {
                access::upstream(&mut cx, &mut self.ahead, rx_port, frames, verdicts)
            }
            PortRole::Core => core::ilm(&mut cx, rx_port, frames, verdicts),
            PortRole::Handoff => {
                handoff::downstream(&mut cx, rx_port, frames, verdicts);
                false
            }
            PortRole::Unused => {
                verdicts.fill(Verdict::Drop(DropReason::NoRoute));
                false
            }
        };
        if counted {
            return;
        }
        for v in verdicts.iter() {
            match *v {
                Verdict::Drop(r) => self.counters.drop(r),
                Verdict::Punt => self.counters.worker.punts += 1,
                Verdict::Forward(_) => {}
            }
        }
    }

    fn counters(&self) -> Option<&Counters> {
        Some(&self.counters)
    }

    fn trace_lookup<F: Frame>(&self, rx_port: u16, frame: &F) -> Lookup {
        let d = frame.data();
        let t = &self.tables;
        let role = self.ports.get(usize::from(rx_port)).map(|p| p.role);
        let isp = match role {
            Some(PortRole::Access) => access::subscriber_key(rx_port, d)
                .and_then(|k| t.subscribers.get(&k))
                .map(|s| s.isp()),
            Some(PortRole::Handoff) => super::classify::parse_l2(d)
                .ok()
                .and_then(|l2| handoff_key(rx_port, l2.outer_vid))
                .and_then(|k| t.handoffs.get(&k))
                .map(|h| h.isp()),
            Some(PortRole::Core) => {
                let label = core::top_label(d);
                let isp = label
                    .and_then(|l| t.ilm.get(&l))
                    .and_then(|e| match e.action() {
                        IlmAction::PopDeliver { isp } | IlmAction::PopHandoff { isp, .. } => {
                            Some(isp)
                        }
                        IlmAction::Swap { .. } => None,
                    });
                return Lookup { isp, label };
            }
            _ => None,
        };
        // The label the headend (access) or the tailend (hand-off) pushes for that ISP.
        let entry = isp.and_then(|i| t.isps.get(i));
        let fec = match role {
            Some(PortRole::Access) => entry.and_then(|e| e.upstream),
            _ => entry.and_then(|e| e.downstream),
        };
        Lookup {
            isp,
            label: fec.map(|f| f.label),
        }
    }

    fn prefetch<F: Frame>(&mut self, rx_port: u16, frames: &[F]) {
        match self.ports.get(usize::from(rx_port)).map(|p| p.role) {
            Some(PortRole::Access) => self.ahead.prefetch(&self.tables, rx_port, frames),
            Some(PortRole::Core) => core::prefetch(&self.tables, frames),
            _ => {}
        }
    }
}
