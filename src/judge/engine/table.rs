//! Every point's alarms in one vector, each point's a contiguous run.
//!
//! A `Vec<Alarm>` per point cost its 24-byte header in the point's state plus a heap
//! block of its own (allocator header and rounding) for two or three alarms: at 50,000
//! points about 2 MB, and 50,000 small blocks scattered through the heap. One vector and
//! a start index per point keep the same alarms in one allocation. A point's run changes
//! length only when a threshold change sets a new limit — rare enough to splice.

use super::super::alarm::Alarm;

#[derive(Debug, Clone, Default)]
pub(in crate::judge) struct AlarmTable {
    alarms: Vec<Alarm>,
    /// Point `i`'s alarms are `alarms[starts[i]..starts[i + 1]]`; one more entry than
    /// points.
    starts: Vec<usize>,
}

impl AlarmTable {
    /// Builds the table from each point's alarms, in point order.
    pub(super) fn build(points: usize, mut alarms_of: impl FnMut(usize, &mut Vec<Alarm>)) -> Self {
        let mut alarms = Vec::new();
        let mut starts = Vec::with_capacity(points + 1);
        for i in 0..points {
            starts.push(alarms.len());
            alarms_of(i, &mut alarms);
        }
        starts.push(alarms.len());
        // Grown by doubling, the vector may have room for twice what it holds.
        alarms.shrink_to_fit();
        Self { alarms, starts }
    }

    /// Point `i`'s alarms.
    pub(in crate::judge) fn of(&self, i: usize) -> &[Alarm] {
        &self.alarms[self.span(i)]
    }

    pub(in crate::judge) fn of_mut(&mut self, i: usize) -> &mut [Alarm] {
        let span = self.span(i);
        &mut self.alarms[span]
    }

    /// Replaces point `i`'s alarms with `new` (which may be of another length).
    pub(super) fn replace(&mut self, i: usize, new: Vec<Alarm>) {
        let span = self.span(i);
        let (old, len) = (span.len(), new.len());
        self.alarms.splice(span, new);
        for s in &mut self.starts[i + 1..] {
            *s = *s + len - old;
        }
    }

    fn span(&self, i: usize) -> std::ops::Range<usize> {
        self.starts[i]..self.starts[i + 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alarm::{AlarmClass, AlarmKind};

    fn alarm(kind: AlarmKind) -> Alarm {
        Alarm::new(kind, AlarmClass::High)
    }

    fn kinds(t: &AlarmTable, i: usize) -> Vec<AlarmKind> {
        t.of(i).iter().map(|a| a.kind).collect()
    }

    #[test]
    fn each_point_sees_its_own_run_after_a_splice() {
        use AlarmKind::{Fault, Hh, H};
        let mut t = AlarmTable::build(3, |i, out| {
            if i != 1 {
                out.push(alarm(H));
            }
            out.push(alarm(Fault));
        });
        assert_eq!(kinds(&t, 0), [H, Fault]);
        assert_eq!(kinds(&t, 1), [Fault]);
        assert_eq!(kinds(&t, 2), [H, Fault]);
        t.replace(1, vec![alarm(Hh), alarm(H), alarm(Fault)]);
        assert_eq!(kinds(&t, 0), [H, Fault]);
        assert_eq!(kinds(&t, 1), [Hh, H, Fault]);
        assert_eq!(kinds(&t, 2), [H, Fault]);
        t.replace(0, vec![alarm(Fault)]);
        assert_eq!(kinds(&t, 0), [Fault]);
        assert_eq!(kinds(&t, 1), [Hh, H, Fault]);
        assert_eq!(kinds(&t, 2), [H, Fault]);
        t.of_mut(2)[0].bad_quality = true;
        assert!(t.of(2)[0].bad_quality && !t.of(1)[1].bad_quality);
    }
}
