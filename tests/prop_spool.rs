//! Property test of the durable spool over random appends, acks and reopens.

use std::collections::BTreeSet;

use hazgate::forward::spool::{Class, Spool};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(bool, u8)>),
    AckSome(u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((any::<bool>(), 1u8..60), 1..12).prop_map(Op::Append),
        2 => (0u8..8).prop_map(Op::AckSome),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn spool_loses_nothing_but_old_telemetry(ops in prop::collection::vec(op(), 1..30), budget in 50u64..600) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.redb");
        let mut spool = Spool::open(&path, budget).unwrap();
        let mut last_seq = 0u64;
        let mut events_live = BTreeSet::new();
        let mut telemetry_appended = 0u64;
        let mut telemetry_acked = 0u64;
        for op in ops {
            match op {
                Op::Append(msgs) => {
                    let classes: Vec<Class> = msgs.iter().map(|(e, _)| if *e { Class::Event } else { Class::Telemetry }).collect();
                    let seqs = spool.append(&classes, |i, _| vec![0u8; usize::from(msgs[i].1)]).unwrap();
                    for (seq, class) in seqs.iter().zip(&classes) {
                        prop_assert!(*seq > last_seq, "seq must only go up");
                        last_seq = *seq;
                        match class {
                            Class::Event => { events_live.insert(*seq); }
                            Class::Telemetry => telemetry_appended += 1,
                        }
                    }
                }
                Op::AckSome(n) => {
                    let pending = spool.pending(usize::from(n), |_| false).unwrap();
                    // Events come before any telemetry.
                    let first_tel = pending.iter().position(|r| r.class == Class::Telemetry).unwrap_or(pending.len());
                    prop_assert!(pending[first_tel..].iter().all(|r| r.class == Class::Telemetry));
                    for r in &pending {
                        match r.class {
                            Class::Event => { events_live.remove(&r.seq); }
                            Class::Telemetry => telemetry_acked += 1,
                        }
                    }
                    spool.ack(&pending.iter().map(|r| r.seq).collect::<Vec<_>>()).unwrap();
                }
                Op::Reopen => {
                    drop(spool);
                    spool = Spool::open(&path, budget).unwrap();
                    prop_assert_eq!(spool.next_seq().unwrap(), last_seq + 1);
                }
            }
            let d = spool.depth().unwrap();
            let pending = spool.pending(usize::MAX, |_| false).unwrap();
            let events: BTreeSet<u64> = pending.iter().filter(|r| r.class == Class::Event).map(|r| r.seq).collect();
            prop_assert_eq!(&events, &events_live, "no event is ever lost");
            prop_assert_eq!(d.telemetry + telemetry_acked + d.dropped_telemetry, telemetry_appended, "telemetry accounted for");
            prop_assert_eq!(d.bytes, pending.iter().map(|r| r.payload.len() as u64).sum::<u64>());
            prop_assert!(d.bytes <= budget || d.telemetry == 0, "over budget only with events alone");
        }
    }
}
