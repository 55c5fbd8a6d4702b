//! What is in flight between the spool and the broker: pure state, no I/O (like
//! rumqttc's `MqttState` beside its event loop), so every delivery rule is a unit test.
//!
//! A spooled record is *handed over* to the MQTT client, which gives it a packet id
//! (reported as `Sent`, in hand-over order); its PUBACK then *releases* it (the caller
//! removes it from the spool). A PUBACK with an MQTT 5 failure reason *refuses* it: it
//! keeps its in-flight slot until [`REFUSED_RETRY`] has passed, then may be handed over
//! again — never dropped, never resent in a tight loop. A new connection is a new
//! session: nothing is in flight any more, and everything unacknowledged is sent again.
//!
//! It also decides when the spool is worth reading, because each read is a round trip
//! to the spool's thread (two thread wake-ups): only when the spool may hold a record
//! not yet handed over ([`Delivery::spool_changed`] after a commit, a new session, a
//! refusal come due, or a read that filled all the room it had), and released records
//! are removed in one batch with that read ([`Delivery::take_released`]) rather than
//! one removal per PUBACK.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// How long a message an MQTT 5 broker refused (quota exceeded, not authorised, …)
/// waits before it is sent again.
pub const REFUSED_RETRY: Duration = Duration::from_secs(10);

/// What a PUBACK meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// The broker has the record with this seq: remove it from the spool.
    Released(u64),
    /// The broker refused it: it stays in the spool and is sent again later.
    Refused(u64),
    /// A packet that carried no spooled record (the goodbye), or a duplicate PUBACK.
    Foreign,
}

/// Which spooled record each QoS 1 publish carries, from hand-over to PUBACK.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Handed over, packet id not yet known (rumqttc reports ids in hand-over order).
    awaiting_pkid: VecDeque<u64>,
    by_pkid: HashMap<u16, u64>,
    /// Every seq handed over and not yet released (refused ones too, until due).
    handed: HashSet<u64>,
    /// Refused seqs and when they were refused.
    refused: Vec<(Instant, u64)>,
    /// Released seqs not yet removed from the spool: they outlive a session (the
    /// broker has them), and are skipped by nothing, so they are removed before the
    /// next read of the spool.
    released: Vec<u64>,
    /// The spool may hold records that were not read: false only after a read that
    /// found less than it asked for, until the spool changes again.
    settled: bool,
}

impl Delivery {
    /// How many more records may be handed over with `limit` in flight at once; refused
    /// records whose retry is due are released first.
    pub fn room(&mut self, limit: u16, now: Instant) -> usize {
        self.release_refused(now);
        usize::from(limit).saturating_sub(self.handed.len())
    }

    /// How many records to read from the spool now, with `limit` in flight at once: 0
    /// when the spool holds nothing unread, or when the room is too small for a read to
    /// be worth its round trip (a quarter of the window, or anything once nothing is in
    /// flight).
    pub fn to_read(&mut self, limit: u16, now: Instant) -> usize {
        let room = self.room(limit, now);
        let worth_it = room >= usize::from(limit / 4).max(1) || self.handed.is_empty();
        if self.settled || room == 0 || !worth_it {
            return 0;
        }
        room
    }

    /// A read of `asked` records found `found`: if fewer, the spool holds nothing more
    /// to send until it changes.
    pub fn read(&mut self, asked: usize, found: usize) {
        self.settled = found < asked;
    }

    /// The spool may hold records not read yet: something was committed, or a read's
    /// records could not all be handed over.
    pub fn spool_changed(&mut self) {
        self.settled = false;
    }

    /// Whether the spool may hold records not read yet.
    pub fn unread(&self) -> bool {
        !self.settled
    }

