//! Property test of the durable spool over random appends, acks and reopens, against a
//! model: events kept until acknowledged, telemetry a FIFO whose oldest entries are
//! dropped (and counted) exactly while the payload bytes exceed the budget.

use std::collections::{BTreeMap, VecDeque};

use hazgate::forward::spool::{Class, Record, Spool};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Messages: (class — 0 event, 1 telemetry, 2 state — and payload length).
    Append(Vec<(u8, u8)>),
    AckSome(u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((0u8..3, 1u8..60), 1..12).prop_map(Op::Append),
        2 => (0u8..8).prop_map(Op::AckSome),
        1 => Just(Op::Reopen),
    ]
}

/// A payload that names its own seq, so a record read back under another seq, or with
/// bytes of another record, is caught.
fn payload(seq: u64, len: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seq.to_le_bytes()[usize::from(i) % 8] ^ i)
        .collect()
}

#[derive(Default)]
struct Model {
    events: BTreeMap<u64, Vec<u8>>,
    telemetry: VecDeque<(u64, Vec<u8>)>,
    dropped: u64,
    /// Next stream_seq per class (true: events).
    next_stream: BTreeMap<bool, u64>,
}

impl Model {
    fn bytes(&self) -> u64 {
        let e: usize = self.events.values().map(Vec::len).sum();
        let t: usize = self.telemetry.iter().map(|(_, p)| p.len()).sum();
        (e + t) as u64
    }

    fn append(&mut self, seq: u64, class: Class, p: Vec<u8>) {
        match class {
            Class::Event | Class::State => {
                self.events.insert(seq, p);
            }
            Class::Telemetry => self.telemetry.push_back((seq, p)),
        }
    }

    /// After a commit: the oldest telemetry goes while over budget, never an event.
    fn trim(&mut self, budget: u64) {
        while self.bytes() > budget && self.telemetry.pop_front().is_some() {
            self.dropped += 1;
        }
    }

    fn ack(&mut self, seqs: &[u64]) {
        for s in seqs {
            self.events.remove(s);
            self.telemetry.retain(|(q, _)| q != s);
        }
    }

    /// What the spool should hand out: events oldest first, then telemetry in order.
    fn pending(&self) -> Vec<Record> {
        let events = self.events.iter().map(|(s, p)| Record {
            seq: *s,
            class: Class::Event,
            payload: p.clone(),
        });
        let telemetry = self.telemetry.iter().map(|(s, p)| Record {
            seq: *s,
            class: Class::Telemetry,
            payload: p.clone(),
        });
        events.chain(telemetry).collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn spool_behaves_as_its_model(ops in prop::collection::vec(op(), 1..30), budget in 50u64..600) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.redb");
        let mut spool = Spool::open(&path, budget).unwrap();
        let mut model = Model::default();
        let mut last_seq = 0u64;
        for op in ops {
            match op {
                Op::Append(msgs) => {
                    let classes: Vec<Class> = msgs.iter().map(|(c, _)| [Class::Event, Class::Telemetry, Class::State][usize::from(*c)]).collect();
                    let mut given = Vec::new();
                    let seqs = spool.append(&classes, |i, seq| { given.push(seq); payload(seq.seq, msgs[i].1) }).unwrap();
                    prop_assert_eq!(seqs.len(), msgs.len());
                    // Each stream counts its own messages, one by one, across reopens; a
                    // restated state is in neither.
                    for (seq, class) in given.iter().zip(&classes) {
                        if *class == Class::State {
                            prop_assert_eq!(seq.stream_seq, 0, "a state has no stream_seq");
                            continue;
                        }
                        let next = model.next_stream.entry(*class == Class::Event).or_insert(1);
                        prop_assert_eq!(seq.stream_seq, *next, "stream_seq of {:?}", class);
                        *next += 1;
                    }
                    for (i, seq) in seqs.iter().enumerate() {
                        prop_assert_eq!(*seq, last_seq + 1, "seq goes up by one, never repeats");
                        last_seq = *seq;
                        model.append(*seq, classes[i], payload(*seq, msgs[i].1));
                    }
                    model.trim(budget);
                }
                Op::AckSome(n) => {
                    let pending = spool.pending(usize::from(n), |_| false).unwrap();
                    let expected: Vec<Record> = model.pending().into_iter().take(usize::from(n)).collect();
                    prop_assert_eq!(&pending, &expected, "the first {} to send", n);
                    let seqs: Vec<u64> = pending.iter().map(|r| r.seq).collect();
                    spool.ack(&seqs).unwrap();
                    model.ack(&seqs);
                }
                Op::Reopen => {
                    drop(spool);
                    spool = Spool::open(&path, budget).unwrap();
                    prop_assert_eq!(spool.next_seq().unwrap(), last_seq + 1);
                }
            }
            let pending = spool.pending(usize::MAX, |_| false).unwrap();
            prop_assert_eq!(&pending, &model.pending(), "contents, order and bytes");
            let d = spool.depth().unwrap();
            prop_assert_eq!(d.events, model.events.len() as u64);
            prop_assert_eq!(d.telemetry, model.telemetry.len() as u64);
            prop_assert_eq!(d.dropped_telemetry, model.dropped, "every drop counted");
            prop_assert_eq!(d.bytes, model.bytes());
        }
    }
}

/// `in_flight` records are skipped, the rest keep their order.
#[test]
fn pending_skips_what_is_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("s.redb"), 10_000).unwrap();
    let classes = [
        Class::Telemetry,
        Class::Event,
        Class::Telemetry,
        Class::Event,
    ];
    spool
        .append(&classes, |_, seq| payload(seq.seq, 4))
        .unwrap();
    let seqs: Vec<u64> = spool
        .pending(10, |s| s == 2 || s == 3)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, vec![4, 1], "events first, then telemetry");
}
