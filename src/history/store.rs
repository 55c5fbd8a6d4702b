//! Writing the history's segments with their retention, and reading them back (for
//! `hazgate export`, the local API and `hazgate tune`, also while the daemon writes).

use std::{
    io,
    path::{Path, PathBuf},
};

use super::{
    codec::{self, Chunk},
    segment::{self, Kind, SegmentWriter},
};
use crate::{
    model::{history::HistoryConfig, PointIndex},
    reading::Reading,
};

/// A segment is closed and a new one begun past this size or age: retention drops
/// whole segments, so they are kept small against the budget.
const SEGMENT_MAX_BYTES: u64 = 16 << 20;
const SEGMENT_MAX_MS: i64 = 3_600_000;

/// The writing side: the open segment, and the files' retention.
pub struct HistoryWriter {
    dir: PathBuf,
    max_age_ms: i64,
    max_bytes: u64,
    segment: Option<SegmentWriter>,
}

/// What one commit wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub readings: usize,
    pub events: usize,
    pub bytes: u64,
    /// Segments deleted by age or size.
    pub dropped_segments: usize,
}

impl HistoryWriter {
    /// Opens the directory (created if missing). A new segment is begun with the first
    /// commit: a segment a crash may have torn is never appended to.
    pub fn open(cfg: &HistoryConfig) -> io::Result<Self> {
        std::fs::create_dir_all(&cfg.path)?;
        Ok(Self {
            dir: cfg.path.clone(),
            max_age_ms: i64::try_from(cfg.max_age().as_millis()).unwrap_or(i64::MAX),
            max_bytes: cfg.max_bytes(),
            segment: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How large a segment grows before the next begins.
    fn segment_cap(&self) -> u64 {
        SEGMENT_MAX_BYTES.min(self.max_bytes / 8)
    }

    /// Writes one commit window — its readings as one chunk, its events as another —
    /// and syncs it; then applies the retention. `events` are JSON texts.
    pub fn commit(
        &mut self,
        readings: &[Reading],
        events: &[String],
        now_ms: i64,
    ) -> io::Result<Written> {
        let mut chunk = codec::build(readings);
        self.commit_chunk(chunk.finish().as_ref(), events, now_ms)
    }

    /// [`Self::commit`] of a chunk already packed (the running gateway packs as the
    /// readings arrive).
    pub fn commit_chunk(
        &mut self,
        chunk: Option<&Chunk<'_>>,
        events: &[String],
        now_ms: i64,
    ) -> io::Result<Written> {
        let mut w = Written::default();
        if chunk.is_none() && events.is_empty() {
            return Ok(w);
        }
        let cap = self.segment_cap();
        let roll = self
            .segment
            .as_ref()
            .is_none_or(|s| s.bytes >= cap || now_ms - s.start >= SEGMENT_MAX_MS);
        if roll {
            // Start the next segment before the retention looks at the sizes.
            self.segment = Some(SegmentWriter::create(&self.dir, now_ms)?);
        }
        let Some(seg) = self.segment.as_mut() else {
            return Ok(w);
        };
        let before = seg.bytes;
        if let Err(e) = write_window(seg, chunk, events, now_ms) {
            // What failed may have left a torn frame: nothing more goes after it. The
            // next window begins a new segment (and a new one left empty goes).
            if let Some(s) = self.segment.take() {
                if before == 0 {
                    let _ = std::fs::remove_file(&s.path);
                }
            }
            return Err(e);
        }
        w.readings = chunk.map_or(0, |c| c.readings);
        w.events = events.len();
        w.bytes = seg.bytes - before;
        if roll {
            w.dropped_segments = self.retain(now_ms)?;
        }
        Ok(w)
    }

    /// Deletes the oldest segments while the history is over its budget, and those
    /// whose every moment is older than the age limit (the open one is never deleted).
    pub fn retain(&mut self, now_ms: i64) -> io::Result<usize> {
        let segments = segment::list(&self.dir)?;
        let open = self.segment.as_ref().map(|s| s.path.clone());
        let mut total: u64 = segments.iter().map(|(_, _, b)| b).sum();
        // Room for the open segment to grow to its size.
        let budget = self.max_bytes.saturating_sub(self.segment_cap());
        let mut dropped = 0;
        for (i, (_, path, bytes)) in segments.iter().enumerate() {
            if Some(path) == open.as_ref() {
                break;
            }
            // A segment ends where the next begins.
            let end = segments.get(i + 1).map_or(now_ms, |(s, _, _)| *s);
            if total > budget || now_ms - end > self.max_age_ms {
                std::fs::remove_file(path)?;
                total -= bytes;
                dropped += 1;
            } else {
                break;
            }
        }
        Ok(dropped)
    }
}

/// One window into `seg`: its readings' chunk, its events, then the sync.
fn write_window(
    seg: &mut SegmentWriter,
    chunk: Option<&Chunk<'_>>,
    events: &[String],
    now_ms: i64,
) -> io::Result<()> {
    if let Some(c) = chunk {
        seg.append(Kind::Readings, c.first, c.last, c.bytes)?;
    }
    if !events.is_empty() {
        let text = events.join("\n");
        let payload = lz4_flex::compress_prepend_size(text.as_bytes());
        seg.append(Kind::Events, now_ms, now_ms, &payload)?;
    }
    seg.sync()
}

/// What a read found besides the data: damage (a torn tail after a crash, a file
/// another process is writing) is reported, never taken for data.
#[derive(Debug, Default)]
pub struct ReadNotes {
    pub damaged: Vec<String>,
}

/// Every stored reading from `from` to `to` (ms, inclusive) of the points `want`
/// accepts, in time order.
pub fn readings(
    dir: &Path,
    from: i64,
    to: i64,
    want: impl Fn(PointIndex) -> bool,
) -> io::Result<(Vec<Reading>, ReadNotes)> {
    let mut out = Vec::new();
    let mut notes = ReadNotes::default();
    for (frames, damage) in frames_in(dir, from, to, Kind::Readings)? {
        notes.damaged.extend(damage);
        for f in frames {
            match codec::decode(&f.payload) {
                Ok(rs) => out.extend(
                    rs.into_iter()
                        .filter(|r| (from..=to).contains(&r.ts.0) && want(r.point)),
                ),
                Err(e) => notes.damaged.push(e.to_string()),
            }
        }
    }
    out.sort_unstable_by_key(|r| (r.ts.0, r.point.0));
    Ok((out, notes))
}

/// The stored readings from `from` to `to` (ms, inclusive), handed to `f` one chunk at
/// a time (each in time order, the chunks in the order written), reading one segment
/// at a time: a month of a site does not fit in memory, a segment does.
pub fn each_reading_chunk(
    dir: &Path,
    from: i64,
    to: i64,
    mut f: impl FnMut(&[Reading]),
) -> io::Result<ReadNotes> {
    let mut notes = ReadNotes::default();
    let segments = segment::list(dir)?;
    for i in 0..segments.len() {
        let Some((frames, damage)) = segment_frames(&segments, i, from, to, Kind::Readings)? else {
            continue;
        };
        notes.damaged.extend(damage);
        for frame in frames {
            match codec::decode(&frame.payload) {
                Ok(mut rs) => {
                    rs.retain(|r| (from..=to).contains(&r.ts.0));
                    f(&time_order(rs));
                }
                Err(e) => notes.damaged.push(e.to_string()),
            }
        }
    }
    Ok(notes)
}

/// A chunk's readings (by point, then time) in time order, then by point. A chunk
/// holds a few polls of every point: they are placed by their poll, not sorted (a
/// sort was a tenth of a month's replay).
pub fn time_order(rs: Vec<Reading>) -> Vec<Reading> {
    let mut times: Vec<i64> = rs.iter().map(|r| r.ts.0).collect();
    times.sort_unstable();
    times.dedup();
    if times.len() > 64 {
        let mut rs = rs;
        rs.sort_unstable_by_key(|r| (r.ts.0, r.point.0));
        return rs;
    }
    let mut buckets: Vec<Vec<Reading>> = vec![Vec::new(); times.len()];
    for r in rs {
        if let Ok(i) = times.binary_search(&r.ts.0) {
            buckets[i].push(r);
        }
    }
    buckets.concat()
}

/// Every stored event (JSON text) committed from `from` to `to`, in order.
pub fn events(dir: &Path, from: i64, to: i64) -> io::Result<(Vec<String>, ReadNotes)> {
    let mut out = Vec::new();
    let mut notes = ReadNotes::default();
    for (frames, damage) in frames_in(dir, from, to, Kind::Events)? {
        notes.damaged.extend(damage);
        for f in frames {
            match codec::unpack(&f.payload) {
                Ok(text) => out.extend(String::from_utf8_lossy(&text).lines().map(str::to_string)),
                Err(e) => notes.damaged.push(e.to_string()),
            }
        }
    }
    Ok((out, notes))
}

/// The frames of `kind` of the segments that may hold moments from `from` to `to`.
fn frames_in(
    dir: &Path,
    from: i64,
    to: i64,
    kind: Kind,
) -> io::Result<Vec<(Vec<segment::Frame>, Option<String>)>> {
    let segments = segment::list(dir)?;
    let mut out = Vec::new();
    for i in 0..segments.len() {
        out.extend(segment_frames(&segments, i, from, to, kind)?);
    }
    Ok(out)
}

/// The frames of `kind` of segment `i` that may hold moments from `from` to `to`, and
/// its damage; None if the segment cannot (or is gone).
fn segment_frames(
    segments: &[(i64, PathBuf, u64)],
    i: usize,
    from: i64,
    to: i64,
    kind: Kind,
) -> io::Result<Option<(Vec<segment::Frame>, Option<String>)>> {
    let (start, path, _) = &segments[i];
    // Readings are stamped when acquired and written a commit window later: a segment
    // may hold moments from just before its start.
    let end = segments.get(i + 1).map_or(i64::MAX, |(s, _, _)| *s);
    if *start > to.saturating_add(SEGMENT_MAX_MS) || end < from.saturating_sub(SEGMENT_MAX_MS) {
        return Ok(None);
    }
    let read = segment::read_where(path, |k, first, last| {
        k == kind && last >= from && first <= to
    });
    match read {
        Ok(x) => Ok(Some(x)),
        // Deleted by the retention between the listing and the read.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Quality, RangeFlag, Raw, Timestamp, Value};

    fn cfg(dir: &Path, max_mib: u64) -> HistoryConfig {
        toml::from_str(&format!(
            "path = {:?}\nmax_mib = {max_mib}",
            dir.display().to_string()
        ))
        .unwrap()
    }

    fn reading(point: u32, ts: i64, v: f64) -> Reading {
        Reading {
            point: PointIndex(point),
            value: Some(Value::Analog(v)),
            quality: Quality::Good,
            ts: Timestamp(ts),
            raw: Raw::None,
            range: RangeFlag::Within,
        }
    }

    const DAY: i64 = 86_400_000;

    /// What was committed reads back by time and point; segments older than the age
    /// limit go, the open one never.
    #[test]
    fn commits_read_back_and_old_segments_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = HistoryWriter::open(&cfg(dir.path(), 1024)).unwrap();
        let t0 = 1_700_000_000_000;
        // One commit an hour for 40 days: a new segment each time.
        for h in 0..(40 * 24) {
            let t = t0 + h * 3_600_000;
            let ev = format!("{{\"hour\":{h}}}");
            w.commit(&[reading(1, t, h as f64), reading(2, t, 0.5)], &[ev], t)
                .unwrap();
        }
        let now = t0 + (40 * 24 - 1) * 3_600_000;
        let kept = segment::list(dir.path()).unwrap();
        let oldest = kept[0].0;
        assert!(
            now - oldest <= 30 * DAY + 3_600_000,
            "30 days kept: {}",
            (now - oldest) / DAY
        );
        assert!(now - oldest >= 30 * DAY - 3_600_000);
        let (rs, notes) = readings(dir.path(), now - 2 * 3_600_000, now, |p| p.0 == 1).unwrap();
        assert!(notes.damaged.is_empty());
        let got: Vec<(i64, f64)> = rs
            .iter()
            .map(|r| (r.ts.0, r.value.unwrap().as_f64()))
            .collect();
        assert_eq!(
            got,
            [
                (now - 2 * 3_600_000, (40 * 24 - 3) as f64),
                (now - 3_600_000, (40 * 24 - 2) as f64),
                (now, (40 * 24 - 1) as f64)
            ]
        );
        let (ev, _) = events(dir.path(), now - 3_600_000, now).unwrap();
        assert_eq!(ev, ["{\"hour\":958}", "{\"hour\":959}"]);
    }

    /// Over the disk budget, the oldest segments go first.
    #[test]
    fn the_budget_drops_the_oldest_segments_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = HistoryWriter::open(&cfg(dir.path(), 16)).unwrap();
        let t0 = 1_700_000_000_000;
        // Noise that does not compress: ~ 16 MiB / 8 per segment before it rolls.
        let mut x = 1u64;
        for c in 0..400 {
            let rs: Vec<Reading> = (0..5000)
                .map(|i| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    reading(
                        i,
                        t0 + c * 1000,
                        f64::from_bits(x >> 12 | 0x3ff0_0000_0000_0000),
                    )
                })
                .collect();
            w.commit(&rs, &[], t0 + c * 1000).unwrap();
        }
        let total: u64 = segment::list(dir.path())
            .unwrap()
            .iter()
            .map(|(_, _, b)| b)
            .sum();
        assert!(total <= 16 << 20, "{total} bytes kept");
        let (rs, _) = readings(dir.path(), t0 + 399_000, t0 + 399_000, |_| true).unwrap();
        assert_eq!(rs.len(), 5000, "the newest is all there");
        let (rs, _) = readings(dir.path(), t0, t0, |_| true).unwrap();
        assert!(rs.is_empty(), "the oldest went");
    }
}