    /// The seqs released since the last call, to remove from the spool.
    pub fn take_released(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.released)
    }

    /// Whether `seq` is in flight (and so not to be read from the spool again).
    pub fn contains(&self, seq: u64) -> bool {
        self.handed.contains(&seq)
    }

    /// How many records are in flight.
    pub fn in_flight_count(&self) -> usize {
        self.handed.len()
    }

    /// The seqs in flight, for a read of what to send next that skips them.
    pub fn in_flight(&self) -> HashSet<u64> {
        self.handed.clone()
    }

    pub fn handed_over(&mut self, seq: u64) {
        self.awaiting_pkid.push_back(seq);
        self.handed.insert(seq);
    }

    /// The client sent the oldest handed-over record as packet `pkid`.
    pub fn sent(&mut self, pkid: u16) {
        if let Some(seq) = self.awaiting_pkid.pop_front() {
            self.by_pkid.insert(pkid, seq);
        }
    }

    /// A PUBACK for `pkid`, refused or not.
    pub fn acked(&mut self, pkid: u16, refused: bool, now: Instant) -> Ack {
        let Some(seq) = self.by_pkid.remove(&pkid) else {
            return Ack::Foreign;
        };
        if refused {
            self.refused.push((now, seq));
            Ack::Refused(seq)
        } else {
            self.handed.remove(&seq);
            self.released.push(seq);
            Ack::Released(seq)
        }
    }

    fn release_refused(&mut self, now: Instant) {
        let handed = &mut self.handed;
        let mut due_any = false;
        self.refused.retain(|(at, seq)| {
            let due = now.duration_since(*at) >= REFUSED_RETRY;
            if due {
                handed.remove(seq);
                due_any = true;
            }
            !due
        });
        // A refused record is in the spool again for the next read.
        self.settled &= !due_any;
    }

    /// Whether a PUBACK is still expected.
    pub fn awaiting_ack(&self) -> bool {
        !self.by_pkid.is_empty() || !self.awaiting_pkid.is_empty()
    }

    /// A new connection is a new session: nothing is in flight any more, and every
    /// unacknowledged record is to be read again. What was released stays to be
    /// removed.
    pub fn clear(&mut self) {
        let released = std::mem::take(&mut self.released);
        *self = Self {
            released,
            ..Self::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_map_to_seqs_in_hand_over_order_and_refusals_hold_their_slot() {
        let mut f = Delivery::default();
        let t0 = Instant::now();
        for seq in [7, 8, 9] {
            f.handed_over(seq);
        }
        f.sent(1);
        f.sent(2);
        assert_eq!(f.acked(2, false, t0), Ack::Released(8));
        assert_eq!(f.acked(2, false, t0), Ack::Foreign, "a PUBACK counts once");
        assert!(f.awaiting_ack());
        assert_eq!(f.acked(1, true, t0), Ack::Refused(7));
        assert_eq!(f.room(3, t0 + REFUSED_RETRY / 2), 1);
        assert!(
            f.contains(7),
            "a refused record is not handed over again at once"
        );
        f.sent(3);
        assert_eq!(f.acked(3, false, t0), Ack::Released(9));
        assert!(!f.awaiting_ack());
        assert_eq!(f.room(3, t0 + REFUSED_RETRY), 3);
        assert!(!f.contains(7), "… but once its retry is due");
    }

    #[test]
    fn the_spool_is_read_only_when_it_may_hold_something_unread() {
        let mut d = Delivery::default();
        let t0 = Instant::now();
        assert_eq!(d.to_read(8, t0), 8, "a new session reads");
        d.read(8, 3);
        assert_eq!(
            d.to_read(8, t0),
            0,
            "the spool gave less than asked: nothing more"
        );
        d.spool_changed();
        assert_eq!(d.to_read(8, t0), 8, "a commit: read again");
        d.read(8, 8);
        for seq in 1..=8 {
            d.handed_over(seq);
        }
        assert_eq!(d.to_read(8, t0), 0, "no room");
        for (pkid, seq) in (1..=8).zip(1..=8) {
            d.sent(pkid);
            assert_eq!(d.acked(pkid, false, t0), Ack::Released(seq));
            if seq == 1 {
                assert_eq!(
                    d.to_read(8, t0),
                    0,
                    "room for one of eight: not worth a read"
                );
            }
        }
        assert_eq!(
            d.to_read(8, t0),
            8,
            "the last read filled its room: there may be more"
        );
    }

    #[test]
    fn released_records_are_taken_once_and_outlive_the_session() {
        let mut d = Delivery::default();
        let t0 = Instant::now();
        for (pkid, seq) in [(1, 10), (2, 11)] {
            d.handed_over(seq);
            d.sent(pkid);
        }
        assert_eq!(d.acked(1, false, t0), Ack::Released(10));
        d.clear();
        assert_eq!(
            d.take_released(),
            [10],
            "the broker has it: removed after a reconnect"
        );
        assert!(d.take_released().is_empty(), "taken once");
    }

    #[test]
    fn a_refusal_come_due_is_read_again() {
        let mut d = Delivery::default();
        let t0 = Instant::now();
        d.read(4, 1);
        d.handed_over(5);
        d.sent(1);
        assert_eq!(d.acked(1, true, t0), Ack::Refused(5));
        assert_eq!(
            d.to_read(4, t0),
            0,
            "refused, not yet due: the spool has nothing new"
        );
        assert!(
            d.take_released().is_empty(),
            "a refused record stays in the spool"
        );
        assert_eq!(d.to_read(4, t0 + REFUSED_RETRY), 4, "due: read it again");
    }

    #[test]
    fn a_new_session_forgets_what_was_in_flight() {
        let mut f = Delivery::default();
        let t0 = Instant::now();
        f.handed_over(1);
        f.sent(5);
        f.clear();
        assert_eq!(f.room(2, t0), 2);
        assert_eq!(
            f.acked(5, false, t0),
            Ack::Foreign,
            "an old session's PUBACK"
        );
    }
}

#[cfg(test)]
mod properties {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        HandOver,
        Sent(u16),
        Ack(u16, bool),
        Wait(u64),
        Reconnect,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::HandOver),
            3 => (1u16..6).prop_map(Op::Sent),
            3 => (1u16..6, proptest::bool::weighted(0.2)).prop_map(|(p, r)| Op::Ack(p, r)),
            1 => (0u64..15_000).prop_map(Op::Wait),
            1 => Just(Op::Reconnect),
        ]
    }

    proptest! {
        /// Whatever the broker does: a record is released only after it was handed
        /// over and sent in the same session, at most once; what is in flight never
        /// exceeds the limit; a refused record is not handed over again before its
        /// retry is due.
        #[test]
        fn releases_follow_hand_overs(ops in proptest::collection::vec(op(), 1..200)) {
            const LIMIT: u16 = 4;
            let mut d = Delivery::default();
            let mut now = Instant::now();
            let mut next_seq = 1u64;
            let mut sent_this_session: HashSet<u64> = HashSet::new();
            let mut handed_order: Vec<u64> = Vec::new();
            let mut released: HashSet<u64> = HashSet::new();
            let mut refused_at: Vec<(Instant, u64)> = Vec::new();
            for op in ops {
                match op {
                    Op::HandOver => {
                        if d.room(LIMIT, now) > 0 {
                            d.handed_over(next_seq);
                            handed_order.push(next_seq);
                            next_seq += 1;
                        }
                    }
                    Op::Sent(pkid) => {
                        let before = d.awaiting_pkid.front().copied();
                        d.sent(pkid);
                        if let Some(seq) = before {
                            sent_this_session.insert(seq);
                        }
                    }
                    Op::Ack(pkid, refused) => match d.acked(pkid, refused, now) {
                        Ack::Released(seq) => {
                            prop_assert!(sent_this_session.contains(&seq), "{seq} released unsent");
                            prop_assert!(released.insert(seq), "{seq} released twice");
                        }
                        Ack::Refused(seq) => {
                            prop_assert!(sent_this_session.contains(&seq));
                            refused_at.push((now, seq));
                        }
                        Ack::Foreign => {}
                    },
                    Op::Wait(ms) => now += Duration::from_millis(ms),
                    Op::Reconnect => {
                        d.clear();
                        sent_this_session.clear();
                        refused_at.clear();
                    }
                }
                prop_assert!(d.handed.len() <= usize::from(LIMIT));
                for (at, seq) in &refused_at {
                    if now.duration_since(*at) < REFUSED_RETRY && !released.contains(seq) {
                        prop_assert!(d.contains(*seq), "refused {seq} freed early");
                    }
                }
            }
        }
    }
}
