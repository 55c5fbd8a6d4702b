//! Loss in each gateway's streams: what `stream_seq` skipped (contract v1.3).

use std::collections::HashMap;

use crate::line::Point;

/// A message's place in its gateway's stream (telemetry, or events): `stream_seq`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamPosition {
    pub park: String,
    pub enterprise: String,
    pub gateway: String,
    pub telemetry: bool,
    pub n: u64,
}

impl StreamPosition {
    pub fn stream(&self) -> &'static str {
        if self.telemetry {
            "telemetry"
        } else {
            "events"
        }
    }

    /// The `seq_gap` point saying `missing` messages of this stream never came.
    pub fn gap_line(&self, missing: u64, ts_ms: i64) -> Vec<u8> {
        let mut out = Vec::new();
        Point::new("seq_gap")
            .tag("park", &self.park)
            .tag("enterprise", &self.enterprise)
            .tag("gateway", &self.gateway)
            .tag("stream", self.stream())
            .field("missing", i64::try_from(missing).unwrap_or(i64::MAX))
            .field("before", i64::try_from(self.n).unwrap_or(i64::MAX))
            .write(&mut out, ts_ms);
        out
    }
}

/// The last `stream_seq` seen per gateway and stream.
#[derive(Debug, Default)]
pub struct Gaps {
    last: HashMap<(String, String, String, bool), u64>,
}

impl Gaps {
    /// How many messages of the stream were lost just before this one: 0 for the next in
    /// order, the first seen, or a resend (a number already passed). A stream that starts
    /// again at 1 (a gateway with a new spool) starts afresh.
    pub fn see(&mut self, p: &StreamPosition) -> u64 {
        let key = (
            p.park.clone(),
            p.enterprise.clone(),
            p.gateway.clone(),
            p.telemetry,
        );
        let last = self.last.entry(key).or_insert(p.n.saturating_sub(1));
        if p.n == 1 {
            *last = 1;
            return 0;
        }
        if p.n <= *last {
            return 0;
        }
        let missing = p.n - *last - 1;
        *last = p.n;
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_what_a_stream_skipped_not_resends_or_the_other_stream() {
        let p = |telemetry: bool, n: u64| StreamPosition {
            park: "P".into(),
            enterprise: "E".into(),
            gateway: "G".into(),
            telemetry,
            n,
        };
        let mut g = Gaps::default();
        assert_eq!(g.see(&p(true, 7)), 0, "first seen");
        assert_eq!(g.see(&p(true, 8)), 0);
        assert_eq!(g.see(&p(false, 3)), 0, "events are a stream of their own");
        assert_eq!(g.see(&p(true, 11)), 2, "9 and 10 lost");
        assert_eq!(g.see(&p(true, 9)), 0, "a late resend is not a loss");
        assert_eq!(g.see(&p(false, 4)), 0);
        assert_eq!(g.see(&p(true, 1)), 0, "a new spool starts again");
        assert_eq!(g.see(&p(true, 3)), 1);
        let line = p(true, 3).gap_line(1, 1_795_419_779_123);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "seq_gap,enterprise=E,gateway=G,park=P,stream=telemetry before=3i,missing=1i 1795419779123\n"
        );
    }
}
